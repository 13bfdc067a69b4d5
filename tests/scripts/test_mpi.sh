#!/usr/bin/env bash
# Data-parallel training under MPI (docs/SCALE_OUT.md): mpirun -np 1, 2 and 3 of the MPI build
# ($BUILD/sdumc-mpi, or $BUILD/sdumc when it was built with MPI=1) against one plain process with
# the same --grad-chunks and --threads. Checked:
#   - the trained model is bit-identical (cmp) and the log holds the same numbers (all but the
#     wall-clock fields) for 1, 2 and 3 ranks, with 6 gradient chunks;
#   - without --grad-chunks, 2 ranks cut each batch into 2 chunks: the model of one process with
#     --grad-chunks 2;
#   - a run's state, resumed on a different number of ranks, finishes with the same model; a
#     resume on more ranks than the run's chunks, and more ranks than --grad-chunks, are refused;
#   - a build without MPI started by mpirun, and a command that does not split its work, refuse.
# Skipped, with the reason, when mpirun or the MPI build is missing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PLAIN=$PWD/$BUILD/sdumc
PY=/usr/bin/python3
if [ -x "$BUILD/sdumc-mpi" ]; then MPIBIN=$PWD/$BUILD/sdumc-mpi; else MPIBIN=$PLAIN; fi
if ! command -v mpirun >/dev/null 2>&1; then echo "SKIP mpi: mpirun is not installed (scripts/setup.sh installs Open MPI)"; exit 0; fi
if ! "$MPIBIN" version 2>/dev/null | grep -q '^mpi: MPI'; then echo "SKIP mpi: no MPI build ($BUILD/sdumc-mpi or make MPI=1)"; exit 0; fi

T=$(mktemp -d)
bg=
cleanup() { [ -n "$bg" ] && kill "$bg" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ok() { echo "PASS mpi.$1"; }
bad() { echo "FAIL mpi.$1"; }

MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
# Open MPI's own allocations are not ours to report under LeakSanitizer (make test-asan).
[ "${SD_SANITIZED:-0}" = 1 ] && MPIRUN+=(-x "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0")
BASE=(train --data "$T/ds" --hidden 16 --batch-size 20 --lr 1e-3 --seed 3 --threads 1 --prefetch 1)
ARGS=("${BASE[@]}" --epochs 2)
"$PLAIN" synth --out "$T/ds" --n 110 --seed 4 >/dev/null 2>&1 || { bad synth; exit 0; }

# Same numbers in two training logs, wall-clock fields aside.
same_log() {
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
def load(p):
    rows = [json.loads(l) for l in open(p)]
    for r in rows:
        for k in ("seconds", "eval_seconds", "samples_per_s"): r.pop(k, None)
    return rows
sys.exit(0 if load(sys.argv[1]) == load(sys.argv[2]) else 1)
EOF
}

# 1. One plain process with 6 chunks, then 1, 2, 3 ranks.
if "$PLAIN" "${ARGS[@]}" --grad-chunks 6 --out "$T/ref.safetensors" >"$T/ref.out" 2>&1; then ok single_process_6_chunks
else cat "$T/ref.out"; bad single_process_6_chunks; fi
for np in 1 2 3; do
  out=$T/np$np.safetensors
  if "${MPIRUN[@]}" -np $np "$MPIBIN" "${ARGS[@]}" --grad-chunks 6 --out "$out" >"$T/np$np.out" 2>&1 &&
     cmp -s "$T/ref.safetensors" "$out" && same_log "$T/ref.safetensors.log.jsonl" "$out.log.jsonl"; then
    ok "ranks_${np}_same_model_as_one_process"
  else
    tail -20 "$T/np$np.out"; bad "ranks_${np}_same_model_as_one_process"
  fi
done
# Rank 0 alone prints the result.
check_once() { [ "$(grep -c '^model:' "$T/np3.out")" -eq 1 ]; }
if check_once; then ok rank0_prints_once; else cat "$T/np3.out"; bad rank0_prints_once; fi

# 2. The default: as many chunks as ranks.
"$PLAIN" "${ARGS[@]}" --grad-chunks 2 --out "$T/k2.safetensors" >/dev/null 2>&1
if "${MPIRUN[@]}" -np 2 "$MPIBIN" "${ARGS[@]}" --out "$T/d2.safetensors" >"$T/d2.out" 2>&1 &&
   cmp -s "$T/k2.safetensors" "$T/d2.safetensors"; then ok default_chunks_are_ranks
else tail -20 "$T/d2.out"; bad default_chunks_are_ranks; fi

# 3. Resume on another number of ranks: a snapshot of the state after an early epoch of a 2-rank
# run, resumed on 3 ranks, ends with the 2-rank run's model.
"${MPIRUN[@]}" -np 2 "$MPIBIN" "${BASE[@]}" --epochs 6 --grad-chunks 6 --out "$T/long.safetensors" >"$T/long.out" 2>&1 &
bg=$!
for _ in $(seq 1 6000); do
  [ -f "$T/long.safetensors.state" ] && { cp "$T/long.safetensors.state" "$T/snap.state"; break; }
  kill -0 "$bg" 2>/dev/null || break
  sleep 0.02
done
wait "$bg"; rc=$?; bg=
snap_epoch=$("$PY" -c "
import json, struct, sys
raw = open('$T/snap.state', 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]
print(json.loads(raw[8:8 + n])['__metadata__']['next_epoch'])" 2>/dev/null || echo none)
if [ $rc -ne 0 ] || [ "$snap_epoch" = none ]; then
  tail -20 "$T/long.out"; bad resume_on_other_ranks
elif [ "$snap_epoch" -ge 6 ]; then
  echo "SKIP mpi.resume_on_other_ranks (the snapshot came after the last epoch; machine too busy)"
elif "${MPIRUN[@]}" -np 3 "$MPIBIN" "${BASE[@]}" --epochs 6 --resume "$T/snap.state" --out "$T/resumed.safetensors" \
       >"$T/resumed.out" 2>&1 && cmp -s "$T/long.safetensors" "$T/resumed.safetensors"; then
  ok resume_on_other_ranks
  echo "  (state after epoch $snap_epoch of 6 on 2 ranks, resumed on 3: same model)"
else
  tail -20 "$T/resumed.out"; bad resume_on_other_ranks
fi

# 4. Refusals, with the reason named.
refused() { # name needle command...
  local name=$1 needle=$2; shift 2
  local out
  if out=$("$@" 2>&1); then echo "$out" | tail -5; bad "$name"
  elif grep -q -- "$needle" <<<"$out"; then ok "$name"
  else echo "$out" | tail -5; bad "$name"; fi
}
refused resume_on_more_ranks_than_chunks "resume it on at most 2 ranks" \
  "${MPIRUN[@]}" -np 3 "$MPIBIN" "${ARGS[@]}" --resume "$T/d2.safetensors.state" --out "$T/x.safetensors"
refused more_ranks_than_chunks "cannot be shared by 3 ranks" \
  "${MPIRUN[@]}" -np 3 "$MPIBIN" "${ARGS[@]}" --grad-chunks 2 --out "$T/x.safetensors"
if [ "$MPIBIN" != "$PLAIN" ]; then
  refused plain_build_under_mpirun "built without MPI" "${MPIRUN[@]}" -np 2 "$PLAIN" "${ARGS[@]}" --out "$T/x.safetensors"
fi
refused eval_is_one_process "runs as one process" \
  "${MPIRUN[@]}" -np 2 "$MPIBIN" eval --model "$T/ref.safetensors" --data "$T/ds"
exit 0
