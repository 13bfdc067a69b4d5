#!/usr/bin/env bash
# Runs every libFuzzer harness, one after the other, for FUZZ_SECONDS each (default 60), and prints
# one line per harness: executions, seconds, executions/s, corpus size, and the crash count.
#   FUZZ_SECONDS=120 bash fuzz/run.sh            # all harnesses (make fuzz FUZZ_SECONDS=120)
#   FUZZ_SECONDS=30 bash fuzz/run.sh npy gguf    # some
# The working corpus grows in $FUZZ_BUILD/corpus/<name> (seeded from fuzz/corpus/<name>, which is
# only read); a crashing input lands in $FUZZ_BUILD/artifacts/<name>/ and fails the run (exit 1).
# Expects the harnesses built (make -f fuzz/fuzz.mk, which `make fuzz` does first).
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do n=$(basename "$f" .c); names+=("${n#fuzz_}"); done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp}  # system-library leaks (fuzz/lsan.supp)
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
printf '%-12s %8s %12s %10s %8s %8s\n' harness seconds executions execs/s corpus crashes
for n in "${names[@]}"; do
  bin=$FUZZ_BUILD/bin/fuzz_$n
  if [ ! -x "$bin" ]; then echo "$n: $bin not built (make -f fuzz/fuzz.mk)" >&2; status=1; continue; fi
  work=$FUZZ_BUILD/corpus/$n art=$FUZZ_BUILD/artifacts/$n log=$FUZZ_BUILD/logs/$n.log
  mkdir -p "$work" "$art" "$(dirname "$log")"
  start=$(date +%s.%N)
  "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb="$FUZZ_RSS_MB" -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" "fuzz/corpus/$n" >"$log" 2>&1
  rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | awk '{print $2}')
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  crashes=$(find "$art" -type f | wc -l)
  [ $rc -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="rc=$rc"
  printf '%-12s %8.1f %12s %10.0f %8s %8s\n' "$n" "$secs" "${execs:-?}" \
    "$(awk -v e="${execs:-0}" -v s="$secs" 'BEGIN { print (s > 0 ? e / s : 0) }')" "$(ls "$work" | wc -l)" "$crashes"
  if [ $rc -ne 0 ] || [ "$crashes" != 0 ]; then
    status=1
    echo "  $n: see $log; inputs in $art/" >&2
    grep -m3 -E 'ERROR: |runtime error|invariant failed' "$log" | sed 's/^/  /' >&2
  fi
done
exit $status
