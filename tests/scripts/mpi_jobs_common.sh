# What the tests of sharded per-utterance jobs share (sourced by test_mpi_jobs.sh and
# test_mpi_prepare.sh after they set PLAIN, the plain build's sdumc): MPIBIN (build/sdumc-mpi, else
# the plain one), have_mpi (1 when mpirun and an MPI build are there), MPIRUN (mpirun
# --oversubscribe, --allow-run-as-root as root), and the helpers below. They use T (the test's
# folder) and bg (a background job's process id, which the caller's EXIT trap kills).
if [ -x "$BUILD/sdumc-mpi" ]; then MPIBIN=$PWD/$BUILD/sdumc-mpi; else MPIBIN=$PLAIN; fi
have_mpi=1
command -v mpirun >/dev/null 2>&1 && "$MPIBIN" version 2>/dev/null | grep -q '^mpi: MPI' || have_mpi=0
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
# Open MPI's own allocations are not ours to report under LeakSanitizer (make test-asan).
[ "${SD_SANITIZED:-0}" = 1 ] && MPIRUN+=(-x "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0")

same_folder() { # reference folder, folder: diff -r, its first lines printed when they differ
  if diff -r "$1" "$2" >"$T/diff.txt" 2>&1; then return 0; fi
  head -5 "$T/diff.txt"; return 1
}
# Outputs present in a folder; whether there is one (a builtin: the kill loops below poll fast on a
# loaded machine).
count_npy() { ls "$1"/*.npy 2>/dev/null | wc -l; }
has_npy() { compgen -G "$1/*.npy" >/dev/null; }

# run_then_kill LOG "DIR..." command...: runs the command in the background (output to LOG) and
# kills it (SIGKILL) as soon as every DIR holds a .npy (or when it has ended).
run_then_kill() {
  local log=$1 dirs=$2 d all
  shift 2
  "$@" >"$log" 2>&1 &
  bg=$!
  for _ in $(seq 1 6000); do
    all=1
    for d in $dirs; do has_npy "$d" || all=0; done
    [ $all = 1 ] && break
    kill -0 $bg 2>/dev/null || break
    sleep 0.01
  done
  kill -KILL $bg 2>/dev/null; wait $bg 2>/dev/null; bg=
}

# kill_a_rank LOG DIR N command...: runs the command (mpirun of 2 ranks) in the background; once DIR
# holds a .npy, stops both ranks (SIGSTOP), kills the second (SIGKILL) and lets the first go on, which
# mpirun then stops. Sets at_kill (DIR's .npy files at the kill) and kill_rc (the job's exit status).
# Returns 1, letting the job end, when it ended first (fewer than 2 ranks found, or all N done).
kill_a_rank() {
  local log=$1 dir=$2 n=$3 ranks=
  shift 3
  "$@" >"$log" 2>&1 &
  bg=$!
  for _ in $(seq 1 6000); do
    if has_npy "$dir"; then
      ranks=$(pgrep -P $bg | tr '\n' ' ')
      for p in $ranks; do kill -STOP "$p" 2>/dev/null; done
      break
    fi
    kill -0 $bg 2>/dev/null || break
    sleep 0.01
  done
  at_kill=$(count_npy "$dir")
  set -- $ranks
  if [ $# -ge 2 ] && [ "$at_kill" -lt "$n" ]; then
    kill -KILL "$2"
    kill -CONT "$1"
    wait $bg; kill_rc=$?; bg=
    return 0
  fi
  for p in $ranks; do kill -CONT "$p" 2>/dev/null; done
  wait $bg; bg=
  return 1
}
