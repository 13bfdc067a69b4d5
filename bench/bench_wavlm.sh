#!/usr/bin/env bash
# `make bench BENCH_WAVLM=1` part for WavLM (docs/WAVLM.md): a WavLM-Large-shaped random model
# (float16 safetensors, 630 MB, written to /tmp and deleted afterwards) on 10 s of audio, the
# audio-features workload (every layer, layer 20 and the last kept), sdumc (bench_wavlm.c) and the
# PyTorch reference in float32 (bench_wavlm_torch.py: tests/reference/wavlm_ref.py, no_grad) side
# by side on 1 and 2 threads, alternating which goes first. Each side is its own process: its
# peak RSS is its own (model, input, every buffer; for PyTorch also the interpreter).
# Options (environment): SECONDS_AUDIO (10), ITERS (3 timed runs after one warm-up), ROUNDS (1).
#   BUILD=build bash bench/bench_wavlm.sh
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
SECS=${SECONDS_AUDIO:-10}
ITERS=${ITERS:-3}
ROUNDS=${ROUNDS:-1}
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
CFLAGS="-O2 -g -std=c11 -Wall -Wextra -Wpedantic -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp -Isrc \
  $(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)"
LIBS="$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) $(pkg-config --libs sndfile soxr) -lm -lpthread"
make --no-print-directory BUILD="$BUILD" "$BUILD/libsdumc.a" >/dev/null
mkdir -p "$BUILD/bench"
gcc $CFLAGS bench/bench_wavlm.c "$BUILD/libsdumc.a" $LIBS -o "$BUILD/bench/bench_wavlm"
M=${BENCH_WAVLM_MODEL:-/tmp/sdumc-bench-wavlm-large-f16.safetensors}
trap 'rm -f "$M"' EXIT
echo "== WavLM-Large shape (24 layers, hidden 1024, 315M parameters), random, float16 file; $SECS s of audio"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs," \
  "flags $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f)$' | tr '\n' ' ')," \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, load $(cut -d' ' -f1-3 /proc/loadavg)"
$PY bench/bench_wavlm_torch.py --write "$M"
run_sdumc() { OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1 "$BUILD/bench/bench_wavlm" --model "$M" --threads "$1" \
  --seconds "$SECS" --iters "$ITERS"; }
run_torch() { env LD_PRELOAD="$TCMALLOC" OMP_WAIT_POLICY=passive OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1 \
  $PY bench/bench_wavlm_torch.py --model "$M" --threads "$1" --seconds "$SECS" --iters "$ITERS"; }
for th in 1 2; do
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run_sdumc $th; run_torch $th; else run_torch $th; run_sdumc $th; fi
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
