#!/usr/bin/env bash
# Runs every test executable ($BUILD/tests/test_*) and every test script (tests/scripts/test_*.sh),
# each of which prints PASS/FAIL/SKIP lines, and closes with the totals:
#   N passed, N failed, N skipped
# A test program that crashes or exits non-zero without printing a FAIL counts as one failure.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
pass=0; fail=0; skip=0
failed=(); skipped=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() {
  local name=$1; shift
  "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  local p f s
  p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  while read -r line; do failed+=("$line"); done < <(grep '^FAIL ' "$log" | cut -c6-)
  while read -r line; do skipped+=("$line"); done < <(grep '^SKIP ' "$log" | cut -c6-)
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name (exit status $rc without a FAIL line)"
    fail=$((fail + 1)); failed+=("$name (exit $rc)")
  fi
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  case "$t" in *.d|*.o) continue;; esac
  run_one "$(basename "$t")" "$t"
done
for s in tests/scripts/test_*.sh; do
  [ -f "$s" ] || continue
  run_one "$(basename "$s")" bash "$s"
done

echo
[ ${#skipped[@]} -gt 0 ] && { echo "skipped:"; printf '  %s\n' "${skipped[@]}"; }
[ ${#failed[@]} -gt 0 ] && { echo "failed:"; printf '  %s\n' "${failed[@]}"; }
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
