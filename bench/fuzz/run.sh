#!/usr/bin/env bash
# Fuzzes a running Cairn against its OpenAPI contract with schemathesis (see bench/fuzz/README.md).
#
#   CAIRN_URL          the Cairn to test, loopback only (default http://127.0.0.1:8288)
#   CAIRN_SIGNING_KEY  sent as `Authorization: Bearer …` on signed routes (unset: dev mode)
#   CAIRN_EVENT_KEY    used as {eventKey} for POST /e (unset: generated keys, fine in dev mode)
#   FUZZ_REQUESTS      request budget (default 10000): the coverage phase (~1000 requests) plus
#                      the fuzzing phase, whose share is spread evenly over the operations
#   FUZZ_SMOKE=1       a short run of about 300 requests, fuzzing phase only
#   FUZZ_SEED          seed (default 1); same seed, same server state, same requests
#   FUZZ_4XX=warn      report 4xx bodies that do not name field and rule without failing
#   FUZZ_OUT           where the reports go (default bench/out/fuzz/<UTC time>)
#
# Exit status: 0 clean; 1 on a 5xx, a schemathesis check failure (server error, response not
# matching the contract) or a 4xx body that does not name field and rule; 2 on a usage problem.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/bench/fuzz
venv=$root/.venv-fuzz
spec_file=$root/Shared/CairnHTTP/Resources/openapi.json

url=${CAIRN_URL:-http://127.0.0.1:8288}
url=${url%/}
budget=${FUZZ_REQUESTS:-10000}
seed=${FUZZ_SEED:-1}
out=${FUZZ_OUT:-$root/bench/out/fuzz/$(date -u +%Y%m%dT%H%M%SZ)}
coverage_share=1000
phases=coverage,fuzzing
if [ -n "${FUZZ_SMOKE:-}" ] && [ "${FUZZ_SMOKE}" != 0 ]; then
  budget=300
  coverage_share=0
  phases=fuzzing
fi
case "$budget$seed" in *[!0-9]*) echo "FUZZ_REQUESTS and FUZZ_SEED must be integers" >&2; exit 2 ;; esac

# Loopback only: the fuzzer talks to nothing else, and hooks.py keeps Cairn itself on loopback.
host=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).hostname or "")' "$url")
case "$host" in
  127.0.0.1 | localhost | ::1) ;;
  *) echo "CAIRN_URL must point at 127.0.0.1, localhost or ::1, got $url" >&2; exit 2 ;;
esac
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
export NO_PROXY='*' no_proxy='*'

if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "creating $venv from bench/fuzz/requirements.txt" >&2
  python3 -m venv "$venv"
  printf '# Created by bench/fuzz/run.sh: the fuzz venv is local, never committed.\n*\n' >"$venv/.gitignore"
  "$venv/bin/pip" install --quiet --requirement "$here/requirements.txt"
fi

if ! curl -fsS -o /dev/null --max-time 5 "$url/healthz"; then
  echo "no Cairn answers at $url/healthz: start one first (e.g. cairn dev)" >&2
  exit 2
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
# The contract: the one the server serves when it does, else the file in this checkout.
schema=$spec_file
if curl -fsS --max-time 5 -o "$out/served-openapi.json" "$url/openapi.json" 2>/dev/null &&
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if "paths" in d else 1)' "$out/served-openapi.json" 2>/dev/null; then
  schema=$url/openapi.json
  spec_for_checks=$out/served-openapi.json
else
  rm -f "$out/served-openapi.json"
  spec_for_checks=$spec_file
fi

# Operations that take input get the fuzzing share; the others need one request each.
read -r operations with_input < <(python3 - "$spec_for_checks" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
ops = with_input = 0
for item in spec["paths"].values():
    for method, op in item.items():
        if method not in ("get", "put", "post", "delete", "patch"):
            continue
        ops += 1
        if op.get("parameters") or item.get("parameters") or op.get("requestBody"):
            with_input += 1
print(ops, max(with_input, 1))
PY
)
fuzz_share=$((budget - coverage_share - (operations - with_input)))
[ "$fuzz_share" -ge "$with_input" ] || fuzz_share=$with_input
max_examples=$(((fuzz_share + with_input - 1) / with_input))

cmd=(
  "$venv/bin/schemathesis" run "$schema"
  --url "$url"
  --checks not_a_server_error,response_schema_conformance
  --phases "$phases"
  --mode all
  --continue-on-failure
  --max-examples "$max_examples"
  --seed "$seed"
  --workers 1
  --generation-database none
  --request-timeout 40
  --warnings off
  --report har,junit
  --report-dir "$out"
  --report-har-path "$out/traffic.har.json"
  --report-junit-path "$out/junit.xml"
)
echo "fuzzing $url: $operations operations, $max_examples examples each (budget $budget), seed $seed; reports in $out"
echo "+ SCHEMATHESIS_HOOKS=$here/hooks.py ${cmd[*]}"

# Run inside the report directory: schemathesis and hypothesis keep their caches in the
# working directory, and they belong with the run, not in the checkout.
status=0
(cd "$out" && SCHEMATHESIS_HOOKS=$here/hooks.py "${cmd[@]}") >"$out/schemathesis.log" 2>&1 || status=$?
if [ ! -s "$out/traffic.har.json" ]; then
  tail -n 40 "$out/schemathesis.log" >&2
  echo "schemathesis recorded no traffic (exit $status)" >&2
  exit 1
fi
grep -E '^(Test cases:|  [0-9]+ generated)' -A1 "$out/schemathesis.log" | head -n 3 || true

strict=(--strict-4xx)
[ "${FUZZ_4XX:-}" != warn ] || strict=()
summary_status=0
python3 "$here/check_4xx.py" --har "$out/traffic.har.json" --junit "$out/junit.xml" --spec "$spec_for_checks" "${strict[@]}" |
  tee "$out/summary.txt" || summary_status=$?

server_errors=$(sed -n 's/^5xx responses: *//p' "$out/summary.txt")
if [ "$status" -ne 0 ] || [ "${server_errors:-0}" -ne 0 ] || [ "$summary_status" -ne 0 ]; then
  echo "FAIL (schemathesis exit $status, 5xx $server_errors, 4xx check exit $summary_status); details: $out/schemathesis.log" >&2
  exit 1
fi
echo "OK"
