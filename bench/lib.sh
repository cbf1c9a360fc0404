# Shared by the bench scripts: source it, don't run it.

# with_private_servers SCRIPT ARGS...: unless CAIRN_REDIS_URL is set, runs SCRIPT again under
# deploy/local/servers.sh (private Redis and Postgres, URLs exported, stopped on exit) and does
# not return.
with_private_servers() {
  if [ -z "${CAIRN_REDIS_URL:-}" ]; then
    exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/local/servers.sh" run -- "$@"
  fi
}

# redis_xadd_reference PORT COUNT: redis-benchmark's pipelined XADD rate (-P 64, 50 clients,
# one short field/value pair per entry) against the server on PORT, in entries per second.
redis_xadd_reference() {
  local port=$1 count=$2 line
  # redis-benchmark -q prints: `XADD ...: 1234567.00 requests per second, p50=... msec`.
  line=$(redis-benchmark -h 127.0.0.1 -p "$port" -P 64 -c 50 -n "$count" -q \
    XADD cairn-bench:reference '*' field value | tr '\r' '\n' | grep 'requests per second' | tail -n 1)
  redis-cli -p "$port" DEL cairn-bench:reference >/dev/null
  local rate
  rate=$(sed -E 's/.*: ([0-9.]+) requests per second.*/\1/' <<<"$line")
  echo "${rate%.*}"
}

# json_field JSON NAME: one top-level field of a JSON object.
json_field() {
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# wait_for_http URL SECONDS: until URL answers 200, or fail.
wait_for_http() {
  local url=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "no answer from $url within ${seconds}s" >&2
  return 1
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# redis_port: the port of CAIRN_REDIS_URL (redis://host:port/db).
redis_port() {
  sed -E 's|^redis://[^:]+:([0-9]+).*|\1|' <<<"$CAIRN_REDIS_URL"
}

# peak_rss_mb PID: the process's peak resident memory so far (VmHWM), in MiB.
peak_rss_mb() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# process_ticks PID...: CPU jiffies (user + system) those processes have used so far.
process_ticks() {
  local pid total=0 ticks
  for pid in "$@"; do
    ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + ${ticks:-0}))
  done
  echo "$total"
}
# server_pids: a line "postgres PID..." (the postmaster and its backends) and a line
# "redis PID", when the servers are the private ones of deploy/local/servers.sh; else nothing.
server_pids() {
  local dir=${CAIRN_LOCAL_SERVERS_DIR:-} postmaster
  [ -n "$dir" ] || return 0
  postmaster=$(head -n 1 "$dir/pg/data/postmaster.pid" 2>/dev/null) || return 0
  echo "postgres $postmaster $(pgrep -P "$postmaster" | tr '\n' ' ')"
  echo "redis $(redis-cli -p "$(redis_port)" info server | tr -d '\r' | sed -n 's/^process_id://p')"
}

# stop_processes PID...: SIGTERM, then up to 45 s (past CAIRN_SHUTDOWN_GRACE_SECONDS) for each
# to exit; one still running then is reported and killed, so a harness never waits forever.
stop_processes() {
  local pid i
  kill "$@" 2>/dev/null || true
  for pid in "$@"; do
    for ((i = 0; i < 450; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) did not stop within 45 s of SIGTERM; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

# bench_database NAME: the URL of database NAME on the server of CAIRN_POSTGRES_URL, created if
# missing.
bench_database() {
  psql "$CAIRN_POSTGRES_URL" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 \
    || psql "$CAIRN_POSTGRES_URL" -Atqc "CREATE DATABASE $1" >/dev/null
  echo "${CAIRN_POSTGRES_URL%/*}/$1"
}

# start_role ROLE: starts cairn-ROLE from $bin on a free port, appends it to the array pids and
# waits until it is ready; sets role_port and role_pid.
start_role() {
  role_port=$(free_port)
  CAIRN_PORT=$role_port "$bin/cairn-$1" >/dev/null &
  role_pid=$!
  pids+=("$role_pid")
  wait_for_http "http://127.0.0.1:$role_port/readyz" 60
}

# start_dev BIN_DIR NAME: `cairn dev` from BIN_DIR on its own database NAME (its streams
# prefixed by it too); sets $port and $dev_pid. stop_dev stops it.
start_dev() {
  port=$(free_port)
  CAIRN_POSTGRES_URL=$(bench_database "$2") CAIRN_LOG_LEVEL=warning CAIRN_STREAM_PREFIX="cairn-bench-$2:" \
    "$1/cairn" dev --port "$port" --gateway-port "$(free_port)" >/dev/null &
  dev_pid=$!
  wait_for_http "http://127.0.0.1:$port/readyz" 60
}
stop_dev() {
  [ -z "${dev_pid:-}" ] || stop_processes "$dev_pid"
  dev_pid=
}

# alternate_builds ROUNDS NAME COMMAND...: ROUNDS rounds, each running COMMAND against a new
# `cairn dev` of the baseline build (BENCH_BASELINE_BIN_DIR, when set) and then of this one
# ($bin), each on its own database NAME_baseline or NAME_current, so that a drift of the machine
# weighs on both alike. COMMAND's outputs are collected in the arrays current_runs and
# baseline_runs.
alternate_builds() {
  local rounds=$1 name=$2 round build dir out
  shift 2
  current_runs=() baseline_runs=()
  for round in $(seq 1 "$rounds"); do
    for build in ${BENCH_BASELINE_BIN_DIR:+baseline} current; do
      dir=$bin
      [ "$build" = current ] || dir=$BENCH_BASELINE_BIN_DIR
      start_dev "$dir" "${name}_$build"
      out=$("$@")
      stop_dev
      if [ "$build" = current ]; then current_runs+=("$out"); else baseline_runs+=("$out"); fi
    done
  done
}
