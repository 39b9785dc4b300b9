#!/usr/bin/env bash
# Benchmark of tx-ingest's catch-up (release builds, one machine): UPDATES
# treasury updates (3 deposits : 1 withdrawal) put on canton-sim, then
# ingested from offset 0 into a throwaway PostgreSQL (scripts/pg-tmp.sh):
#
#   1. batched: one PostgreSQL transaction per up to BATCH updates, the
#      first stream of these updates (the simulator renders and encodes each);
#   2. batched with --compact-values (GetUpdates verbose=false);
#   3. one transaction per update (--batch-size 1), the same updates;
#   4. batched from a second simulator holding the same traffic that serves
#      the encoded updates from its response cache (--stream-cache-mib,
#      filled by one stream-only pass first), as a participant serves recent
#      updates from memory: what tx-ingest and PostgreSQL do with the CPU a
#      cheap node leaves them;
#   5. two tx-ingest processes at once from that simulator, each into its own
#      database: what a writer spread over two PostgreSQL backends could
#      reach at most on these cores (the ceiling of a pipelined writer);
#
# and, to find where the time goes, the pieces alone:
#
#   6. stream-only: GetUpdates to the ledger end, decoded and parsed by
#      tx-ingest's reader, nothing written (verbose and compact; and the
#      pass that fills the second simulator's cache);
#   7. decode-only: protobuf decoding and parsing in-process, no network;
#   8. db-only: the batch writer on synthetic updates of the same mix, no stream;
#   9. PostgreSQL's time per statement: one more batched run (warm simulator)
#      with pg_stat_statements loaded (the server restarted for it, last, so
#      that its overhead is in no other figure);
#
# with the CPU each process used (simulator, tx-ingest, PostgreSQL) per update.
# Goal: 50,000 updates/s batched on 2 cores, never below 20,000.
#
# Figures go to stderr as a table and to stdout as one JSON object. Knobs
# (environment): UPDATES (default 200000), BATCH (default 1000),
# SINGLE_SECONDS (default 0 = run 3. to the end; N = stop it after N seconds
# and report its rate so far), ROUNDS (default 3: runs 1. and 4. that many
# times each, the verdict on their medians), CHECK_GOALS=1 (exit 1 when batched is below
# 20,000 updates/s).
set -euo pipefail
cd "$(dirname "$0")/.."

UPDATES=${UPDATES:-200000}
BATCH=${BATCH:-1000}
SINGLE_SECONDS=${SINGLE_SECONDS:-0}
ROUNDS=${ROUNDS:-3}
CHECK_GOALS=${CHECK_GOALS:-0}
GOAL=50000
FLOOR=20000

log() { printf '%s\n' "$*" >&2; }

[[ "$UPDATES" =~ ^[0-9]+$ && "$UPDATES" -ge 4 ]] || { log "UPDATES must be a number >= 4"; exit 2; }
[[ "$BATCH" =~ ^[0-9]+$ && "$BATCH" -ge 1 ]] || { log "BATCH must be a positive number"; exit 2; }
[[ "$SINGLE_SECONDS" =~ ^[0-9]+$ ]] || { log "SINGLE_SECONDS must be a number"; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { log "ROUNDS must be a positive number"; exit 2; }
command -v jq >/dev/null || { log "jq is needed (apt-get install jq)"; exit 2; }

log "== building release binaries (canton-sim, tx-ingest, ingest-ctl, the ingest bench)"
cargo build --release --locked -p canton-sim -p tx-ingest -p ingest-ctl >&2
bench_exe=$(cargo bench --locked -p tx-ingest --bench ingest --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[[ -x "$bench_exe" ]] || { log "could not build the ingest bench"; exit 3; }
bin=target/release
bench=("$bench_exe")

work=$(mktemp -d /tmp/bench-tx-ingest.XXXXXX)
sim_pid=""
sim_pids=()
pg_dir=""
cleanup() {
  local pid
  for pid in "${sim_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ -n "$pg_dir" ]]; then
    scripts/pg-tmp.sh stop "$pg_dir" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Fields of a one-line JSON object: json_str NAME, json_num NAME (stdin).
json_str() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
json_num() { sed -n "s/.*\"$1\":\\(-\\{0,1\\}[0-9.]*\\).*/\\1/p"; }

# CPU seconds (user + system) a process and its reaped children have used.
cpu_of() {
  local pid=$1 stat rest
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo 0; return; }
  rest=${stat##*) }
  # Fields after the command: 14 utime, 15 stime, 16 cutime, 17 cstime (1-based
  # in the full line; here shifted by the two fields before ") ").
  read -r -a f <<<"$rest"
  awk -v u="${f[11]}" -v s="${f[12]}" -v cu="${f[13]}" -v cs="${f[14]}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", (u + s + cu + cs) / hz }'
}

# CPU seconds of the PostgreSQL cluster: the postmaster, its reaped backends,
# and the live ones.
pg_cpu() {
  local pm total child
  pm=$(head -n 1 "$pg_dir/data/postmaster.pid")
  total=$(cpu_of "$pm")
  for child in $(pgrep -P "$pm" || true); do
    total=$(awk -v a="$total" -v b="$(cpu_of "$child")" 'BEGIN { printf "%.2f", a + b }')
  done
  echo "$total"
}

log "== starting PostgreSQL and canton-sim"
eval "$(scripts/pg-tmp.sh start --watch-pid $$)"
pg_dir=$PGTEST_DIR
withdrawals=$((UPDATES / 4))
deposits=$((UPDATES - withdrawals))

# start_sim NAME CACHE_MIB: starts a simulator, puts the traffic on it, and
# sets sim_pid ledger control treasury gen_rate, and ingest (the tx-ingest
# command line for it).
start_sim() {
  local name=$1 cache=$2 ready t0 t1
  "$bin/canton-sim" serve --state-dir "$work/$name" --stream-cache-mib "$cache" --output json \
    >"$work/$name.ready" 2>"$work/$name.log" &
  sim_pid=$!
  sim_pids+=("$sim_pid")
  for _ in $(seq 1 300); do
    [[ -s "$work/$name.ready" ]] && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 3; }
    sleep 0.1
  done
  ready=$(head -n 1 "$work/$name.ready")
  ledger=$(json_str ledgerApi <<<"$ready")
  control=$(json_str controlApi <<<"$ready")
  treasury=$(json_str treasuryParty <<<"$ready")
  [[ -n "$ledger" && -n "$control" && -n "$treasury" ]] || { log "no ready line: $ready"; exit 3; }
  log "== putting $UPDATES updates on simulator $name ($deposits deposits, $withdrawals withdrawals)"
  t0=$(date +%s%N)
  "$bin/canton-sim" ctl --control-api "$control" --output json \
    traffic --deposits "$deposits" --withdrawals "$withdrawals" >/dev/null
  t1=$(date +%s%N)
  gen_rate=$(awk -v n="$UPDATES" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
  ingest=("$bin/tx-ingest" --once --ledger-api "$ledger" --treasury-party "$treasury"
    --progress-interval 0s --output json)
}

# The first simulator keeps no response cache: every stream renders.
start_sim sim 0

# A fresh, migrated database: new_db NAME (prints its connection string). The
# unix socket, as a co-located Integration DB would be reached: loopback TCP
# costs PostgreSQL about a quarter more CPU per update.
new_db() {
  scripts/pg-tmp.sh sql "$pg_dir" <<<"CREATE DATABASE $1;" >/dev/null
  local url="host=$pg_dir port=$PGPORT user=postgres dbname=$1"
  INTEGRATION_DB_URL=$url "$bin/ingest-ctl" migrate --output json >/dev/null
  echo "$url"
}

# drop_db NAME: its pages would otherwise be flushed during the next run, on its bill.
drop_db() { scripts/pg-tmp.sh sql "$pg_dir" <<<"DROP DATABASE $1; CHECKPOINT;" >/dev/null; }

# Runs "$@" and records its CPU and the CPU of the simulator and PostgreSQL
# meanwhile into globals: client_cpu sim_cpu db_cpu wall; stdout to $work/out.
measure() {
  local sim0 db0 sim1 db1 times
  sim0=$(cpu_of "$sim_pid")
  db0=$(pg_cpu)
  TIMEFORMAT='%U %S %R'
  { time "$@" >"$work/out" 2>>"$work/run.log"; } 2>"$work/time" || true
  # Let the run's backends exit and be reaped into the postmaster's totals.
  sleep 1
  sim1=$(cpu_of "$sim_pid")
  db1=$(pg_cpu)
  read -r -a times <"$work/time"
  client_cpu=$(awk -v u="${times[0]}" -v s="${times[1]}" 'BEGIN { printf "%.2f", u + s }')
  wall=${times[2]}
  sim_cpu=$(awk -v a="$sim0" -v b="$sim1" 'BEGIN { printf "%.2f", b - a }')
  db_cpu=$(awk -v a="$db0" -v b="$db1" 'BEGIN { printf "%.2f", b - a }')
}

# µs of CPU per update: per_update SECONDS COUNT
per_update() { awk -v s="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", s * 1e6 / n; else print 0 }'; }

rows=()
json_rows=()
# record NAME RATE UPDATES (after measure)
record() {
  local name=$1 rate=$2 n=$3
  rows+=("$(printf '%-34s %10s %8s %8s %8s %8s' "$name" "$rate" \
    "$(per_update "$sim_cpu" "$n")" "$(per_update "$client_cpu" "$n")" \
    "$(per_update "$db_cpu" "$n")" "$wall")")
  json_rows+=("\"$name\":{\"updatesPerSecond\":$rate,\"updates\":$n,\"wallSeconds\":$wall,\"simCpuUsPerUpdate\":$(per_update "$sim_cpu" "$n"),\"ingestCpuUsPerUpdate\":$(per_update "$client_cpu" "$n"),\"postgresCpuUsPerUpdate\":$(per_update "$db_cpu" "$n")}")
}

# ingest_result [FILE]: the result line of a tx-ingest run (default: the last
# measured one); stops the benchmark when there is none.
ingest_result() {
  local result
  result=$(tail -n 1 "${1:-$work/out}")
  [[ "$result" == *'"type":"result"'* ]] || { log "tx-ingest failed: $result $(tail -n 5 "$work/run.log")"; exit 3; }
  log "   $result"
  echo "$result"
}

# Commands put before tx-ingest (e.g. a timeout).
ingest_prefix=()

# ingest_into NAME URL ARGS...: one measured tx-ingest run into database URL,
# recorded; its rate in last_rate.
ingest_into() {
  local name=$1 url=$2 result rate
  shift 2
  log "== $name"
  measure env RUST_LOG=error INTEGRATION_DB_URL="$url" "${ingest_prefix[@]}" "${ingest[@]}" "$@"
  result=$(ingest_result) || exit 3
  rate=$(json_num updatesPerSecond <<<"$result")
  last_rate=${rate%.*}
  record "$name" "$last_rate" "$(json_num updates <<<"$result")"
}

# run_ingest NAME DB ARGS...: ingest_into a fresh database DB, dropped after.
run_ingest() {
  local name=$1 db=$2
  shift 2
  ingest_into "$name" "$(new_db "$db")" "$@"
  drop_db "$db"
}

# record_bench NAME [UPDATES]: records the ingest bench binary's last measured
# run (its own update count unless UPDATES is given).
record_bench() {
  local out
  out=$(tail -n 1 "$work/out")
  log "   $out"
  record "$1" "$(json_num updatesPerSecond <<<"$out" | cut -d. -f1)" "${2:-$(json_num updates <<<"$out")}"
}

# median_of RATE...: the middle one (the lower middle of an even count).
median_of() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# median_rounds NAME DB ARGS...: run_ingest ROUNDS times (NAME #r, DB_r);
# the median rate in last_rate.
median_rounds() {
  local name=$1 db=$2 r rates=()
  shift 2
  for ((r = 1; r <= ROUNDS; r++)); do
    run_ingest "$name #$r" "${db}_$r" "$@"
    rates+=("$last_rate")
  done
  last_rate=$(median_of "${rates[@]}")
}

# The batched runs ROUNDS times each (this machine's speed moves by ±20 %
# from minute to minute); the verdict takes the median.
median_rounds "ingest batched (batch $BATCH)" bench_batched --batch-size "$BATCH"
batched_rate=$last_rate
run_ingest "ingest batched, compact values" bench_compact --batch-size "$BATCH" --compact-values
compact_rate=$last_rate
if [[ "$SINGLE_SECONDS" -gt 0 ]]; then
  ingest_prefix=(timeout --signal=TERM "$SINGLE_SECONDS")
fi
run_ingest "ingest one per transaction" bench_single --batch-size 1
single_rate=$last_rate
ingest_prefix=()

for mode in verbose compact; do
  log "== stream-only ($mode)"
  if [[ $mode == compact ]]; then compact_env=(TX_INGEST_COMPACT_VALUES=1); else compact_env=(); fi
  measure env "${compact_env[@]}" CANTON_LEDGER_API="$ledger" TREASURY_PARTY="$treasury" "${bench[@]}" stream
  record_bench "stream-only ($mode)"
done

# A second simulator with the same traffic and a response cache large enough
# for every update (about 6.2 KB verbose each), filled by one stream.
start_sim sim_cached $(( UPDATES * 7 / 1024 + 64 ))
log "== stream-only (verbose), filling the second simulator's cache"
measure env CANTON_LEDGER_API="$ledger" TREASURY_PARTY="$treasury" "${bench[@]}" stream
record_bench "stream-only (verbose), filling cache"
median_rounds "ingest batched, sim cache warm" bench_warm --batch-size "$BATCH"
warm_rate=$last_rate

# Two ingesters at once (5.): their updates/s together.
pair_urls=("$(new_db bench_pair_1)" "$(new_db bench_pair_2)")
ingest_pair() { # ARGS...
  local pids=() i
  for i in 1 2; do
    env RUST_LOG=error INTEGRATION_DB_URL="${pair_urls[$((i - 1))]}" "${ingest[@]}" "$@" \
      >"$work/pair_$i" 2>>"$work/run.log" &
    pids+=("$!")
  done
  for i in 0 1; do wait "${pids[$i]}" || true; done
}
log "== two ingesters at once, each into its own database"
measure ingest_pair --batch-size "$BATCH"
for i in 1 2; do
  ingest_result "$work/pair_$i" >/dev/null
  drop_db "bench_pair_$i"
done
pair_rate=$(awk -v n="$((2 * UPDATES))" -v w="$wall" 'BEGIN { printf "%.0f", n / w }')
record "two ingesters at once (together)" "$pair_rate" "$((2 * UPDATES))"

# The encoded messages are held in memory: 50,000 give a steady rate.
decode_n=$((UPDATES < 50000 ? UPDATES : 50000))
log "== decode-only (in-process, $decode_n updates)"
measure "${bench[@]}" decode --updates "$decode_n"
record_bench "decode+parse only (in-process)" "$decode_n"

log "== db-only (synthetic updates)"
measure env INTEGRATION_DB_URL="$(new_db bench_dbonly)" "${bench[@]}" db --updates "$UPDATES" --batch-size "$BATCH"
record_bench "db-only (batch $BATCH)" "$UPDATES"

# 9. Per statement: execution time per update of each statement PostgreSQL
# ran for one batched run (pg_stat_statements, reset just before).
log "== restarting PostgreSQL with pg_stat_statements"
scripts/pg-tmp.sh sql "$pg_dir" <<<"ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';" >/dev/null
scripts/pg-tmp.sh restart "$pg_dir" >/dev/null
stmt_url=$(new_db bench_statements)
scripts/pg-tmp.sh sql "$pg_dir" -d bench_statements <<<"CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset();" >/dev/null
ingest_into "batched, pg_stat_statements on" "$stmt_url" --batch-size "$BATCH"
# µs per update, calls, and the statement's first 70 characters on one line.
statements=$(scripts/pg-tmp.sh sql "$pg_dir" -d bench_statements -tA -F $'\t' <<SQL
SELECT round((s.total_exec_time * 1000 / $UPDATES)::numeric, 1), s.calls,
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 70)
  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
 WHERE d.datname = 'bench_statements'
 ORDER BY s.total_exec_time DESC
 LIMIT 12;
SQL
)
statement_rows=()
statement_json=()
while IFS=$'\t' read -r us calls query; do
  [[ -n "$us" ]] || continue
  statement_rows+=("$(printf '%8s %8s  %s' "$us" "$calls" "$query")")
  statement_json+=("{\"usPerUpdate\":$us,\"calls\":$calls,\"query\":$(jq -Rn --arg q "$query" '$q')}")
done <<<"$statements"

log ""
log "tx-ingest catch-up of $UPDATES updates on $(nproc) cores (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
log "simulator put them on the ledger at $gen_rate updates/s"
log "$(printf '%-34s %10s %8s %8s %8s %8s' run updates/s sim-us ingest-us pg-us wall-s)"
for r in "${rows[@]}"; do log "$r"; done
log "(CPU microseconds per update: sim = canton-sim, ingest = tx-ingest or the bench binary, pg = PostgreSQL)"
log ""
log "PostgreSQL execution time per statement, batched run 9 (pg_stat_statements):"
log "$(printf '%8s %8s  %s' us/upd calls statement)"
for r in "${statement_rows[@]}"; do log "$r"; done
verdict=met
if [[ "$batched_rate" -lt "$GOAL" ]]; then verdict="below goal $GOAL"; fi
if [[ "$batched_rate" -lt "$FLOOR" ]]; then verdict="below floor $FLOOR"; fi
log "batched (median of $ROUNDS): $batched_rate updates/s ($verdict); sim cache warm (median): $warm_rate; compact values: $compact_rate; one per transaction: ${single_rate%.*}; two ingesters at once: $pair_rate"

joined=$(IFS=,; echo "${json_rows[*]}")
printf '{"type":"bench","tool":"tx-ingest","updates":%s,"batchSize":%s,"cores":%s,"rounds":%s,"batchedMedian":%s,"warmMedian":%s,"twoIngestersAtOnce":%s,"simGenerateUpdatesPerSecond":%s,"goal":%s,"floor":%s,"verdict":"%s","runs":{%s},"statements":[%s]}\n' \
  "$UPDATES" "$BATCH" "$(nproc)" "$ROUNDS" "$batched_rate" "$warm_rate" "$pair_rate" "$gen_rate" "$GOAL" "$FLOOR" "$verdict" "$joined" "$(IFS=,; echo "${statement_json[*]}")"

if [[ "$CHECK_GOALS" == 1 && "$batched_rate" -lt "$FLOOR" ]]; then
  exit 1
fi
