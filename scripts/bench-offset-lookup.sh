#!/usr/bin/env bash
# Benchmark of offset-lookup against canton-sim (release builds, one machine):
#
#   1. one lookup as a whole process (start, connect, call, print), over RUNS
#      runs: hyperfine when installed, else a loop timed with date +%s%N;
#   2. a batch of BATCH lookups (--batch, one connection), in exact mode and in
#      the non-unique-record-times mode (two calls per lookup);
#   3. the alternative measured in the same run: one process per lookup (the
#      rate of 1.), and grpcurl against the same node when grpcurl is installed.
#
# Goals: a single lookup under 10 ms wall, a batch over 5,000 lookups/s.
# Figures go to stdout; with CHECK_GOALS=1 the script exits 1 when a goal is
# missed. Knobs (environment): RUNS (default 200), BATCH (default 10000),
# SEED_UPDATES (default 1000), CONCURRENCY (default 32).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-200}
BATCH=${BATCH:-10000}
SEED_UPDATES=${SEED_UPDATES:-1000}
CONCURRENCY=${CONCURRENCY:-32}
CHECK_GOALS=${CHECK_GOALS:-0}
GOAL_SINGLE_MS=10
GOAL_BATCH_PER_S=5000

log() { printf '%s\n' "$*" >&2; }

log "== building release binaries (offset-lookup, canton-sim)"
cargo build --release --locked -p offset-lookup -p canton-sim >&2
bin=target/release

work=$(mktemp -d)
sim_pid=""
cleanup() {
  if [[ -n "$sim_pid" ]] && kill -0 "$sim_pid" 2>/dev/null; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Extracts a string field from a one-line JSON object: json_field NAME < line
json_field() {
  sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"
}

log "== starting canton-sim"
"$bin/canton-sim" serve --state-dir "$work/state" --clock virtual \
  --clock-start 2025-11-27T06:00:00Z --output json >"$work/ready" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 300); do
  [[ -s "$work/ready" ]] && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log" >&2; exit 3; }
  sleep 0.1
done
ready=$(head -n 1 "$work/ready")
admin=$(json_field adminApi <<<"$ready")
control=$(json_field controlApi <<<"$ready")
sync=$(json_field synchronizerId <<<"$ready")
[[ -n "$admin" && -n "$control" && -n "$sync" ]] || { log "no ready line: $ready"; exit 3; }

log "== seeding $SEED_UPDATES updates"
half=$((SEED_UPDATES / 2))
"$bin/canton-sim" ctl --control-api "$control" --output json \
  traffic --deposits "$half" --noise "$((SEED_UPDATES - half))" >/dev/null
"$bin/canton-sim" ctl --control-api "$control" --output json update-ids \
  | json_field recordTime >"$work/times"
count=$(wc -l <"$work/times")
[[ "$count" -ge 2 ]] || { log "seeding failed: $count updates"; exit 3; }
# Look up the middle update: a typical tRecovery, neither first nor last.
ts=$(sed -n "$((count / 2))p" "$work/times")

lookup=("$bin/offset-lookup" --admin-api "$admin" --synchronizer-id "$sync" --timestamp "$ts" --output json)
"${lookup[@]}" >"$work/one.json"
grep -q '"type":"offset"' "$work/one.json" || { log "lookup failed: $(cat "$work/one.json")"; exit 3; }

# Mean and median in ms of RUNS runs of a command (hyperfine, else a date loop).
# Prints "mean median".
measure_process() {
  local name=$1
  shift
  if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --shell=none --warmup 10 --runs "$RUNS" --style basic \
      --export-json "$work/$name.json" "$(printf '%q ' "$@")" >&2
    local mean median
    mean=$(grep -o '"mean": *[0-9.e+-]*' "$work/$name.json" | head -n 1 | sed 's/.*: *//')
    median=$(grep -o '"median": *[0-9.e+-]*' "$work/$name.json" | head -n 1 | sed 's/.*: *//')
    awk -v m="$mean" -v d="$median" 'BEGIN { printf "%.3f %.3f\n", m * 1000, d * 1000 }'
  else
    local start end
    for _ in $(seq 1 10); do "$@" >/dev/null; done
    : >"$work/$name.ns"
    for _ in $(seq 1 "$RUNS"); do
      start=$(date +%s%N)
      "$@" >/dev/null
      end=$(date +%s%N)
      echo $((end - start)) >>"$work/$name.ns"
    done
    sort -n "$work/$name.ns" | awk '{ v[NR] = $1; s += $1 }
      END { printf "%.3f %.3f\n", s / NR / 1e6, v[int((NR + 1) / 2)] / 1e6 }'
  fi
}

log "== single lookup as a whole process ($RUNS runs)"
read -r single_mean single_median < <(measure_process single "${lookup[@]}")

# A batch input of BATCH lines cycling through every seeded record time.
awk -v n="$BATCH" -v s="$sync" '{ t[NR] = $0 }
  END { for (i = 0; i < n; i++) printf "{\"synchronizerId\":\"%s\",\"recordTime\":\"%s\"}\n", s, t[i % NR + 1] }' \
  "$work/times" >"$work/batch.ndjson"

# Best of three wall times (ms) of a batch run; checks every line answered.
# The very first record time has nothing before it in the non-unique mode, so
# those lines are expected to fail there (exit 1); any other failure aborts.
measure_batch() {
  local best="" start end ms rc ok
  for _ in 1 2 3; do
    start=$(date +%s%N)
    rc=0
    "$bin/offset-lookup" --batch --admin-api "$admin" --concurrency "$CONCURRENCY" \
      --output json "$@" <"$work/batch.ndjson" >"$work/batch.out" || rc=$?
    end=$(date +%s%N)
    [[ "$rc" -le 1 ]] || { log "batch failed with exit $rc"; head -n 3 "$work/batch.out" >&2; exit 3; }
    [[ "$(wc -l <"$work/batch.out")" -eq "$BATCH" ]] || { log "batch printed $(wc -l <"$work/batch.out") lines, expected $BATCH"; exit 3; }
    ok=$(grep -c '"type":"offset"' "$work/batch.out" || true)
    [[ "$rc" -eq 0 || "$ok" -gt 0 ]] || { log "no lookup in the batch succeeded"; exit 3; }
    ms=$(( (end - start) / 1000000 ))
    if [[ -z "$best" || "$ms" -lt "$best" ]]; then best=$ms; fi
  done
  echo "$best"
}

log "== batch of $BATCH lookups, exact mode (best of 3)"
batch_ms=$(measure_batch)
log "== batch of $BATCH lookups, non-unique-record-times mode (best of 3)"
batch_nu_ms=$(measure_batch --non-unique-record-times)

grpcurl_line="grpcurl: not installed (the comparison is one process per lookup)"
if command -v grpcurl >/dev/null 2>&1; then
  log "== grpcurl, the upstream runbook's call ($RUNS runs)"
  body="{\"synchronizerId\":\"$sync\",\"timestamp\":\"$ts\"}"
  read -r grpcurl_mean grpcurl_median < <(measure_process grpcurl grpcurl -plaintext -d "$body" "$admin" \
    com.digitalasset.canton.admin.participant.v30.PartyManagementService/GetHighestOffsetByTimestamp)
  grpcurl_line=$(awk -v g="$grpcurl_mean" -v gm="$grpcurl_median" -v s="$single_mean" \
    'BEGIN { printf "grpcurl, one call as a process:    mean %.2f ms, median %.2f ms (offset-lookup is %.1fx %s)", g, gm, (g > s ? g / s : s / g), (g > s ? "faster" : "slower") }')
fi

summary=$(awk -v sm="$single_mean" -v sd="$single_median" -v b="$batch_ms" -v bn="$batch_nu_ms" \
  -v n="$BATCH" -v gs="$GOAL_SINGLE_MS" -v gb="$GOAL_BATCH_PER_S" -v runs="$RUNS" 'BEGIN {
  single_rate = 1000 / sm
  rate = n / (b / 1000)
  rate_nu = n / (bn / 1000)
  printf "offset-lookup benchmark (%d CPUs)\n", '"$(nproc)"'
  printf "single lookup as a process (%d runs): mean %.2f ms, median %.2f ms  [goal < %d ms: %s]\n", runs, sm, sd, gs, (sm < gs ? "met" : "MISSED")
  printf "batch, exact mode:                  %d lookups in %d ms = %.0f lookups/s  [goal > %d/s: %s]\n", n, b, rate, gb, (rate > gb ? "met" : "MISSED")
  printf "batch, non-unique mode (2 calls):   %d lookups in %d ms = %.0f lookups/s\n", n, bn, rate_nu
  printf "one process per lookup:             %.0f lookups/s; the batch is %.1fx that rate\n", single_rate, rate / single_rate
  if (sm < gs && rate > gb) { exit 0 } else { exit 1 }
}') && goals_met=1 || goals_met=0
printf '%s\n%s\n' "$summary" "$grpcurl_line"

if [[ "$CHECK_GOALS" == "1" && "$goals_met" != "1" ]]; then
  exit 1
fi
