#!/usr/bin/env bash
# pg-tmp.sh — throwaway PostgreSQL clusters for tests, CI and the drill.
#
#   eval "$(scripts/pg-tmp.sh start)"        # ~1 s; prints the environment to use it
#   psql -c 'select 1'                        # PGHOST/PGPORT/... are now set
#   scripts/pg-tmp.sh stop "$PGTEST_DIR"      # stops it and removes its directory
#
# Commands:
#   start [--dir D] [--port P] [--watch-pid PID] [--password-role NAME] [--tls]
#       Creates a cluster in D (default: a new mktemp dir under /tmp) and starts
#       it on 127.0.0.1:P (default: a free private port) and on a unix socket in D.
#       If D already holds a cluster made by this script, starts it again on its
#       recorded port. Prints `export PGTEST_DIR=… PGHOST=… PGPORT=… PGUSER=postgres
#       PGDATABASE=postgres INTEGRATION_DB_URL=postgresql://postgres@127.0.0.1:P/postgres`.
#       --watch-pid PID   stop and remove the cluster when process PID exits
#                         (a detached watchdog; test harnesses pass their own pid)
#       --password-role NAME
#                         create login role NAME whose password is read from the
#                         environment variable PGTMP_ROLE_PASSWORD (never argv);
#                         NAME must authenticate with scram-sha-256 over TCP
#                         (everyone else is trusted, it is a throwaway cluster)
#       --tls             serve TLS with a fresh private CA; also exports
#                         PGSSLROOTCERT=D/ca.crt (server cert for 127.0.0.1, localhost)
#   stop DIR      stops the cluster and removes DIR (a no-op if DIR is gone)
#   halt DIR      stops the server but keeps DIR (`start --dir DIR` brings it back)
#   restart DIR   stops and starts the server on the same port
#   status DIR    prints "running PORT" (exit 0) or "stopped" (exit 1)
#   env DIR       prints the export line again
#   sql DIR [PSQL-ARGS]  runs the SQL on stdin as the postgres superuser (psql via
#                 the socket; e.g. `-tA -d DB` for bare output from database DB)
#
# Server binaries come from $PGTMP_BIN, else PATH, else the newest
# /usr/lib/postgresql/<version>/bin ($PGTMP_PG_ROOT replaces /usr/lib/postgresql).
# As root, the server runs as the `postgres` OS user (initdb refuses root) via
# `runuser -u postgres --`.
# Durability is off (fsync, synchronous_commit, full_page_writes): test data only.
# Exit codes: 0 ok, 1 status says stopped, 2 usage error or missing PostgreSQL,
# 3 the server failed to start.
set -euo pipefail

readonly MARKER=.pg-tmp
SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF

die() {
  echo "pg-tmp: error: $1" >&2
  exit "${2:-2}"
}

usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The directory holding initdb, pg_ctl, psql.
find_bin_dir() {
  local d candidates=() newest=""
  if [[ -n "${PGTMP_BIN:-}" ]]; then
    [[ -x "$PGTMP_BIN/initdb" && -x "$PGTMP_BIN/pg_ctl" ]] ||
      die "PGTMP_BIN=$PGTMP_BIN has no initdb/pg_ctl"
    echo "$PGTMP_BIN"
    return
  fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  shopt -s nullglob
  candidates=("${PGTMP_PG_ROOT:-/usr/lib/postgresql}"/*/bin)
  shopt -u nullglob
  for d in "${candidates[@]}"; do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
      newest=$(printf '%s\n%s\n' "$newest" "$d" | sed '/^$/d' | sort -V | tail -n 1)
    fi
  done
  [[ -n "$newest" ]] ||
    die "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; install PostgreSQL: apt-get install postgresql"
  echo "$newest"
}

# Runs a command as the cluster owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

check_cluster_dir() {
  local dir=$1
  [[ -f "$dir/$MARKER" ]] || die "$dir is not a cluster made by pg-tmp.sh (no $MARKER file)"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local p i
  for i in $(seq 1 50); do
    p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 30000))
    if ! port_in_use "$p"; then
      echo "$p"
      return
    fi
  done
  die "no free TCP port found in 20000-49999" 3
}

print_env() {
  local dir=$1 port
  port=$(cat "$dir/port")
  printf 'export PGTEST_DIR=%q PGHOST=%q PGPORT=%q PGUSER=postgres PGDATABASE=postgres INTEGRATION_DB_URL=%q' \
    "$dir" "$dir" "$port" "postgresql://postgres@127.0.0.1:$port/postgres"
  if [[ -f "$dir/ca.crt" ]]; then
    printf ' PGSSLROOTCERT=%q' "$dir/ca.crt"
  fi
  printf '\n'
}

is_running() {
  local dir=$1 bin
  bin=$(find_bin_dir)
  [[ -f "$dir/data/postmaster.pid" ]] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

make_tls() {
  local dir=$1 ext
  command -v openssl >/dev/null 2>&1 || die "--tls needs openssl: apt-get install openssl"
  ext="$dir/server.ext"
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$ext"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
    -subj /CN=pg-tmp-test-ca -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj /CN=localhost -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 3 -extfile "$ext" -out "$dir/server.crt" 2>/dev/null
  chmod 600 "$dir/server.key"
  chmod 644 "$dir/ca.crt" "$dir/server.crt"
  if [[ "$(id -u)" -eq 0 ]]; then
    chown postgres:postgres "$dir/server.key" "$dir/server.crt"
  fi
  {
    echo "ssl = on"
    echo "ssl_cert_file = '$dir/server.crt'"
    echo "ssl_key_file = '$dir/server.key'"
  } >>"$dir/data/postgresql.conf"
}

init_cluster() {
  local dir=$1 bin=$2 role=$3 tls=$4
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    die "initdb failed; see $dir/initdb.log: $(tail -n 1 "$dir/initdb.log")" 3
  {
    echo "# pg-tmp.sh: a throwaway test cluster"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
    echo "max_connections = 200"
  } >>"$dir/data/postgresql.conf"
  if [[ -n "$role" ]]; then
    # First match wins in pg_hba.conf: the role must use its password over TCP.
    local hba="$dir/data/pg_hba.conf"
    {
      echo "host all $role 127.0.0.1/32 scram-sha-256"
      echo "host all $role ::1/128 scram-sha-256"
      cat "$hba"
    } >"$hba.new"
    mv "$hba.new" "$hba"
    [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$hba"
  fi
  if [[ "$tls" -eq 1 ]]; then
    make_tls "$dir"
  fi
}

start_server() {
  local dir=$1 bin=$2 want_port=$3 port attempt
  for attempt in 1 2 3 4 5; do
    port=${want_port:-$(pick_port)}
    echo "$port" >"$dir/port"
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port" start >/dev/null 2>&1; then
      return 0
    fi
    # Without a fixed port, another cluster may have taken ours between the
    # check and the bind: pick another one.
    if [[ -n "$want_port" ]] || [[ "$attempt" -eq 5 ]]; then
      die "PostgreSQL failed to start on port $port; see $dir/server.log: $(tail -n 1 "$dir/server.log" 2>/dev/null || true)" 3
    fi
  done
}

create_role() {
  local dir=$1 bin=$2 role=$3 password
  password=${PGTMP_ROLE_PASSWORD:-}
  [[ -n "$password" ]] || die "--password-role needs the password in PGTMP_ROLE_PASSWORD"
  # SQL on stdin (not argv) so that the password never shows in `ps`.
  printf "CREATE ROLE %s LOGIN PASSWORD '%s';\n" "$role" "${password//\'/\'\'}" |
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(cat "$dir/port")" \
      -U postgres -d postgres >/dev/null
}

cmd_start() {
  local dir="" port="" watch_pid="" role="" tls=0 bin fresh=0
  while [[ $# -gt 0 ]]; do
    case $1 in
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --watch-pid) watch_pid=${2:?--watch-pid needs a pid}; shift 2 ;;
    --password-role) role=${2:?--password-role needs a role name}; shift 2 ;;
    --tls) tls=1; shift ;;
    -h | --help) usage ;;
    *) die "start: unknown argument '$1' (see: pg-tmp.sh --help)" ;;
    esac
  done
  [[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || die "--port '$port' is not a number"
  [[ -z "$watch_pid" || "$watch_pid" =~ ^[0-9]+$ ]] || die "--watch-pid '$watch_pid' is not a pid"
  [[ -z "$role" || "$role" =~ ^[a-z_][a-z0-9_]*$ ]] ||
    die "--password-role '$role' must be a lower-case SQL identifier"
  [[ -z "$role" || -n "${PGTMP_ROLE_PASSWORD:-}" ]] ||
    die "--password-role needs the password in PGTMP_ROLE_PASSWORD"
  bin=$(find_bin_dir)

  if [[ -z "$dir" ]]; then
    dir=$(mktemp -d /tmp/pgtmp.XXXXXX)
  else
    mkdir -p "$dir"
    dir=$(readlink -f "$dir")
  fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    [[ -z "$(ls -A "$dir")" ]] || die "--dir $dir is not empty and holds no cluster"
    fresh=1
    echo "pg-tmp.sh cluster, created $(date -u +%FT%TZ) by pid $$" >"$dir/$MARKER"
    if [[ "$(id -u)" -eq 0 ]]; then
      chown postgres:postgres "$dir"
    fi
    chmod 700 "$dir"
    init_cluster "$dir" "$bin" "$role" "$tls"
  else
    check_cluster_dir "$dir"
    port=${port:-$(cat "$dir/port")}
  fi
  if ! is_running "$dir"; then
    start_server "$dir" "$bin" "$port"
  fi
  if [[ "$fresh" -eq 1 && -n "$role" ]]; then
    create_role "$dir" "$bin" "$role"
  fi
  if [[ -n "$watch_pid" ]]; then
    # Detached (own session, no inherited stdio) so that it outlives the caller's
    # process group and does not hold the caller's pipes open.
    setsid "$SELF" watch "$dir" "$watch_pid" </dev/null >>"$dir/watchdog.log" 2>&1 &
  fi
  print_env "$dir"
}

cmd_watch() {
  local dir=$1 pid=$2
  while [[ -d "$dir" ]] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.5
  done
  if [[ -d "$dir" ]]; then
    echo "pg-tmp: watched process $pid exited; removing $dir" >&2
    cmd_stop "$dir"
  fi
}

stop_server() {
  local dir=$1 mode=$2 bin
  bin=$(find_bin_dir)
  if is_running "$dir"; then
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 30 stop >/dev/null 2>&1; then
      # A concurrent stop (the watchdog) may have won the race: only a
      # server still running is a failure.
      if is_running "$dir"; then
        die "pg_ctl stop failed for $dir" 3
      fi
    fi
  fi
  return 0
}

cmd_stop() {
  local dir=${1:?stop needs the cluster directory}
  [[ -d "$dir" ]] || return 0
  check_cluster_dir "$dir"
  # Immediate: the data is thrown away anyway, and it takes ~0.1 s.
  stop_server "$dir" immediate
  rm -rf "$dir"
}

cmd_halt() {
  local dir=${1:?halt needs the cluster directory}
  check_cluster_dir "$dir"
  stop_server "$dir" fast
}

cmd_restart() {
  local dir=${1:?restart needs the cluster directory} bin
  check_cluster_dir "$dir"
  bin=$(find_bin_dir)
  stop_server "$dir" fast
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $(cat "$dir/port")" start >/dev/null 2>&1 ||
    die "PostgreSQL failed to restart on port $(cat "$dir/port"); see $dir/server.log" 3
  print_env "$dir"
}

cmd_status() {
  local dir=${1:?status needs the cluster directory}
  if [[ -f "$dir/$MARKER" ]] && is_running "$dir"; then
    echo "running $(cat "$dir/port")"
  else
    echo "stopped"
    exit 1
  fi
}

cmd_env() {
  local dir=${1:?env needs the cluster directory}
  check_cluster_dir "$dir"
  print_env "$dir"
}

cmd_sql() {
  local dir=${1:?sql needs the cluster directory} bin
  shift
  check_cluster_dir "$dir"
  bin=$(find_bin_dir)
  as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(cat "$dir/port")" \
    -U postgres -d postgres "$@"
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1
  shift
  case $cmd in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  halt) cmd_halt "$@" ;;
  restart) cmd_restart "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  sql) cmd_sql "$@" ;;
  watch) cmd_watch "$@" ;;
  -h | --help | help) usage ;;
  *) die "unknown command '$cmd' (start, stop, halt, restart, status, env, sql)" ;;
  esac
}

main "$@"
