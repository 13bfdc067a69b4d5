#!/usr/bin/env bash
# MPI scaling on one machine (docs/SCALE_OUT.md, "Measured"): 2 ranks x 1 thread against 1 rank x 2
# threads, for training (synthetic corpus) and simulate-text (the tiny GGUF fixture), runs
# alternating, each with the load average before it; training's bytes per optimiser step and rank
# (rank 0's count of what it passed to collectives). Usage: BUILD=build bash bench/bench_mpi.sh
# [reps] (MOSEI=1 adds training at the MOSEI dims, 4.27 M parameters). Needs mpirun and
# $BUILD/sdumc-mpi (make tests links it when MPI is installed).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
REPS=${1:-3}
PLAIN=$PWD/$BUILD/sdumc
MPIBIN=$PWD/$BUILD/sdumc-mpi
command -v mpirun >/dev/null && [ -x "$MPIBIN" ] || { echo "bench_mpi: needs mpirun and $MPIBIN"; exit 2; }
MPIRUN=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }
now() { date +%s.%N; }
# run LABEL LOG cmd...: prints "LABEL: S s (load L)" and appends S to $T/LABEL.times.
run() {
  local label=$1 log=$2; shift 2
  local l; l=$(load)
  local t0; t0=$(now)
  "$@" >"$log" 2>&1 || { echo "bench_mpi: $label failed:"; tail -5 "$log"; exit 1; }
  local s; s=$(echo "$(now) - $t0" | bc)
  printf '  %-28s %7.2f s  (load %s)\n' "$label" "$s" "$l"
  echo "$s" >>"$T/$label.times"
}
median() { sort -g "$T/$1.times" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "bench_mpi: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $REPS runs each"

# Training: synthetic corpus, small dims, 2 epochs.
"$PLAIN" synth --out "$T/ds" --n 640 --seed 4 >/dev/null 2>&1 || { echo "bench_mpi: synth failed"; exit 1; }
TR=(train --data "$T/ds" --batch-size 64 --grad-chunks 2 --epochs 2 --seed 3 --prefetch 1)
echo "train: synthetic small dims, 640 utterances (512 train), batch 64, --grad-chunks 2, 2 epochs (16 steps)"
for r in $(seq 1 "$REPS"); do
  run train_1rank_x_2threads "$T/t12.log" "$PLAIN" "${TR[@]}" --threads 2 --out "$T/m12_$r.safetensors"
  run train_2ranks_x_1thread "$T/t21.log" "${MPIRUN[@]}" -np 2 "$MPIBIN" "${TR[@]}" --threads 1 --out "$T/m21_$r.safetensors"
done
grep -h "parameters" "$T/t12.log" | head -1
grep -h "MPI: rank 0 passed" "$T/t21.log"

# simulate-text: the tiny GGUF fixture, 30 utterances of 10..242 WavLM frames.
/usr/bin/python3 - "$T" <<'EOF' || { echo "bench_mpi: inputs failed"; exit 1; }
import json, os, struct, sys
import numpy as np
T = sys.argv[1]
rng = np.random.default_rng(5)
P = {"encoder_projector.linear1.weight": rng.standard_normal((32, 80)) / 9,
     "encoder_projector.linear1.bias": rng.standard_normal(32) * 0.1,
     "encoder_projector.linear2.weight": rng.standard_normal((64, 32)) / 5,
     "encoder_projector.linear2.bias": rng.standard_normal(64) * 0.1}
header, blobs, off = {}, [], 0
for name, a in P.items():
    b = np.ascontiguousarray(a, dtype=np.float32).tobytes()
    header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode(); h += b" " * ((-len(h)) % 8)
open(T + "/proj.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
os.makedirs(T + "/wavlm")
for i in range(30):
    n = 10 + (i * 37) % 233
    np.save(T + "/wavlm/utt%02d.npy" % i, rng.standard_normal((n, 16)).astype(np.float16))
EOF
ST=(simulate-text --llm "$PWD/tests/fixtures/llm/tiny_f32.gguf" --projector "$T/proj.safetensors" --wavlm "$T/wavlm" --max-new-tokens 150)
echo "simulate-text: tiny_f32.gguf fixture, 30 utterances, 4 beams, up to 150 new tokens"
for r in $(seq 1 "$REPS"); do
  run sim_1rank_x_2threads "$T/s12.log" "$PLAIN" "${ST[@]}" --threads 2 --out "$T/s12_$r"
  run sim_2ranks_x_1thread "$T/s21.log" "${MPIRUN[@]}" -np 2 "$MPIBIN" "${ST[@]}" --threads 1 --out "$T/s21_$r"
done

if [ "${MOSEI:-0}" = 1 ]; then
  "$PLAIN" synth --out "$T/dm" --n 160 --seed 4 --dims mosei >/dev/null 2>&1 || { echo "bench_mpi: synth failed"; exit 1; }
  TM=(train --data "$T/dm" --batch-size 64 --grad-chunks 2 --epochs 1 --seed 3 --prefetch 1)
  echo "train: synthetic MOSEI dims, 160 utterances (128 train), batch 64, --grad-chunks 2, 1 epoch (2 steps)"
  for r in $(seq 1 "$REPS"); do
    run mosei_1rank_x_2threads "$T/m12.log" "$PLAIN" "${TM[@]}" --threads 2 --out "$T/mm12_$r.safetensors"
    run mosei_2ranks_x_1thread "$T/m21.log" "${MPIRUN[@]}" -np 2 "$MPIBIN" "${TM[@]}" --threads 1 --out "$T/mm21_$r.safetensors"
  done
  grep -h "parameters" "$T/m12.log" | head -1
  grep -h "MPI: rank 0 passed" "$T/m21.log"
fi

echo "medians (s): $(for f in "$T"/*.times; do b=$(basename "$f" .times); printf '%s %s; ' "$b" "$(median "$b")"; done)"
