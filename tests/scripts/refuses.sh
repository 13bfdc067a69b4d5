# Sourced by the hostile-input test scripts (test_hostile_*.sh); expects $T (a scratch folder) and
# the functions ok NAME and bad NAME.
# Runs a command that must fail with exit status $2 (any non-zero when "fail") within
# ${REFUSE_SECONDS:-30} s (a hang is a failure), its stderr holding $3.
# Usage: refuses NAME STATUS NEEDLE CMD...
refuses() {
  local name=$1 want=$2 needle=$3; shift 3
  timeout "${REFUSE_SECONDS:-30}" "$@" >"$T/out" 2>"$T/err" </dev/null
  local rc=$?
  if [ $rc -ne 124 ] && [ $rc -ne 0 ] && { [ "$want" = fail ] || [ $rc -eq "$want" ]; } && grep -qF -- "$needle" "$T/err"; then
    ok "$name"
  else
    echo "  exit $rc (124: hung), stderr: $(head -c 600 "$T/err")"; bad "$name"
  fi
}
