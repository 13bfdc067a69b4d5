#!/usr/bin/env bash
# `make bench` part for the public C API: builds bench_api and measures batch-1 latency of
# sdumc_predict at CMU-MOSEI dims (1024/4096/1024, H 256, MIA on; frames 250/30/60), both flows,
# with and without a caller-owned context, and the batch call's throughput, on 1 thread and on
# all cores.
#   BUILD=build bash bench/bench_api.sh
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CFLAGS="-O2 -g -std=c11 -Wall -Wextra -Wpedantic -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp -Isrc -Iinclude \
  $(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)"
LIBS="$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -lpthread"
make --no-print-directory BUILD="$BUILD" "$BUILD/libsdumc.a" >/dev/null
gcc $CFLAGS bench/bench_api.c "$BUILD/libsdumc.a" $LIBS -o "$BUILD/bench_api"
echo "== public C API, 1 thread"
"$BUILD/bench_api" --threads 1 --iters ${BENCH_API_ITERS:-100}
echo "== public C API, all cores"
"$BUILD/bench_api" --threads 0 --iters ${BENCH_API_ITERS:-100}
