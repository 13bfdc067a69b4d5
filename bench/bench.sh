#!/usr/bin/env bash
# `make bench`: sdumc against the PyTorch reference (tests/reference/sdumc_ref.py), same inputs,
# same thread count, one process tree; prints the table of bench/README.md.
# Options (environment): THREADS (2), STEPS (20, timed training steps per process, >= 20 for the
# table), WARMUP (3), ROUNDS (1: processes per side and point, alternating which side goes
# first; the figure is the median over rounds of each process's median), SCALE_STEPS (5, for the
# frame-count and thread scaling rows of sdumc), QUICK=1 (STEPS=5 WARMUP=1 SCALE_STEPS=2, not
# for the issue note), SKIP_SCALING=1, SKIP_CLI=1 (no `sdumc train` rows), CLI_TRAIN / CLI_VALID
# (utterances of the CLI's dataset, 480 / 96), BENCH_AVX2=1 (below).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
THREADS=${THREADS:-2}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-1}
SCALE_STEPS=${SCALE_STEPS:-5}
if [ "${QUICK:-0}" = 1 ]; then STEPS=5; WARMUP=1; SCALE_STEPS=2; fi
SD="$BUILD/bench/bench_sdumc"
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
[ -x "$SD" ] || { echo "bench: $SD not built (run make bench)"; exit 1; }
[ -x "$BUILD/sdumc" ] || { echo "bench: $BUILD/sdumc not built (run make bench)"; exit 1; }
"$PY" -c "import torch" 2>/dev/null || { echo "bench: $PY cannot import torch"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Thread count for OpenMP, OpenBLAS and torch alike. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
# left as the environment has them, for both sides (BENCHMARKING.md).
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
# sdumc's side waits as the command line does (src/cli/main.c: GOMP_SPINCOUNT=1000 unless the user
# chose a policy): libgomp's default spins ~300,000 rounds per wait, which on a loaded host takes the
# CPU from the threads it waits for; PyTorch gets its best set-up (passive) below.
sdumc() { env GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-1000}" "$SD" "$@" --threads "$THREADS" >>"$out" ||
  echo "bench: sdumc $* failed" >&2; }
torch() { # PyTorch's best set-up here: tcmalloc, passive OpenMP waiting
  env LD_PRELOAD="$TCMALLOC" OMP_WAIT_POLICY=passive "$PY" bench/bench_torch.py "$@" --threads "$THREADS" \
    >>"$out" || echo "bench: torch $* failed" >&2
}
tag() { echo "{\"point\": \"$1\"}" >>"$out"; }

MOSEI="--dims 1024,4096,1024 --frames 250,30,60 --sim 30 --batch 96"
MOSI="--dims 74,768,35 --frames 50,50,50 --sim 50 --batch 96"

echo "{\"machine\": {\"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\", \
\"flags\": \"$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' ' | sed 's/ $//')\", \
\"cpus\": $(nproc), \"threads\": $THREADS, \"coretype\": \"${OPENBLAS_CORETYPE:-unset}\", \
\"load_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"steps\": $STEPS, \"rounds\": $ROUNDS}}" >>"$out"
sdumc gemm
for point in MOSEI MOSI; do
  args=${!point}
  tag "$point"
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      sdumc train $args --steps "$STEPS" --warmup "$WARMUP"; torch train $args --steps "$STEPS" --warmup "$WARMUP"
      torch infer $args --steps "$STEPS" --warmup "$WARMUP"; sdumc infer $args --steps "$STEPS" --warmup "$WARMUP"
    else
      torch train $args --steps "$STEPS" --warmup "$WARMUP"; sdumc train $args --steps "$STEPS" --warmup "$WARMUP"
      sdumc infer $args --steps "$STEPS" --warmup "$WARMUP"; torch infer $args --steps "$STEPS" --warmup "$WARMUP"
    fi
  done
done
# BENCH_AVX2=1: the training step at both points again with OpenBLAS's AVX2 kernel
# (OPENBLAS_CORETYPE=Haswell) on both sides, alternating; points MOSEI_avx2, MOSI_avx2. sdumc's own
# elementwise kernels keep the clone the CPU picks (bench/README.md says how to force AVX2 there).
if [ "${BENCH_AVX2:-0}" = 1 ]; then
  for point in MOSEI MOSI; do
    args=${!point}
    tag "${point}_avx2"
    OPENBLAS_CORETYPE=Haswell sdumc train $args --steps "$STEPS" --warmup "$WARMUP"
    OPENBLAS_CORETYPE=Haswell torch train $args --steps "$STEPS" --warmup "$WARMUP"
  done
  OPENBLAS_CORETYPE=Haswell "$SD" gemm --threads "$THREADS" | sed 's/"mode": "gemm"/"mode": "gemm_avx2"/' >>"$out"
fi
# The command line end to end at the MOSEI point (bench_cli.py): whole-epoch samples/s of
# `sdumc train` on a generated float16 .npy dataset, and its peak RSS. SKIP_CLI=1 leaves it out.
if [ "${SKIP_CLI:-0}" != 1 ]; then
  tag MOSEI
  "$PY" bench/bench_cli.py --sdumc "$BUILD/sdumc" $MOSEI --threads "$THREADS" --train "${CLI_TRAIN:-480}" \
    --valid "${CLI_VALID:-96}" --rounds "$ROUNDS" >>"$out" || echo "bench: bench_cli.py failed" >&2
  # The same with --train-subset 256: epochs that also measure 256 training utterances in evaluation
  # mode (the default before the training pass's own metrics; on this small set most of the
  # evaluation time).
  "$PY" bench/bench_cli.py --sdumc "$BUILD/sdumc" $MOSEI --threads "$THREADS" --train "${CLI_TRAIN:-480}" \
    --valid "${CLI_VALID:-96}" --train-subset 256 --rounds "$ROUNDS" >>"$out" || echo "bench: bench_cli.py failed" >&2
fi
if [ "${SKIP_SCALING:-0}" != 1 ]; then
  for ta in 125 250 500; do
    tag "scale_frames_$ta"
    "$SD" train --dims 1024,4096,1024 --frames "$ta,30,60" --sim 30 --batch 96 --threads "$THREADS" \
      --steps "$SCALE_STEPS" --warmup 1 >>"$out"
  done
  for th in 1 2; do
    tag "scale_threads_$th"
    OMP_NUM_THREADS=$th OPENBLAS_NUM_THREADS=$th "$SD" train $MOSEI --threads "$th" --steps "$SCALE_STEPS" \
      --warmup 1 >>"$out"
  done
fi
sdumc gemm
echo "{\"load_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$out"
"$PY" bench/bench_table.py "$out"
[ -n "${BENCH_JSON:-}" ] && cp "$out" "$BENCH_JSON"
exit 0
