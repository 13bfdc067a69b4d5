#!/usr/bin/env bash
# `make bench` part for the LLM decoder: builds bench_llm, runs it on the tiny Q8_0 fixture and on a
# generated LLaMA-7B-shaped random Q8_0 GGUF in /tmp (7.2 GB; fewer blocks when the disk or memory is
# short, with the figures per block printed), then deletes the file.
#   BUILD=build bash bench/bench_llm.sh
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CFLAGS="-O2 -g -std=c11 -Wall -Wextra -Wpedantic -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp -Isrc \
  $(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)"
LIBS="$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -lpthread"
make --no-print-directory BUILD="$BUILD" "$BUILD/libsdumc.a" >/dev/null
gcc $CFLAGS bench/bench_llm.c "$BUILD/libsdumc.a" $LIBS -o "$BUILD/bench_llm"
echo "== tiny model (4 blocks, hidden 64, GQA 4/2, Q8_0)"
"$BUILD/bench_llm" tests/fixtures/llm/tiny_q8_0.gguf --prompt 64 --gen 32 --beams 4
GG=${BENCH_7B:-/tmp/sdumc-bench-7b-q8_0.gguf}
free_gb=$(df -BG --output=avail "$(dirname "$GG")" | tail -1 | tr -dc 0-9)
mem_gb=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
layers=32
if [ "$free_gb" -lt 12 ] || [ "$mem_gb" -lt 10 ]; then layers=4; fi
trap 'rm -f "$GG"' EXIT
echo "== LLaMA-7B shape, random Q8_0, $layers blocks (disk ${free_gb} GB free, memory ${mem_gb} GB available)"
/usr/bin/python3 bench/bench_llm_make_gguf.py "$GG" --layers $layers
"$BUILD/bench_llm" "$GG" --prompt ${BENCH_PROMPT:-64} --gen ${BENCH_GEN:-4} --beams 4
