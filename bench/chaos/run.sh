#!/usr/bin/env bash
# Runs the chaos harness (bench/chaos/chaos.py) with the right binaries.
#
#   bench/chaos/run.sh                   make chaos: release build, 5,000 runs, ~30 faults
#   CHAOS_SMOKE=1 bench/chaos/run.sh     make chaos-smoke: debug build, 240 runs, 7 faults
#   CHAOS_FAULTS=0 …                     control run: same workload, no faults
#   CHAOS_BIN_DIR=DIR …                  use the binaries in DIR and build nothing
#
# Other knobs (CHAOS_RUNS, CHAOS_FAULT_SECONDS, CHAOS_SEED) are described in chaos.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
products="cairn cairn-api cairn-event-api cairn-scheduler cairn-executor"
if [ -z "${CHAOS_BIN_DIR:-}" ]; then
  if [ -n "${CHAOS_SMOKE:-}" ] && [ "${CHAOS_SMOKE}" != 0 ]; then
    for product in $products; do swift build --product "$product" >/dev/null; done
    CHAOS_BIN_DIR=$(swift build --show-bin-path)
  else
    echo "building release binaries (first time: several minutes)"
    for product in $products; do swift build -c release --product "$product" >/dev/null; done
    CHAOS_BIN_DIR=$(swift build -c release --show-bin-path)
  fi
fi
for product in $products; do
  [ -x "$CHAOS_BIN_DIR/$product" ] || { echo "chaos: $CHAOS_BIN_DIR/$product is missing" >&2; exit 1; }
done
export CHAOS_BIN_DIR
exec "$root/.venv/bin/python" "$root/bench/chaos/chaos.py" "$@"
