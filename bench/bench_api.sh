#!/usr/bin/env bash
# `make bench` part for the public C API: builds bench_api and measures
#  1. batch-1 latency of sdumc_predict at CMU-MOSEI dims (1024/4096/1024, H 256, MIA on; frames
#     250/30/60), both flows, with and without a caller-owned context, and the batch call's
#     throughput, on 1 thread and on all cores (the model's n_threads);
#  2. on a shared host: the text-missing batch-1 latency on all cores, idle and while two CPU-bound
#     processes run beside it (started and stopped here), alternating ROUNDS times, through the API
#     (its own pool, threads that sleep when idle) and through the same forward on OpenMP threads with
#     libgomp's default wait policy (how the API ran before it had its own threads); the table gives
#     medians over rounds and the ratio loaded / idle (target <= 2.5).
#   BUILD=build BENCH_API_ITERS=100 BENCH_API_ROUNDS=3 bash bench/bench_api.sh
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ITERS=${BENCH_API_ITERS:-100}
ROUNDS=${BENCH_API_ROUNDS:-3}
CFLAGS="-O2 -g -std=c11 -Wall -Wextra -Wpedantic -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp -Isrc -Iinclude \
  $(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)"
LIBS="$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -lpthread"
make --no-print-directory BUILD="$BUILD" "$BUILD/libsdumc.a" >/dev/null
gcc $CFLAGS bench/bench_api.c "$BUILD/libsdumc.a" $LIBS -o "$BUILD/bench_api"
echo "== public C API, 1 thread"
"$BUILD/bench_api" --threads 1 --iters "$ITERS"
echo "== public C API, all cores"
"$BUILD/bench_api" --threads 0 --iters "$ITERS"

# ---- a shared host: two CPU-bound processes beside one utterance's latency ----
busy=()
stop_busy() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; busy=(); }
trap stop_busy EXIT
start_busy() { for _ in 1 2; do (while :; do :; done) & busy+=($!); done; sleep 0.5; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
latency() { # ENGINE -> median ms of one run (OpenMP's wait policy left at libgomp's default)
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$BUILD/bench_api" --threads 0 --iters "$ITERS" --latency "$1" |
    sed -n 's/.*median \([0-9.]*\) ms.*/\1/p'
}
echo "== one utterance (text-missing flow, own context, all cores), idle and beside two CPU-bound processes"
echo "   load before: $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds alternating idle and loaded"
declare -A runs
for r in $(seq 1 "$ROUNDS"); do
  for engine in api openmp; do
    runs[$engine.idle]+="$(latency $engine) "
    start_busy
    runs[$engine.loaded]+="$(latency $engine) "
    stop_busy
  done
done
printf '%-44s %12s %12s %14s\n' "engine" "idle ms" "loaded ms" "loaded/idle"
for engine in api openmp; do
  idle=$(echo ${runs[$engine.idle]} | tr ' ' '\n' | median)
  loaded=$(echo ${runs[$engine.loaded]} | tr ' ' '\n' | median)
  name="sdumc_predict (the library's pool)"
  [ $engine = openmp ] && name="flow on OpenMP threads (libgomp default wait)"
  printf '%-44s %12.3f %12.3f %13.2fx\n' "$name" "$idle" "$loaded" "$(echo "$loaded $idle" | awk '{ print $1 / $2 }')"
  echo "   rounds ($engine): idle ${runs[$engine.idle]}| loaded ${runs[$engine.loaded]}"
done
echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
