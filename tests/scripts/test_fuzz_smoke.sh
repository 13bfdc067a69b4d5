#!/usr/bin/env bash
# Fuzz smoke test (issue 9, item 1): builds the libFuzzer harnesses (fuzz/fuzz.mk: clang, ASan,
# UBSan) and runs each for FUZZ_SMOKE_SECONDS (default 3) from its committed seed corpus, one after
# the other, from a fixed libFuzzer seed (FUZZ_SMOKE_SEED, default 1) so that a run is repeatable:
# this is a smoke test of the harnesses and of the committed corpus, not the search for new bugs,
# which is `make fuzz` (a random seed each run). One PASS/FAIL line per harness; SKIP when clang's
# libFuzzer is not installed (Debian: clang and libclang-rt-14-dev, which scripts/setup.sh
# installs). New inputs go to a temporary folder; a crashing input is kept in
# build/fuzz/smoke-artifacts/<harness>/ and named in the FAIL line. The longer runs are `make fuzz FUZZ_SECONDS=N` (fuzz/README.md).
set -u
cd "$(dirname "$0")/../.."
FUZZ_CC=${FUZZ_CC:-clang}
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
SECONDS_EACH=${FUZZ_SMOKE_SECONDS:-3}
SEED=${FUZZ_SMOKE_SEED:-1}

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe/p.c"
if ! command -v "$FUZZ_CC" >/dev/null 2>&1 ||
   ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  echo "SKIP fuzz_smoke (no $FUZZ_CC with libFuzzer: install clang and libclang-rt-14-dev)"
  exit 0
fi
if ! make --no-print-directory -j2 -f fuzz/fuzz.mk FUZZ_CC="$FUZZ_CC" FUZZ_BUILD="$FUZZ_BUILD" >"$probe/build.log" 2>&1; then
  echo "FAIL fuzz_smoke: build of the harnesses failed: $(grep -m3 -E 'error' "$probe/build.log" | tr '\n' ' ')"
  exit 0
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/fuzz/lsan.supp  # system-library leaks (fuzz/lsan.supp)
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for src in fuzz/fuzz_*.c; do
  n=$(basename "$src" .c); n=${n#fuzz_}
  art=$FUZZ_BUILD/smoke-artifacts/$n
  rm -rf "$art"; mkdir -p "$art" "$probe/corpus-$n"
  "$FUZZ_BUILD/bin/fuzz_$n" -seed="$SEED" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "$probe/corpus-$n" "fuzz/corpus/$n" >"$probe/$n.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$probe/$n.log" | tail -1)
  crash=$(find "$art" -type f | head -1)
  if [ $rc -eq 0 ] && [ -z "$crash" ]; then
    echo "PASS fuzz_smoke: $n (${execs:-?} executions in $SECONDS_EACH s, no crash)"
    rmdir "$art" 2>/dev/null
  else
    why=$(grep -m1 -E 'ERROR: |runtime error|invariant failed' "$probe/$n.log")
    echo "FAIL fuzz_smoke: $n (exit $rc, seed $SEED${crash:+, input $crash}): $why"
  fi
done
exit 0
