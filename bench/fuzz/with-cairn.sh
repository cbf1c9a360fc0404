#!/usr/bin/env bash
# Runs bench/fuzz/run.sh against a Cairn of its own: `cairn dev` from BIN_DIR (default: the
# debug build) on a free loopback port, with private Redis and Postgres under a temporary
# directory, stopped afterwards whatever happens. `make fuzz` and `make test` (FUZZ_SMOKE=1)
# use it; the environment run.sh reads passes through.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${BIN_DIR:-$(cd "$root" && swift build --show-bin-path)}
[ -x "$bin/cairn" ] || { echo "fuzz: $bin/cairn is not built" >&2; exit 2; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
gateway=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-fuzz.XXXXXX")
# Postgres runs as its own user, which must reach its data directory.
chmod 755 "$work"
CAIRN_SHUTDOWN_GRACE_SECONDS=2 CAIRN_LOG_LEVEL=${CAIRN_LOG_LEVEL:-warning} "$bin/cairn" dev --port "$port" --gateway-port "$gateway" --data-dir "$work/data" >"$work/cairn.log" 2>&1 &
cairn=$!
stop() {
  kill -TERM "$cairn" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$cairn" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$cairn" 2>/dev/null || true
  # A cairn dev killed before it stopped its servers leaves them: stop them here.
  "$root/deploy/local/servers.sh" stop "$work/data" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$cairn" 2>/dev/null || { tail -n 30 "$work/cairn.log" >&2; echo "fuzz: cairn dev exited" >&2; exit 1; }
  sleep 0.5
done
CAIRN_URL=http://127.0.0.1:$port "$root/bench/fuzz/run.sh"
