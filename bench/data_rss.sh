#!/usr/bin/env bash
# Peak memory of reading a dataset of CMU-MOSEI dims (1024/4096/1024, float16) for two dataset
# sizes, under an address-space limit several times smaller than the features: the resident set
# must stay flat (a few batches), whatever the dataset size.
#
#   bash bench/data_rss.sh [N_SMALL] [N_LARGE] [LIMIT_MIB]      (defaults 1200 2400 768)
#
# Writes the datasets under /tmp (about 1.7 MB per utterance) and deletes them afterwards.
# Needs `make` first (build/sdumc, build/libsdumc.a).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N_SMALL=${1:-1200}
N_LARGE=${2:-2400}
LIMIT_MIB=${3:-768}
work=$(mktemp -d /tmp/sdumc-rss-XXXXXX)
trap 'rm -rf "$work"' EXIT

cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc bench/data_rss.c \
   "$BUILD/libsdumc.a" $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -lpthread -fopenmp \
   -o "$work/data_rss"

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM"
echo "address-space limit for the reader: $LIMIT_MIB MiB (ulimit -v); batch 16, prefetch 2, no frame cap"
for n in "$N_SMALL" "$N_LARGE"; do
  dir="$work/mosei_$n"
  "$BUILD/sdumc" synth --out "$dir" --n "$n" --seed 1 --dims mosei
  bytes=$(du -sb "$dir" | cut -f1)
  echo "dataset n=$n: $(awk -v b="$bytes" 'BEGIN {printf "%.2f GB", b/1e9}') of features ($(awk -v b="$bytes" -v l="$LIMIT_MIB" 'BEGIN {printf "%.1f", b/(l*1048576)}') x the limit)"
  ( ulimit -v $((LIMIT_MIB * 1024)); OPENBLAS_NUM_THREADS=1 /usr/bin/time -v "$work/data_rss" "$dir" 16 2 0 ) \
    2> "$work/time.txt"
  grep -E "Maximum resident set size|Elapsed" "$work/time.txt" | sed 's/^\s*/  \/usr\/bin\/time: /'
  rm -rf "$dir"
done
