#!/usr/bin/env bash
# Benchmark of `dar-sync inventory` against `openssl dgst -sha256` and
# `sha256sum` over the same DAR files, alternating in one run.
#
#   scripts/bench-dar-sync.sh [COUNT] [TOTAL_MIB] [ROUNDS]
#
# Defaults: 1000 DARs, 1100 MiB in total (>= 1 GiB), 5 rounds. Env:
# BENCH_KEEP=1 keeps the DAR directory; BENCH_FULL=1 also times
# `inventory --full`.
#
# The DARs are written by daml-dar's make-dar example (release build) into a
# mktemp directory under /tmp that is removed on exit. They are shaped like
# damlc's: a small main dalf and three dependency dalfs that carry most of
# the bytes, deflated. The page cache is warm for every tool (it cannot be
# dropped here): each file is read once before timing, and the tools take
# turns in every round, rotating who goes first. Per tool the median round
# is reported (wall time, and CPU time of user + system with the cores it
# kept busy), and the ratios dar-sync/openssl and dar-sync/sha256sum. On a
# machine busy with other work the wall times say more about the others
# than about the tools; the CPU times do not.
# The goal is a ratio below 0.7 against openssl (which uses SHA-NI on one
# core; dar-sync uses SHA-NI through sha2's run-time detection and hashes
# files on all cores).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${1:-1000}
TOTAL_MIB=${2:-1100}
ROUNDS=${3:-5}
for n in "$COUNT" "$TOTAL_MIB" "$ROUNDS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "error: arguments must be positive integers (COUNT TOTAL_MIB ROUNDS)" >&2; exit 2; }
done
for tool in openssl sha256sum; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 2; }
done

echo "== building dar-sync and make-dar (release)" >&2
cargo build --release --quiet -p dar-sync --bin dar-sync
cargo build --release --quiet -p daml-dar --example make-dar
DAR_SYNC=target/release/dar-sync
MAKE_DAR=target/release/examples/make-dar

WORK=$(mktemp -d /tmp/bench-dar-sync.XXXXXX)
cleanup() {
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
DARS=$WORK/dars
mkdir -p "$DARS"

# Sizes vary from 0.5x to 1.5x the mean (mean = TOTAL/COUNT) so that the
# load is uneven as in real DAR sets; the total stays at TOTAL_MIB.
MEAN_KIB=$(( TOTAL_MIB * 1024 / COUNT ))
echo "== writing $COUNT DARs, ${TOTAL_MIB} MiB in total, into $DARS" >&2
gen_start=$(date +%s)
for ((i = 0; i < COUNT; i++)); do
  size=$(( MEAN_KIB / 2 + (MEAN_KIB * (i % 11)) / 10 ))
  printf '%s\n' "--name bench-token-$i --package-version 1.$((i / 100)).$((i % 100)) --seed $i --dependencies 3 --size ${size}K --out $DARS/bench-$i.dar"
done | xargs -P "$(nproc)" -L 1 "$MAKE_DAR" --output json >/dev/null
echo "   written in $(( $(date +%s) - gen_start )) s" >&2

mapfile -t FILES < <(find "$DARS" -name '*.dar' | sort)
TOTAL_BYTES=$(du -cb "${FILES[@]}" | tail -1 | cut -f1)
if (( ${#FILES[@]} != COUNT )); then
  echo "error: expected $COUNT DARs, found ${#FILES[@]}" >&2
  exit 1
fi
echo "   ${#FILES[@]} files, $TOTAL_BYTES bytes ($(( TOTAL_BYTES / 1048576 )) MiB)" >&2

# Correctness first: dar-sync's file hashes equal sha256sum's, no file invalid.
"$DAR_SYNC" --output json inventory "$DARS" >"$WORK/inventory.ndjson"
awk 'match($0, /"sha256":"[0-9a-f]+"/) { sha = substr($0, RSTART + 10, RLENGTH - 11)
       if (match($0, /"path":"[^"]+"/)) print sha "  " substr($0, RSTART + 8, RLENGTH - 9) }' \
  "$WORK/inventory.ndjson" | sort -k2 >"$WORK/ours.txt"
sha256sum "${FILES[@]}" | sort -k2 >"$WORK/theirs.txt"
if ! cmp -s "$WORK/ours.txt" "$WORK/theirs.txt"; then
  echo "error: dar-sync's SHA-256 differs from sha256sum's" >&2
  diff "$WORK/ours.txt" "$WORK/theirs.txt" | head >&2
  exit 1
fi
if grep -q '"type":"invalid"' "$WORK/inventory.ndjson"; then
  echo "error: dar-sync reported invalid DARs" >&2
  exit 1
fi
echo "   dar-sync's hashes of all $COUNT files equal sha256sum's" >&2

# Warm the page cache for everyone.
cat "${FILES[@]}" >/dev/null

run_dar_sync() { "$DAR_SYNC" --output json inventory "$DARS" >/dev/null; }
run_dar_sync_full() { "$DAR_SYNC" --output json inventory --full "$DARS" >/dev/null; }
run_dar_sync_1t() { "$DAR_SYNC" --output json inventory --threads 1 "$DARS" >/dev/null; }
run_openssl() { openssl dgst -sha256 "${FILES[@]}" >/dev/null; }
run_sha256sum() { sha256sum "${FILES[@]}" >/dev/null; }

TOOLS=(dar_sync openssl sha256sum dar_sync_1t)
if [[ ${BENCH_FULL:-0} == 1 ]]; then
  TOOLS+=(dar_sync_full)
fi
declare -A TIMES CPUS
now_ns() { date +%s%N; }
# CPU time (user + system, ms) of all waited-for children so far, into CPU_MS.
# `times` must run in this shell (not in a $(...) subshell) to see them.
children_cpu_ms() {
  times >"$WORK/times"
  CPU_MS=$(tail -1 "$WORK/times" | awk '{ ms = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); ms += p[1] * 60000 + p[2] * 1000 }
    printf "%d", ms }')
}

echo "== $ROUNDS rounds, tools alternating: ${TOOLS[*]}" >&2
for ((r = 0; r < ROUNDS; r++)); do
  line="   round $((r + 1)):"
  for ((k = 0; k < ${#TOOLS[@]}; k++)); do
    tool=${TOOLS[$(( (k + r) % ${#TOOLS[@]} ))]}
    children_cpu_ms
    c0=$CPU_MS
    t0=$(now_ns)
    "run_$tool"
    t1=$(now_ns)
    children_cpu_ms
    c1=$CPU_MS
    ms=$(( (t1 - t0) / 1000000 ))
    TIMES[$tool]="${TIMES[$tool]:-} $ms"
    CPUS[$tool]="${CPUS[$tool]:-} $(( c1 - c0 ))"
    line+=" $tool=${ms}ms"
  done
  echo "$line" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
declare -A MED MEDCPU
for tool in "${TOOLS[@]}"; do
  MED[$tool]=$(median <<<"${TIMES[$tool]}")
  MEDCPU[$tool]=$(median <<<"${CPUS[$tool]}")
done

mbps() { awk -v b="$TOTAL_BYTES" -v ms="$1" 'BEGIN { printf "%.0f", b / (ms / 1000) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "dar-sync inventory benchmark: $COUNT DARs, $TOTAL_BYTES bytes, $ROUNDS rounds, $(nproc) cores, warm page cache"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %8s %10s %8s %6s\n' "tool (median round)" "ms" "MB/s" "cpu ms" "cores"
for tool in "${TOOLS[@]}"; do
  case $tool in
    dar_sync) label="dar-sync inventory" ;;
    dar_sync_1t) label="dar-sync inventory (1 thr)" ;;
    dar_sync_full) label="dar-sync inventory --full" ;;
    openssl) label="openssl dgst -sha256" ;;
    sha256sum) label="sha256sum" ;;
  esac
  printf '%-28s %8s %10s %8s %6s\n' "$label" "${MED[$tool]}" "$(mbps "${MED[$tool]}")" \
    "${MEDCPU[$tool]}" "$(ratio "${MEDCPU[$tool]}" "${MED[$tool]}")"
done
R_OPENSSL=$(ratio "${MED[dar_sync]}" "${MED[openssl]}")
R_SHA256SUM=$(ratio "${MED[dar_sync]}" "${MED[sha256sum]}")
echo "ratio dar-sync / openssl dgst: $R_OPENSSL (goal < 0.70)"
echo "ratio dar-sync / sha256sum:    $R_SHA256SUM"
echo "ratio dar-sync 1 thread / openssl: $(ratio "${MED[dar_sync_1t]}" "${MED[openssl]}") (about 1 when both use SHA-NI)"
