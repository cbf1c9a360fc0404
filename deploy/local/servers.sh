#!/usr/bin/env bash
# Private Redis and Postgres servers for development and tests.
#
#   servers.sh start DIR [--owner-pid PID]   start both on free loopback ports, data under DIR;
#                                            prints KEY=VALUE lines (also written to DIR/env)
#   servers.sh stop DIR                      stop both and wait until their processes are gone
#   servers.sh run [DIR] -- CMD [ARGS...]    start, run CMD with the URLs exported, stop on exit
#   servers.sh postgres-stop DIR [fast|immediate]   stop only Postgres of running servers (bench/chaos)
#   servers.sh postgres-start DIR            start it again on the same port and data directory
#                                            (give it the same CAIRN_PG_FSYNC as `start`)
#
# Used by `make dev`, `make test` and `cairn dev`. With --owner-pid, a watchdog stops the servers
# when that process is gone, so a crashed owner leaves nothing behind.
#
# Environment:
#   CAIRN_PG_FSYNC   on|off  Postgres fsync and synchronous_commit (default on; tests use off)
#   CAIRN_PG_BIN     directory holding initdb/pg_ctl/postgres (default: found on PATH or
#                    /usr/lib/postgresql/*/bin)
#   CAIRN_PG_USER    the unprivileged system user that runs Postgres when invoked as root
#                    (default cairn-pg; created if missing)
set -euo pipefail

die() { echo "servers.sh: $*" >&2; exit 1; }

pg_bin() {
  if [ -n "${CAIRN_PG_BIN:-}" ]; then echo "$CAIRN_PG_BIN"; return; fi
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
  die "initdb not found: install postgresql (apt-get install postgresql) or set CAIRN_PG_BIN"
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# Runs a command as the Postgres owner: ourselves, or the unprivileged user when we are root
# (Postgres refuses to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "${CAIRN_PG_USER:-cairn-pg}" -- "$@"
  else
    "$@"
  fi
}

ensure_pg_user() {
  [ "$(id -u)" = 0 ] || return 0
  local u="${CAIRN_PG_USER:-cairn-pg}"
  id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
}

wait_until() { # seconds description command...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not answer within ${limit}s"
    sleep 0.1
  done
}

start() {
  local dir=$1 owner=${2:-}
  command -v redis-server >/dev/null || die "redis-server not found: apt-get install redis-server"
  local bin; bin=$(pg_bin)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/env" ]; then
    # A leftover env file from an owner that died: stop what may remain, then start afresh.
    local old_port
    old_port=$(sed -n 's|^CAIRN_REDIS_URL=redis://127.0.0.1:\([0-9]*\)/.*|\1|p' "$dir/env")
    if [ -n "$old_port" ] && redis-cli -p "$old_port" ping >/dev/null 2>&1; then
      die "$dir already holds running servers (run: servers.sh stop $dir)"
    fi
    stop "$dir"
  fi

  local redis_port pg_port
  redis_port=$(free_port)
  pg_port=$(free_port)

  # Redis: in-memory only; Postgres is the durable record.
  mkdir -p "$dir/redis"
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir/redis" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" >/dev/null
  wait_until 10 "redis-server on port $redis_port" redis-cli -p "$redis_port" ping

  # Postgres: a private cluster owned by an unprivileged user.
  ensure_pg_user
  mkdir -p "$dir/pg"
  if [ "$(id -u)" = 0 ]; then chown "${CAIRN_PG_USER:-cairn-pg}" "$dir/pg"; chmod 700 "$dir/pg"; fi
  chmod o+x "$dir" 2>/dev/null || true
  # An existing cluster is reused, so `cairn dev` keeps its data across restarts; the port and
  # durability settings are given per start rather than written into postgresql.conf.
  if [ ! -f "$dir/pg/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir/pg/data" -U cairn --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 \
      || { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
wal_level = minimal
max_wal_senders = 0
CONF
  fi
  pg_start "$dir" "$pg_port"
  if [ -z "$(as_pg "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U cairn -d postgres -qAt -c "SELECT 1 FROM pg_database WHERE datname = 'cairn'")" ]; then
    as_pg "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U cairn -d postgres -qAt -c "CREATE DATABASE cairn" >/dev/null
  fi

  cat >"$dir/env.tmp" <<ENV
CAIRN_POSTGRES_URL=postgres://cairn@127.0.0.1:$pg_port/cairn
CAIRN_REDIS_URL=redis://127.0.0.1:$redis_port/0
CAIRN_LOCAL_SERVERS_DIR=$dir
ENV
  mv "$dir/env.tmp" "$dir/env"

  if [ -n "$owner" ]; then
    # The watchdog runs in its own session so a terminal's Ctrl-C reaches the owner, which
    # stops the servers itself; the watchdog only covers an owner that died without doing so.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/env" ]; do sleep 1; done; [ -f "$2/env" ] && "$3" stop "$2"' \
      watchdog "$owner" "$dir" "$(readlink -f "$0")" >/dev/null 2>&1 </dev/null &
  fi
  cat "$dir/env"
}

# pg_start DIR PORT: starts DIR's Postgres cluster on PORT, durability per CAIRN_PG_FSYNC.
pg_start() {
  local dir=$1 pg_port=$2
  local bin; bin=$(pg_bin)
  local sync=${CAIRN_PG_FSYNC:-on}
  case "$sync" in on|off) ;; *) die "CAIRN_PG_FSYNC must be on or off, got $sync" ;; esac
  as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -t 60 \
    -o "-p $pg_port -k $dir/pg -c fsync=$sync -c synchronous_commit=$sync -c full_page_writes=$sync" start >/dev/null \
    || { tail -n 30 "$dir/pg/postgres.log" >&2; die "postgres did not start"; }
}

# postgres_port DIR: the Postgres port of DIR's running servers, from DIR/env.
postgres_port() {
  [ -f "$1/env" ] || die "$1 holds no running servers"
  sed -n 's|^CAIRN_POSTGRES_URL=postgres://[^@]*@127.0.0.1:\([0-9]*\)/.*|\1|p' "$1/env"
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local bin; bin=$(pg_bin)
  if [ -f "$dir/pg/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || {
      local pid; pid=$(head -n 1 "$dir/pg/data/postmaster.pid" 2>/dev/null || true)
      [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
    }
  fi
  if [ -f "$dir/redis/redis.pid" ]; then
    local rpid; rpid=$(cat "$dir/redis/redis.pid")
    kill "$rpid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$rpid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then kill -9 "$rpid" 2>/dev/null || true; fi
      sleep 0.1
    done
    rm -f "$dir/redis/redis.pid"
  fi
  rm -f "$dir/env"
}

cmd=${1:-}; shift || true
case "$cmd" in
  start)
    [ $# -ge 1 ] || die "usage: servers.sh start DIR [--owner-pid PID]"
    dir=$1; shift
    owner=""
    if [ "${1:-}" = "--owner-pid" ]; then owner=${2:?--owner-pid needs a pid}; fi
    start "$dir" "$owner"
    ;;
  stop)
    [ $# -ge 1 ] || die "usage: servers.sh stop DIR"
    stop "$1"
    ;;
  run)
    dir=""
    if [ "${1:-}" != "--" ]; then dir=${1:-}; shift || true; fi
    [ "${1:-}" = "--" ] || die "usage: servers.sh run [DIR] -- CMD [ARGS...]"
    shift
    owned_tmp=""
    if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/cairn-servers.XXXXXX); owned_tmp=$dir; fi
    trap 'stop "$dir"; [ -z "$owned_tmp" ] || rm -rf "$owned_tmp"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    set -a
    # shellcheck disable=SC1091
    . <(start "$dir" $$)
    set +a
    status=0
    "$@" || status=$?
    exit $status
    ;;
  postgres-stop)
    [ $# -ge 1 ] || die "usage: servers.sh postgres-stop DIR [fast|immediate]"
    dir=$(cd "$1" && pwd); mode=${2:-fast}
    postgres_port "$dir" >/dev/null
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m "$mode" -w -t 30 stop >/dev/null
    ;;
  postgres-start)
    [ $# -ge 1 ] || die "usage: servers.sh postgres-start DIR"
    dir=$(cd "$1" && pwd)
    port=$(postgres_port "$dir")
    pg_start "$dir" "$port"
    ;;
  *)
    die "usage: servers.sh start DIR [--owner-pid PID] | stop DIR | run [DIR] -- CMD [ARGS...] | postgres-stop DIR [fast|immediate] | postgres-start DIR"
    ;;
esac
