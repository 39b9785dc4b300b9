#!/usr/bin/env bash
# drill.sh — the disaster-recovery drill: both runbooks end to end on one
# machine, then the invariants that say nothing was lost or doubled.
#
#   scripts/drill.sh                 # build if needed, run the drill, print the report
#   scripts/drill.sh --json          # the report as one JSON object
#
# What it does, in a temporary work directory:
#   1. builds the tools if needed (cargo build --workspace --bins --example make-dar:
#      a debug build, the one scripts/test.sh makes too; --release for optimized ones);
#   2. starts a throwaway PostgreSQL (scripts/pg-tmp.sh) with the Integration DB,
#      the participant simulator (canton-sim) and the reference ingester
#      (tx-ingest) in the background;
#   3. traffic: deposits to known accounts, noise, withdrawals requested by
#      "Internal Systems" (rows with trecTgt, checking the withdrawal gate) and
#      submitted by "Withdrawal Automation" on the simulator, DAR uploads
#      recorded in the registry (dar-sync);
#   4. backups: the Integration DB (pg_dump), a stand-in validator-app dump,
#      the participant (canton-sim backup), a manifest (backup-manifest.sh);
#   5. more traffic, incl. a DAR uploaded and withdrawals requested after the backup;
#   6. disaster 1: the node is restored from its backup by restore-validator.sh
#      (runbook A; the restore command stops the simulator, restores, restarts it);
#   7. more traffic, then disaster 2: the Integration DB is destroyed and
#      restored from its dump by restore-integration-db.sh (runbook B) while
#      withdrawals are in flight and requests made after the dump are lost;
#      "Internal Systems" keep trying to create withdrawals during the freeze;
#   8. checks the invariants:
#        updates-exactly-once  every update id on the synchronizer that the treasury
#                              sees is ingested exactly once (and its deposit booked once)
#        withdrawals           no withdrawal on the ledger lost or doubled in the DB,
#                              none left unresolved (requested/submitted past trecTgt)
#        dars                  every DAR uploaded during the drill is on the node
#        frozen                no withdrawal created while the gate was frozen
#        runbooks              both runbooks finished (exit 0)
#      and prints a report. Nothing is left running.
#
# Options:
#   --scale N                  traffic multiplier (default 1)
#   --non-unique-record-times  the simulator gives some updates the same record time;
#                              runbook A uses the lookup-minus-1us and dedup-from path
#   --canton-semantics V       3.3 or 3.4 (3.4.9+ exact record-time lookups; default 3.4)
#   --break INVARIANT          break one on purpose to prove the checks bite:
#                                resume-at-old-offset  restore the node but let ingestion
#                                                      resume at its pre-restore offset
#                                unrecorded-dar        upload a DAR after the backup
#                                                      without recording it
#                                create-while-frozen   Internal Systems skip the gate check
#   --json                     print the report as JSON (default: text)
#   --keep                     keep the work directory (logs, journals, backups)
#   --debug                    build and use debug binaries (the default)
#   --release                  build and use release binaries (for large --scale; a
#                              clean release build takes ~3x as long as a debug one)
#   --no-build                 use the binaries already built (or --bin-dir)
#   --bin-dir DIR              where the binaries are (implies --no-build) [CANTON_DR_BIN_DIR]
#
# Time, measured from a clean clone on 2 cores (a machine shared with other
# builds, load 5-7): the debug build cost 5.7 CPU-minutes (user + sys; about
# 3 minutes of wall time when the 2 cores are free), the drill itself 20-35 s.
# A clean release build cost 12.9 CPU-minutes, more than the 5-minute budget
# allows, hence debug by default.
#
# Exit codes: 0 every invariant holds; 1 an invariant failed; 2 usage error or
# a missing prerequisite (cargo, PostgreSQL, jq); 3 the drill itself could not
# run (a process failed to start, a wait timed out).
set -euo pipefail
shopt -s inherit_errexit

CDR_PROG=drill
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"
SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF
readonly PG_TMP="$CDR_REPO/scripts/pg-tmp.sh"

# The withdrawal ttl of the drill's Internal Systems (trecTgt = request + ttl).
readonly TTL_SECONDS=6
readonly GATE=cn-withdrawals
readonly SCHEMA=canton_integration
# A receiving customer party (any valid party id will do).
readonly RECEIVER="drill-customer::1220aaaabbbbccccddddeeeeffff00001111222233334444555566667777888899990000"

DRILL_START=$(date +%s%N)

# --- small helpers -----------------------------------------------------------

elapsed() { echo "$((($(date +%s%N) - DRILL_START) / 1000000))"; }
say() {
  local ms
  ms=$(elapsed)
  printf 'drill [%3d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2
}
fail_setup() { cdr_die "$1" "${2:-see the logs in $WORK/logs (rerun with --keep to keep them)}" "$CDR_TRANSIENT"; }

# A free TCP port on 127.0.0.1, below Linux's ephemeral range (32768+) so that
# no outgoing connection takes it between this check and the bind, and none
# of the ports in $USED_PORTS.
USED_PORTS=" "
free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 12000))
    [[ "$USED_PORTS" != *" $p "* ]] || continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "
      echo "$p"
      return
    fi
  done
  fail_setup "no free TCP port found in 20000-31999"
}

# The directory with psql, pg_dump and pg_restore (as pg-tmp.sh finds initdb).
find_pg_bin() {
  local d newest=""
  if [[ -n "${PGTMP_BIN:-}" ]]; then
    echo "$PGTMP_BIN"
    return
  fi
  for d in "${PGTMP_PG_ROOT:-/usr/lib/postgresql}"/*/bin; do
    if [[ -x "$d/pg_restore" && -x "$d/psql" ]]; then
      newest=$(printf '%s\n%s\n' "$newest" "$d" | sed '/^$/d' | sort -V | tail -n 1)
    fi
  done
  if [[ -z "$newest" ]] && command -v pg_restore >/dev/null 2>&1; then
    newest=$(dirname "$(command -v pg_restore)")
  fi
  [[ -n "$newest" ]] || cdr_die "PostgreSQL client tools (psql, pg_dump, pg_restore) not found" \
    "install PostgreSQL: apt-get install postgresql" "$CDR_USAGE"
  echo "$newest"
}

# psql against the Integration DB (as the cluster's trusted superuser, over TCP).
sql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DB_PORT" -U postgres -d exchange "$@"; }

# Starts a background process NAME with its output in logs/, its pid in pids/.
spawn() {
  local name=$1
  shift
  "$@" </dev/null >>"$WORK/logs/$name.out" 2>>"$WORK/logs/$name.log" 3>&- &
  echo $! >"$WORK/pids/$name"
}

# Stops the processes recorded as NAME… (TERM to all, then KILL whatever is
# left after 10 s).
stop_process() {
  local name pids=() pid i
  for name in "$@"; do
    [[ -f "$WORK/pids/$name" ]] || continue
    pid=$(cat "$WORK/pids/$name")
    rm -f "$WORK/pids/$name"
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for i in $(seq 1 100); do
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && break
      pid=""
    done
    [[ -n "${pid:-}" ]] || return 0
    sleep 0.05
  done
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

tool() { "$BIN/$1" "${@:2}"; }
ctl() { "$BIN/canton-sim" ctl --control-api "$CTL_API" "$@"; }

# --- the simulator, the ingester, PostgreSQL --------------------------------

start_sim() {
  local ready="$WORK/sim-ready.json" i
  : >"$ready"
  local flags=(serve --state-dir "$WORK/sim" --admin-port "$ADMIN_PORT" --ledger-port "$LEDGER_PORT"
    --control-port "$CTL_PORT" --semantics "$SEMANTICS" --catch-up 1s)
  [[ "$NON_UNIQUE" -eq 1 ]] && flags+=(--record-time-ties)
  "$BIN/canton-sim" "${flags[@]}" </dev/null >"$ready" 2>>"$WORK/logs/canton-sim.log" 3>&- &
  echo $! >"$WORK/pids/canton-sim"
  for i in $(seq 1 300); do
    [[ -s "$ready" ]] && break
    kill -0 "$(cat "$WORK/pids/canton-sim")" 2>/dev/null || fail_setup "canton-sim exited at start: $(tail -n 2 "$WORK/logs/canton-sim.log")"
    sleep 0.1
  done
  [[ -s "$ready" ]] || fail_setup "canton-sim did not get ready within 30 s"
  # Its control API must answer before any traffic is sent.
  for i in $(seq 1 50); do
    ctl status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail_setup "canton-sim's control API at $CTL_API does not answer: $(tail -n 3 "$WORK/logs/canton-sim.log" 2>/dev/null)"
}

start_ingest() {
  spawn tx-ingest "$BIN/tx-ingest" --treasury-party "$TREASURY" --ledger-api "$LEDGER_API" \
    --progress-interval 0s --give-up-after 10m
}

# Waits until ingestion is live and at the node's ledger end.
wait_caught_up() {
  local what=$1 i status
  for i in $(seq 1 600); do
    status=$(tool ingest-ctl status --ledger-api "$LEDGER_API" 2>/dev/null || true)
    if [[ -n "$status" ]] && jq -e '.liveIngester and .actualState == "running" and .lag == 0' <<<"$status" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  cdr_warn "ingestion did not catch up ($what) within 60 s: $(jq -c '{actualState, position, ledgerEnd, lag}' <<<"${status:-{\}}" 2>/dev/null)"
  return 1
}

# --- Internal Systems and Withdrawal Automation ------------------------------

# Creates a withdrawal request the way docs/withdrawal-gate.md says Internal
# Systems must: insert, then check the gate in the same transaction. Prints
# "created|refused CHECKED-AT". --no-check skips the gate check (--break).
request_withdrawal() {
  local wid=$1 trec=$2 check=${3:-check} cond=":frozen"
  [[ "$check" == check ]] || cond="false"
  sql -tA <<SQL
BEGIN;
INSERT INTO $SCHEMA.withdrawals (withdrawal_id, account_id, receiver, instrument_id, amount, trec_tgt, status)
VALUES ('$wid', 'acct-1', '$RECEIVER', 'Amulet', 1.0, '$trec', 'requested');
SELECT coalesce((SELECT frozen FROM $SCHEMA.withdrawal_gate WHERE gate = '$GATE'), false) AS frozen,
       to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS checked_at \gset
\if $cond
ROLLBACK;
\echo refused :checked_at
\else
COMMIT;
\echo created :checked_at
\endif
SQL
}

trec_tgt() { date -u -d "+$TTL_SECONDS seconds" +%Y-%m-%dT%H:%M:%S.%6NZ; }

# Withdrawal Automation: submits a requested withdrawal on the ledger with its
# trecTgt, then marks it submitted (unless ingestion completed it already).
submit_withdrawal() {
  local wid=$1 trec=$2 out
  out=$(ctl withdraw --withdrawal-id "$wid" --amount 1 --receiver "$RECEIVER" --trec-tgt "$trec") ||
    fail_setup "submitting withdrawal $wid failed"
  printf '%s\n' "$out" >>"$WORK/check/submissions.ndjson"
  sql -c "UPDATE $SCHEMA.withdrawals SET status = 'submitted', updated_at = now()
          WHERE withdrawal_id = '$wid' AND status = 'requested'" >/dev/null
  jq -r .outcome <<<"$out"
}

# Requests and submits N withdrawals named PREFIX-i (completed by ingestion).
withdrawals() {
  local prefix=$1 n=$2 i trec res
  for i in $(seq 1 "$n"); do
    trec=$(trec_tgt)
    res=$(request_withdrawal "$prefix-$i" "$trec")
    [[ "$res" == created* ]] || fail_setup "Internal Systems could not create $prefix-$i: $res"
    submit_withdrawal "$prefix-$i" "$trec" >/dev/null
  done
}

# --- DARs ----------------------------------------------------------------------

# Makes DAR NAME in dars/SUBDIR and uploads it (recorded in the registry, unless
# `unrecorded`).
upload_dar() {
  local name=$1 mode=${3:-recorded} dir="$WORK/dars/$2"
  mkdir -p "$dir"
  "$MAKE_DAR" --name "$name" --package-version 1.0.0 --seed "$RANDOM" --out "$dir/$name.dar" >/dev/null ||
    fail_setup "make-dar failed for $name"
  if [[ "$mode" == recorded ]]; then
    tool dar-sync upload --dir "$dir/$name.dar" >/dev/null || fail_setup "dar-sync upload of $name failed"
    # Token onboarding records what it uploaded (idempotent after upload).
    tool dar-sync record "$dir/$name.dar" >/dev/null || fail_setup "dar-sync record of $name failed"
  else
    # No Integration DB for dar-sync: nothing is recorded in the registry.
    env -u INTEGRATION_DB_URL "$BIN/dar-sync" upload --dir "$dir/$name.dar" >/dev/null ||
      fail_setup "dar-sync upload of $name failed"
  fi
}

# --- disasters (internal subcommands, run by the runbooks' --restore-cmd) -----

load_env() {
  WORK=$1
  # shellcheck source=/dev/null
  source "$WORK/drill.env"
}

# Runbook A's restore command: stop the node, put the backup back, start it.
internal_restore_node() {
  load_env "$1"
  say "restore command: stopping the node, restoring its backup, restarting it"
  stop_process canton-sim
  tool canton-sim restore --state-dir "$WORK/sim" --from "$WORK/backups/participant" >>"$WORK/logs/restore.log" ||
    fail_setup "canton-sim restore failed"
  start_sim
}

# Runbook B's restore command: the Integration DB is destroyed (dropped, with
# every connection to it) and restored from the dump.
internal_restore_db() {
  load_env "$1"
  say "restore command: destroying the Integration DB, restoring it from the dump"
  touch "$WORK/internal-systems.paused"
  stop_process tx-ingest
  bash "$PG_TMP" sql "$PGDIR" <<<"DROP DATABASE IF EXISTS exchange WITH (FORCE); CREATE DATABASE exchange" >/dev/null ||
    fail_setup "could not drop and re-create the Integration DB"
  "$PG_BIN/pg_restore" -h 127.0.0.1 -p "$DB_PORT" -U postgres -d exchange --no-owner \
    "$WORK/backups/integration-db.dump" 2>>"$WORK/logs/restore.log" || fail_setup "pg_restore failed"
  # The restored gate is open (the dump predates the freeze): close it before
  # anything else reaches the database, as the runbook asks.
  bash -c "$CANTON_DR_FREEZE_CMD" >>"$WORK/logs/restore.log" || fail_setup "re-freezing the restored gate failed"
  start_ingest
  touch "$WORK/internal-systems.restored"
}

# Internal Systems during runbook B: from B1 (frozen) until B4 starts, try to
# create a withdrawal every 200 ms and log what happened. While the DB is being
# restored they are offline (as the DB would be), and come back when the
# restore command is done.
internal_systems() {
  load_env "$1"
  local journal="$WORK/runbook-b/journal.ndjson" n=0 res check=check
  [[ "$BREAK" == create-while-frozen ]] && check=no-check
  while ! jq -e -s 'any(.[]; .step == "B1" and .status == "done")' "$journal" >/dev/null 2>&1; do
    [[ -f "$WORK/internal-systems.stop" ]] && return 0
    sleep 0.1
  done
  while [[ ! -f "$WORK/internal-systems.stop" ]]; do
    if jq -e -s 'any(.[]; .step == "B4")' "$journal" >/dev/null 2>&1; then
      return 0
    fi
    if [[ -f "$WORK/internal-systems.paused" ]]; then
      if [[ -f "$WORK/internal-systems.restored" ]]; then
        rm -f "$WORK/internal-systems.paused"
      else
        sleep 0.1
        continue
      fi
    fi
    n=$((n + 1))
    if res=$(request_withdrawal "drill-frozen-$n" "$(trec_tgt)" "$check" 2>/dev/null); then
      echo "$res drill-frozen-$n" >>"$WORK/check/internal-systems.log"
    else
      echo "unavailable - drill-frozen-$n" >>"$WORK/check/internal-systems.log"
    fi
    sleep 0.2
  done
}

# Kills everything the drill started when the drill itself is gone (kill -9).
internal_watchdog() {
  load_env "$1"
  while kill -0 "$DRILL_PID" 2>/dev/null; do
    sleep 0.5
  done
  local f
  for f in "$WORK"/pids/*; do
    if [[ -f "$f" ]]; then
      kill -KILL "$(cat "$f")" 2>/dev/null || true
    fi
  done
  if [[ -d "$PGDIR" ]]; then
    if [[ "$KEEP" -eq 1 ]]; then
      bash "$PG_TMP" halt "$PGDIR" >/dev/null 2>&1 || true
    else
      bash "$PG_TMP" stop "$PGDIR" >/dev/null 2>&1 || true
    fi
  fi
}

# --- set-up and tear-down ----------------------------------------------------

parse_args() {
  SCALE=1 NON_UNIQUE=0 SEMANTICS=3.4 BREAK="" JSON=0 KEEP=0 PROFILE=debug BUILD=1
  BIN_DIR_ARG=${CANTON_DR_BIN_DIR:-}
  while [[ $# -gt 0 ]]; do
    case $1 in
    --scale) SCALE=${2:?$1 needs a number}; shift 2 ;;
    --non-unique-record-times) NON_UNIQUE=1; shift ;;
    --canton-semantics) SEMANTICS=${2:?$1 needs 3.3 or 3.4}; shift 2 ;;
    --break) BREAK=${2:?$1 needs an invariant}; shift 2 ;;
    --json) JSON=1; shift ;;
    --keep) KEEP=1; shift ;;
    --debug) PROFILE=debug; shift ;;
    --release) PROFILE=release; shift ;;
    --no-build) BUILD=0; shift ;;
    --bin-dir) BIN_DIR_ARG=${2:?$1 needs a directory}; shift 2 ;;
    -h | --help) cdr_usage "$SELF" ;;
    *) cdr_die "unknown argument '$1'" "see: drill.sh --help" "$CDR_USAGE" ;;
    esac
  done
  # Errors go to stdout as JSON only along with a JSON report.
  if [[ "$JSON" -eq 1 ]]; then CDR_OUTPUT=json; else CDR_OUTPUT=text; fi
  [[ "$SCALE" =~ ^[1-9][0-9]*$ ]] || cdr_die "--scale '$SCALE' must be a positive number" "" "$CDR_USAGE"
  [[ "$SEMANTICS" == 3.3 || "$SEMANTICS" == 3.4 ]] ||
    cdr_die "--canton-semantics '$SEMANTICS' must be 3.3 or 3.4" "" "$CDR_USAGE"
  case $BREAK in
  "" | resume-at-old-offset | unrecorded-dar | create-while-frozen) ;;
  *) cdr_die "--break '$BREAK' is not one of resume-at-old-offset, unrecorded-dar, create-while-frozen" "" "$CDR_USAGE" ;;
  esac
}

build() {
  local started
  started=$(date +%s)
  BUILD_SECONDS=0
  if [[ -n "$BIN_DIR_ARG" ]]; then
    BIN=$(readlink -f "$BIN_DIR_ARG")
  else
    BIN="$CDR_REPO/target/$PROFILE"
    if [[ "$BUILD" -eq 1 ]]; then
      command -v cargo >/dev/null 2>&1 ||
        cdr_die "cargo is not installed" "install Rust (https://rustup.rs), or pass --bin-dir with built binaries" "$CDR_USAGE"
      local flags=()
      [[ "$PROFILE" == release ]] && flags+=(--release)
      say "building the tools (cargo build ${flags[*]} --workspace --bins --example make-dar)"
      (cd "$CDR_REPO" && cargo build "${flags[@]}" --workspace --bins --example make-dar) >&2 ||
        cdr_die "the build failed" "see the cargo output above" "$CDR_USAGE"
      BUILD_SECONDS=$(($(date +%s) - started))
    fi
  fi
  local b
  for b in canton-sim tx-ingest ingest-ctl offset-lookup dar-sync withdrawal-gate; do
    [[ -x "$BIN/$b" ]] || cdr_die "$b is not built in $BIN" "run without --no-build, or build: cargo build --workspace --bins" "$CDR_USAGE"
  done
  MAKE_DAR="$BIN/examples/make-dar"
  [[ -x "$MAKE_DAR" ]] || cdr_die "make-dar is not built in $BIN/examples" \
    "build it: cargo build -p daml-dar --example make-dar (add --release for a release --bin-dir)" "$CDR_USAGE"
  export CANTON_DR_BIN_DIR=$BIN
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "${WORK:-}" && -d "$WORK" ]]; then
    touch "$WORK/internal-systems.stop" 2>/dev/null || true
    stop_process internal-systems tx-ingest canton-sim watchdog
    if [[ -d "${PGDIR:-}" ]]; then
      if [[ "$KEEP" -eq 1 ]]; then
        bash "$PG_TMP" halt "$PGDIR" >/dev/null 2>&1 || true
      else
        bash "$PG_TMP" stop "$PGDIR" >/dev/null 2>&1 || true
      fi
    fi
    if [[ "$KEEP" -eq 1 ]]; then
      say "work directory kept: $WORK (PostgreSQL halted; start it again: scripts/pg-tmp.sh start --dir $PGDIR)"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}

setup() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/canton-dr-drill.XXXXXX")
  # Traversable, so that the cluster's owner (`postgres`, when we are root) reaches pg/.
  chmod 711 "$WORK"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$WORK/logs" "$WORK/pids" "$WORK/check" "$WORK/backups" "$WORK/dars"
  say "work directory $WORK$([[ "$KEEP" -eq 1 ]] || echo ' (removed at the end; --keep keeps it)')"
  DRILL_PID=$$
  PGDIR="$WORK/pg"
  PG_BIN=$(find_pg_bin)
  # (not in $(...): free_port records what it hands out)
  free_port >"$WORK/port" && ADMIN_PORT=$(cat "$WORK/port")
  free_port >"$WORK/port" && LEDGER_PORT=$(cat "$WORK/port")
  free_port >"$WORK/port" && CTL_PORT=$(cat "$WORK/port")
  export CANTON_ADMIN_API="127.0.0.1:$ADMIN_PORT" CANTON_LEDGER_API="127.0.0.1:$LEDGER_PORT"
  ADMIN_API=$CANTON_ADMIN_API LEDGER_API=$CANTON_LEDGER_API CTL_API="127.0.0.1:$CTL_PORT"

  say "starting PostgreSQL"
  local watch=()
  [[ "$KEEP" -eq 1 ]] || watch=(--watch-pid "$DRILL_PID")
  bash "$PG_TMP" start --dir "$PGDIR" "${watch[@]}" >/dev/null || fail_setup "PostgreSQL did not start"
  DB_PORT=$(cat "$PGDIR/port")
  export INTEGRATION_DB_URL="postgresql://postgres@127.0.0.1:$DB_PORT/exchange"
  bash "$PG_TMP" sql "$PGDIR" <<<"CREATE DATABASE exchange" >/dev/null
  tool ingest-ctl migrate >/dev/null || fail_setup "ingest-ctl migrate failed"

  say "starting canton-sim (semantics $SEMANTICS$([[ "$NON_UNIQUE" -eq 1 ]] && echo ', record-time ties'))"
  start_sim
  TREASURY=$(jq -r .treasuryParty "$WORK/sim-ready.json")
  SYNCHRONIZER=$(jq -r .synchronizerId "$WORK/sim-ready.json")
  declare -p WORK DRILL_PID PGDIR DB_PORT PG_BIN BIN MAKE_DAR ADMIN_PORT LEDGER_PORT CTL_PORT \
    ADMIN_API LEDGER_API CTL_API SEMANTICS NON_UNIQUE BREAK KEEP TREASURY SYNCHRONIZER \
    INTEGRATION_DB_URL CANTON_ADMIN_API CANTON_LEDGER_API CANTON_DR_BIN_DIR DRILL_START |
    sed 's/^declare /declare -g /' >"$WORK/drill.env"
  setsid "$SELF" __watchdog "$WORK" </dev/null >/dev/null 2>&1 3>&- &
  echo $! >"$WORK/pids/watchdog"

  # Deposit accounts acct-0 … acct-49 (the simulator's bulk traffic uses them).
  sql -c "INSERT INTO $SCHEMA.deposit_accounts (account_id, customer_id)
          SELECT 'acct-' || i, 'customer-' || i FROM generate_series(0, 49) i ON CONFLICT DO NOTHING" >/dev/null
  say "starting tx-ingest"
  start_ingest
}

# --- the drill ------------------------------------------------------------------

phase_before_backup() {
  say "phase 1: traffic before the backups"
  ctl traffic --deposits $((10 * SCALE)) --noise $((20 * SCALE)) >/dev/null || fail_setup "traffic failed"
  upload_dar drill-token-a before-backup
  upload_dar drill-token-b before-backup
  withdrawals drill-w-before $((3 * SCALE))
  wait_caught_up "before the backups" || fail_setup "ingestion did not catch up before the backups"
}

take_backups() {
  say "backups: Integration DB dump, validator-app stand-in, participant backup, manifest"
  # A withdrawal requested before the dump and submitted after it: in flight
  # across the Integration DB restore.
  INFLIGHT_TREC=$(trec_tgt)
  local res
  res=$(request_withdrawal drill-w-inflight "$INFLIGHT_TREC")
  [[ "$res" == created* ]] || fail_setup "could not create drill-w-inflight: $res"
  wait_caught_up "before the dump" || fail_setup "ingestion did not catch up before the dump"

  local t0 t1 t2 t3 t4
  t0=$(cdr_now)
  "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$DB_PORT" -U postgres -Fc -f "$WORK/backups/integration-db.dump" exchange ||
    fail_setup "pg_dump failed"
  t1=$(cdr_now)
  # The simulator has no validator app; its status stands in for that dump, so
  # that the manifest can check the app-before-participant order.
  ctl status >"$WORK/backups/validator-app.json" || fail_setup "canton-sim ctl status failed"
  t2=$(cdr_now)
  sleep 0.01
  t3=$(cdr_now)
  ctl backup --to "$WORK/backups/participant" >"$WORK/backups/participant.json" || fail_setup "canton-sim backup failed"
  t4=$(cdr_now)
  BACKUP_TIME=$t2
  MANIFEST=""
  local script="$CDR_REPO/scripts/backup-manifest.sh"
  if [[ -x "$script" ]]; then
    if "$script" --out "$WORK/backups/manifest.json" \
      --validator-app-dump "$WORK/backups/validator-app.json" --validator-app-started-at "$t1" --validator-app-finished-at "$t2" \
      --participant-dump "$WORK/backups/participant" --participant-started-at "$t3" --participant-finished-at "$t4" \
      --integration-db-dump "$WORK/backups/integration-db.dump" --integration-db-started-at "$t0" --integration-db-finished-at "$t1" \
      >"$WORK/logs/backup-manifest.json" 2>>"$WORK/logs/backup-manifest.log"; then
      MANIFEST="$WORK/backups/manifest.json"
      BACKUP_TIME=$(jq -r .backupTime "$MANIFEST")
    else
      fail_setup "backup-manifest.sh failed: $(tail -n 2 "$WORK/logs/backup-manifest.log")"
    fi
  else
    cdr_warn "scripts/backup-manifest.sh is not there: no manifest; runbook A gets --backup-time $BACKUP_TIME"
  fi
}

phase_after_backup() {
  say "phase 2: traffic after the backups (a DAR, withdrawals whose requests the DB restore will lose)"
  ctl traffic --deposits $((10 * SCALE)) --noise $((30 * SCALE)) >/dev/null || fail_setup "traffic failed"
  if [[ "$BREAK" == resume-at-old-offset ]]; then
    # More history after the backup: the restored node then numbers it with
    # clearly fewer offsets, so that the old offset is well ahead of the new.
    ctl traffic --noise 60 >/dev/null || fail_setup "traffic failed"
  fi
  if [[ "$BREAK" == unrecorded-dar ]]; then
    upload_dar drill-token-c after-backup unrecorded
  else
    upload_dar drill-token-c after-backup
  fi
  INFLIGHT_OUTCOME=$(submit_withdrawal drill-w-inflight "$INFLIGHT_TREC")
  withdrawals drill-w-after-dump $((2 * SCALE))
  wait_caught_up "after the backups" || fail_setup "ingestion did not catch up after the backups"
}

disaster_node() {
  say "disaster 1: the validator node is restored from its backup"
  local flags=(--state-dir "$WORK/runbook-a" --restore-cmd "$(cdr_quote "$SELF" __restore-node "$WORK")"
    --lookup-timeout 2m --catch-up-timeout 2m --stop-timeout 1m)
  if [[ -n "$MANIFEST" ]]; then
    flags+=(--manifest "$MANIFEST")
  else
    flags+=(--backup-time "$BACKUP_TIME")
  fi
  [[ "$NON_UNIQUE" -eq 1 ]] && flags+=(--non-unique-record-times)
  RUNBOOK_A_RC=0
  if [[ "$BREAK" == resume-at-old-offset ]]; then
    # The mistake: restore the node and restart ingestion without moving its
    # resume offset: it continues after its pre-restore offset.
    say "BREAK resume-at-old-offset: no runbook; ingestion restarts at its old offset"
    tool ingest-ctl stop --wait --timeout 1m >/dev/null || RUNBOOK_A_RC=$?
    "$SELF" __restore-node "$WORK"
    # New deposits get offsets below the old one (skipped), then enough noise
    # to move the ledger end past it.
    ctl traffic --deposits 20 >/dev/null || fail_setup "traffic failed"
    ctl traffic --noise 60 >/dev/null || fail_setup "traffic failed"
    tool ingest-ctl start --wait --timeout 1m >/dev/null || RUNBOOK_A_RC=$?
    # The DARs are put back right, so that only the offsets are wrong.
    tool dar-sync upload --registry >/dev/null || RUNBOOK_A_RC=$?
    printf '{"type":"result","runbook":"validator-restore","status":"skipped","exitCode":%d,"values":{}}\n' \
      "$RUNBOOK_A_RC" >"$WORK/check/runbook-a.ndjson"
    return
  fi
  "$CDR_REPO/scripts/restore-validator.sh" --output json "${flags[@]}" </dev/null \
    >"$WORK/check/runbook-a.ndjson" 2>>"$WORK/logs/runbook-a.log" || RUNBOOK_A_RC=$?
  [[ "$RUNBOOK_A_RC" -eq 0 ]] || cdr_warn "restore-validator.sh exited $RUNBOOK_A_RC; see $WORK/logs/runbook-a.log"
}

phase_after_node_restore() {
  say "phase 3: traffic after the node restore (requests the DB restore will lose)"
  ctl traffic --deposits $((5 * SCALE)) --noise $((10 * SCALE)) >/dev/null || fail_setup "traffic failed"
  withdrawals drill-w-after-node $((2 * SCALE))
  # A request made after the dump and never submitted: lost for good (nothing on the ledger).
  local res
  res=$(request_withdrawal drill-w-lost-request "$(trec_tgt)")
  [[ "$res" == created* ]] || fail_setup "could not create drill-w-lost-request: $res"
  wait_caught_up "after the node restore" || cdr_warn "continuing: the checks will tell"
  # Checked now: the Integration DB restore to come replays from an older
  # checkpoint and would hide what runbook A got wrong.
  load_check_data
  UPDATES_AFTER_NODE_RESTORE=$(updates_invariant updates-exactly-once-after-node-restore) ||
    fail_setup "the check after the node restore could not run"
}

disaster_db() {
  say "disaster 2: the Integration DB is destroyed and restored from its dump"
  "$SELF" __internal-systems "$WORK" </dev/null >>"$WORK/logs/internal-systems.log" 2>&1 3>&- &
  echo $! >"$WORK/pids/internal-systems"
  RUNBOOK_B_RC=0
  "$CDR_REPO/scripts/restore-integration-db.sh" --output json --state-dir "$WORK/runbook-b" \
    --reason "drill: Integration DB restore" --ttl "${TTL_SECONDS}s" --wait-timeout 2m \
    --restore-cmd "$(cdr_quote "$SELF" __restore-db "$WORK")" \
    --stop-cmd "touch $(printf '%q' "$WORK/automation.stopped")" \
    --start-cmd "rm -f $(printf '%q' "$WORK/automation.stopped")" </dev/null \
    >"$WORK/check/runbook-b.ndjson" 2>>"$WORK/logs/runbook-b.log" || RUNBOOK_B_RC=$?
  [[ "$RUNBOOK_B_RC" -eq 0 ]] || cdr_warn "restore-integration-db.sh exited $RUNBOOK_B_RC; see $WORK/logs/runbook-b.log"
  touch "$WORK/internal-systems.stop"
  local pid
  pid=$(cat "$WORK/pids/internal-systems")
  wait "$pid" 2>/dev/null || true
  rm -f "$WORK/pids/internal-systems"
}

phase_final() {
  say "final traffic and catch-up"
  ctl traffic --deposits $((2 * SCALE)) >/dev/null || fail_setup "traffic failed"
  wait_caught_up "at the end" || cdr_warn "continuing: the checks will tell"
}

# --- the invariants ---------------------------------------------------------------

# Loads the ledger's view (the updates the treasury sees) and the drill's
# logs next to the Integration DB, in schema drill_check.
load_check_data() {
  ctl update-ids --party "$TREASURY" >"$WORK/check/updates.ndjson" || fail_setup "canton-sim ctl update-ids failed"
  touch "$WORK/check/internal-systems.log"
  sql <<SQL >/dev/null
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS drill_check CASCADE;
CREATE SCHEMA drill_check;
CREATE TABLE drill_check.updates (j jsonb);
CREATE TABLE drill_check.attempts (line text);
\copy drill_check.updates (j) FROM '$WORK/check/updates.ndjson' WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
\copy drill_check.attempts (line) FROM '$WORK/check/internal-systems.log' WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
SQL
}

# The invariant NAME: every update on the ledger that the treasury sees is
# ingested exactly once, and each deposit booked once (after load_check_data).
updates_invariant() {
  sql -tA -v name="$1" <<SQL
WITH chain AS (
  SELECT j->>'updateId' AS id, j->>'kind' AS kind FROM drill_check.updates
), ing AS (
  SELECT update_id AS id FROM $SCHEMA.ingested_updates
), missing AS (
  SELECT id FROM chain EXCEPT SELECT id FROM ing
), unexpected AS (
  SELECT id FROM ing EXCEPT SELECT id FROM chain
), deposits_not_once AS (
  SELECT c.id, count(d.update_id) AS n
    FROM chain c LEFT JOIN $SCHEMA.deposits d ON d.update_id = c.id
   WHERE c.kind = 'deposit' GROUP BY c.id HAVING count(d.update_id) <> 1
)
SELECT json_build_object(
  'name', :'name',
  'ok', NOT EXISTS (SELECT 1 FROM missing) AND NOT EXISTS (SELECT 1 FROM unexpected)
        AND NOT EXISTS (SELECT 1 FROM deposits_not_once),
  'summary', format('%s updates on the ledger for the treasury, %s ingested; %s missing, %s not on the ledger, %s deposits not booked exactly once',
                    (SELECT count(*) FROM chain), (SELECT count(*) FROM ing), (SELECT count(*) FROM missing),
                    (SELECT count(*) FROM unexpected), (SELECT count(*) FROM deposits_not_once)),
  'details', json_build_object(
    'onLedger', (SELECT count(*) FROM chain), 'ingested', (SELECT count(*) FROM ing),
    'missing', (SELECT count(*) FROM missing),
    'missingSample', (SELECT coalesce(json_agg(id), '[]') FROM (SELECT id FROM missing ORDER BY id LIMIT 5) s),
    'notOnLedger', (SELECT count(*) FROM unexpected),
    'depositsNotBookedOnce', (SELECT count(*) FROM deposits_not_once)));
SQL
}

# One JSON object per invariant: {name, ok, summary, details}.
check_invariants() {
  local b1_frozen b4_thawed dars_dir_rc=0 dars_reg_rc=0
  b1_frozen=$(jq -r 'select(.type == "result") | .values.frozenAt // empty' "$WORK/check/runbook-b.ndjson" 2>/dev/null | tail -n 1)
  b4_thawed=$(jq -r 'select(.type == "result") | .values.thawedAt // empty' "$WORK/check/runbook-b.ndjson" 2>/dev/null | tail -n 1)
  [[ -n "$b1_frozen" ]] || b1_frozen=$(jq -r 'select(.step == "B1" and .status == "done") | .values.frozenAt // empty' "$WORK/runbook-b/journal.ndjson" 2>/dev/null | tail -n 1)

  tool dar-sync diff --dir "$WORK/dars" --check >"$WORK/check/dars-dir.ndjson" 2>>"$WORK/logs/checks.log" || dars_dir_rc=$?
  tool dar-sync diff --registry --check >"$WORK/check/dars-registry.ndjson" 2>>"$WORK/logs/checks.log" || dars_reg_rc=$?

  printf '%s\n' "$UPDATES_AFTER_NODE_RESTORE"
  updates_invariant updates-exactly-once
  sql -tA -v frozen="${b1_frozen:-infinity}" -v thawed="${b4_thawed:-infinity}" <<SQL
WITH chain AS (
  SELECT j->>'updateId' AS uid, j->>'reference' AS wid FROM drill_check.updates WHERE j->>'kind' = 'withdrawal'
), lost AS (
  SELECT c.wid FROM chain c
   WHERE NOT EXISTS (SELECT 1 FROM $SCHEMA.withdrawals w WHERE w.withdrawal_id = c.wid
                       AND w.status IN ('completed', 'recovered') AND w.completed_update_id = c.uid)
), doubled AS (
  SELECT wid FROM chain GROUP BY wid HAVING count(*) > 1
  UNION
  SELECT withdrawal_id FROM $SCHEMA.withdrawals WHERE needs_reconciliation AND status <> 'recovered'
), cp AS (
  SELECT record_time FROM $SCHEMA.ingestion_checkpoint WHERE ingester = 'tx-ingest'
), unresolved AS (
  SELECT w.withdrawal_id FROM $SCHEMA.withdrawals w
   WHERE w.status IN ('requested', 'submitted')
     AND (w.trec_tgt IS NULL OR w.trec_tgt < (SELECT record_time FROM cp))
), by_status AS (
  SELECT status, count(*) AS n FROM $SCHEMA.withdrawals GROUP BY status
)
SELECT json_build_object(
  'name', 'withdrawals',
  'ok', NOT EXISTS (SELECT 1 FROM lost) AND NOT EXISTS (SELECT 1 FROM doubled) AND NOT EXISTS (SELECT 1 FROM unresolved),
  'summary', format('%s withdrawals on the ledger; %s lost, %s doubled, %s unresolved; in the DB: %s',
                    (SELECT count(*) FROM chain), (SELECT count(*) FROM lost), (SELECT count(*) FROM doubled),
                    (SELECT count(*) FROM unresolved),
                    coalesce((SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM by_status), 'none')),
  'details', json_build_object(
    'onLedger', (SELECT count(*) FROM chain),
    'lost', (SELECT coalesce(json_agg(wid ORDER BY wid), '[]') FROM lost),
    'doubled', (SELECT coalesce(json_agg(wid ORDER BY wid), '[]') FROM doubled),
    'unresolved', (SELECT coalesce(json_agg(withdrawal_id ORDER BY withdrawal_id), '[]') FROM unresolved),
    'byStatus', (SELECT coalesce(json_object_agg(status, n), '{}') FROM by_status),
    'recovered', (SELECT coalesce(json_agg(withdrawal_id ORDER BY withdrawal_id), '[]')
                    FROM $SCHEMA.withdrawals WHERE status = 'recovered')));

WITH attempts AS (
  SELECT split_part(line, ' ', 1) AS outcome, nullif(split_part(line, ' ', 2), '-') AS checked_at,
         split_part(line, ' ', 3) AS wid
    FROM drill_check.attempts
), created_in_freeze AS (
  SELECT wid FROM attempts
   WHERE outcome = 'created' AND checked_at::timestamptz >= :'frozen'::timestamptz
     AND checked_at::timestamptz < :'thawed'::timestamptz
), rows_in_freeze AS (
  SELECT withdrawal_id FROM $SCHEMA.withdrawals
   WHERE status <> 'recovered' AND created_at >= :'frozen'::timestamptz AND created_at < :'thawed'::timestamptz
)
SELECT json_build_object(
  'name', 'frozen',
  'ok', :'frozen' <> 'infinity' AND NOT EXISTS (SELECT 1 FROM created_in_freeze) AND NOT EXISTS (SELECT 1 FROM rows_in_freeze),
  'summary', format('Internal Systems tried %s times while frozen (%s refused, %s with the DB down); %s withdrawals created while frozen, %s rows in the DB from the freeze',
                    (SELECT count(*) FROM attempts), (SELECT count(*) FROM attempts WHERE outcome = 'refused'),
                    (SELECT count(*) FROM attempts WHERE outcome = 'unavailable'),
                    (SELECT count(*) FROM created_in_freeze), (SELECT count(*) FROM rows_in_freeze)),
  'details', json_build_object(
    'frozenAt', nullif(:'frozen', 'infinity'), 'thawedAt', nullif(:'thawed', 'infinity'),
    'attempts', (SELECT count(*) FROM attempts),
    'refused', (SELECT count(*) FROM attempts WHERE outcome = 'refused'),
    'createdWhileFrozen', (SELECT coalesce(json_agg(wid), '[]') FROM created_in_freeze),
    'rowsCreatedWhileFrozen', (SELECT coalesce(json_agg(withdrawal_id), '[]') FROM rows_in_freeze)));
SQL

  jq -cn --argjson dir_rc "$dars_dir_rc" --argjson reg_rc "$dars_reg_rc" \
    --slurpfile dir "$WORK/check/dars-dir.ndjson" --slurpfile reg "$WORK/check/dars-registry.ndjson" '
    ($dir | map(select(.type == "missing")) | map(.name)) as $missing_dir
    | ($reg | map(select(.type == "missing")) | map(.name)) as $missing_reg
    | ($dir | map(select(.type == "present" or .type == "missing")) | length) as $uploaded
    | {name: "dars", ok: ($dir_rc == 0 and $reg_rc == 0),
       summary: "\($uploaded) DARs uploaded during the drill; \($missing_dir | length) missing on the node; \($missing_reg | length) of the registry missing",
       details: {uploaded: $uploaded, missing: $missing_dir, registryMissing: $missing_reg,
                 diffExitCodes: {dir: $dir_rc, registry: $reg_rc}}}'

  jq -cn --argjson a "$RUNBOOK_A_RC" --argjson b "$RUNBOOK_B_RC" --arg brk "$BREAK" '
    {name: "runbooks", ok: ($a == 0 and $b == 0),
     summary: ((if $brk == "resume-at-old-offset" then "restore-validator.sh not run (--break resume-at-old-offset)"
                else "restore-validator.sh exit \($a)" end) + ", restore-integration-db.sh exit \($b)"),
     details: {validatorRestore: $a, integrationDbRestore: $b}}'
}

report() {
  local invariants=$1 ok status runbook_a runbook_b
  ok=$(jq -s 'all(.ok)' <<<"$invariants")
  status=ok
  [[ "$ok" == true ]] || status=failed
  runbook_a=$(jq -c 'select(.type == "result")' "$WORK/check/runbook-a.ndjson" 2>/dev/null | tail -n 1)
  runbook_b=$(jq -c 'select(.type == "result")' "$WORK/check/runbook-b.ndjson" 2>/dev/null | tail -n 1)
  REPORT=$(jq -M -cn --arg status "$status" --argjson scale "$SCALE" --arg sem "$SEMANTICS" \
    --argjson nu "$([[ "$NON_UNIQUE" -eq 1 ]] && echo true || echo false)" --arg brk "$BREAK" \
    --argjson ms "$(elapsed)" --argjson build "$BUILD_SECONDS" --arg profile "$PROFILE" \
    --argjson inv "$(jq -s . <<<"$invariants")" --argjson a "${runbook_a:-null}" --argjson b "${runbook_b:-null}" \
    --arg inflight "${INFLIGHT_OUTCOME:-}" --arg work "$([[ "$KEEP" -eq 1 ]] && echo "$WORK")" \
    --arg manifest "${MANIFEST:-}" --arg bt "${BACKUP_TIME:-}" '
    {type: "drill", status: $status, exitCode: (if $status == "ok" then 0 else 1 end),
     scale: $scale, cantonSemantics: $sem, nonUniqueRecordTimes: $nu,
     break: (if $brk == "" then null else $brk end), profile: $profile,
     durationSeconds: ($ms / 1000), buildSeconds: $build,
     backup: {time: $bt, manifest: ($manifest != "")},
     runbooks: {
       validatorRestore: (if $a == null then null else {status: $a.status, exitCode: $a.exitCode,
         tRecovery: $a.values.tRecovery, preRestoreOffset: $a.values.preRestoreOffset,
         offRecovery: $a.values.offRecovery, dedupFrom: $a.values.dedupFrom,
         darsReuploaded: $a.values.darsUploaded, restoreSeconds: $a.values.restoreSeconds} end),
       integrationDbRestore: (if $b == null then null else {status: $b.status, exitCode: $b.exitCode,
         frozenAt: $b.values.frozenAt, tSafe: $b.values.tSafe, tSafeFrom: $b.values.tSafeFrom,
         thawedAt: $b.values.thawedAt, reconciliation: $b.values.reconciliation} end)},
     inFlightWithdrawal: (if $inflight == "" then null else $inflight end),
     invariants: $inv,
     workDir: (if $work == "" then null else $work end)}')
  if [[ "$JSON" -eq 1 ]]; then
    printf '%s\n' "$REPORT" >&3
  else
    jq -r '
      def yesno: if . then "ok  " else "FAIL" end;
      "canton-dr drill: \(.status | ascii_upcase)"
      + "  (scale \(.scale), Canton \(.cantonSemantics) semantics"
      + (if .nonUniqueRecordTimes then ", non-unique record times" else "" end)
      + (if .break then ", BREAK \(.break)" else "" end)
      + ", \(.profile) build, \(.durationSeconds | floor) s)",
      "",
      "runbook A (validator restore): "
        + (if .runbooks.validatorRestore == null then "-"
           elif .runbooks.validatorRestore.status == "skipped" then
             "not run (--break \(.break): ingestion restarted at its pre-restore offset)"
           else
            (.runbooks.validatorRestore | "\(.status); tRecovery \(.tRecovery // "-"), offset \(.preRestoreOffset // "-") before the restore -> offRecovery \(.offRecovery // "-") after"
              + (if .dedupFrom then ", dedup from \(.dedupFrom)" else "" end)
              + ", \(.darsReuploaded // 0) DAR(s) re-uploaded") end),
      "runbook B (Integration DB restore): "
        + (if .runbooks.integrationDbRestore == null then "-" else
            (.runbooks.integrationDbRestore | "\(.status); frozen \(.frozenAt // "-"), tSafe \(.tSafe // "-") (\(.tSafeFrom // "-")), thawed \(.thawedAt // "-")") end),
      "",
      "invariants:",
      (.invariants[] | "  [\(.ok | yesno)] \(.name): \(.summary)"),
      (if .workDir then "", "work directory: \(.workDir)" else empty end)' <<<"$REPORT" >&3
  fi
  [[ "$status" == ok ]]
}

main() {
  case ${1:-} in
  __restore-node) internal_restore_node "$2"; exit 0 ;;
  __restore-db) internal_restore_db "$2"; exit 0 ;;
  __internal-systems) internal_systems "$2"; exit 0 ;;
  __watchdog) internal_watchdog "$2"; exit 0 ;;
  esac
  parse_args "$@"
  cdr_require_jq
  build
  setup
  phase_before_backup
  take_backups
  phase_after_backup
  disaster_node
  phase_after_node_restore
  disaster_db
  phase_final
  say "checking the invariants"
  load_check_data
  local invariants
  invariants=$(check_invariants) || fail_setup "the checks could not run"
  if report "$invariants"; then
    say "drill passed"
    exit 0
  fi
  say "drill FAILED: an invariant does not hold (see the report)"
  exit "$CDR_FALSE"
}

main "$@"
