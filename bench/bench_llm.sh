#!/usr/bin/env bash
# `make bench BENCH_LLM=1`: the LLM decoder side by side with llama.cpp (bench/README.md, "LLM").
#
# On LLaMA-7B-shaped GGUF files with random weights (bench/bench_llm_make_gguf.py; written once into
# BENCH_DIR and kept, ~25 GB for all three types), the same thread count for both programs, the two
# programs alternated: prompt passes of 64 and 128 tokens, generation of one sequence, and
# generation steps of 4 sequences sharing a prompt (the beam-search shape simulate-text runs).
# llama.cpp's figures come from its llama-bench (pp, tg) and llama-batched-bench (-pps, 4
# sequences); sdumc's from build/bench_llm. Without LLAMA_CPP_DIR only sdumc's figures are printed.
#
# Environment: LLAMA_CPP_DIR (a llama.cpp checkout built into LLAMA_CPP_DIR/build, see README),
# THREADS (2), TYPES ("q8_0 q4_0 f16"; f32 also works), BENCH_DIR (/tmp/sdumc-bench), GEN (16 generated tokens),
# ROUNDS (1: each program once per type; more alternate which goes first), LAYERS (32; at least 3:
# fewer blocks of the same 7B widths, for a loaded machine; the files are then llama-L<n>-<type>.gguf),
# KERNELS (sdumc's kernel set at most: avx512, avx2 or portable; default the best the CPU runs: with
# avx2 and a llama.cpp built without AVX-512, an AVX2 host's comparison on an AVX-512 machine).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
KERNELS=${KERNELS:-}
KOPT=(); [ -n "$KERNELS" ] && KOPT=(--kernels "$KERNELS")
TYPES=${TYPES:-q8_0 q4_0 f16}
BENCH_DIR=${BENCH_DIR:-/tmp/sdumc-bench}
GEN=${GEN:-16}
ROUNDS=${ROUNDS:-1}
LAYERS=${LAYERS:-32}
LLAMA_CPP_DIR=${LLAMA_CPP_DIR:-}
PY=/usr/bin/python3
CFLAGS="-O2 -g -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp -Isrc"
LIBS="$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -lpthread"
make --no-print-directory BUILD="$BUILD" "$BUILD/libsdumc.a" >/dev/null
gcc $CFLAGS bench/bench_llm.c "$BUILD/libsdumc.a" $LIBS -o "$BUILD/bench_llm"
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
# sdumc runs with the OpenMP wait its CLI chooses (src/cli/main.c: GOMP_SPINCOUNT=1000 unless the
# user set OMP_WAIT_POLICY or GOMP_SPINCOUNT); bench_llm is not the CLI, so the setting is made here.
# libgomp's default spins ~300,000 rounds at every barrier: on a loaded machine that took half of
# bench_llm's CPU time (perf, bench/README.md). llama.cpp runs with its own defaults.
SD_WAIT=GOMP_SPINCOUNT=1000
[ -n "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ] && SD_WAIT=GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-}
OUT=$(mktemp -d /tmp/sdumc-benchllm-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

LB=; LBB=
if [ -n "$LLAMA_CPP_DIR" ]; then
  LB=$LLAMA_CPP_DIR/build/bin/llama-bench; LBB=$LLAMA_CPP_DIR/build/bin/llama-batched-bench
  for b in "$LB" "$LBB"; do [ -x "$b" ] || { echo "bench_llm: $b not built (bench/README.md)"; exit 2; }; done
fi

flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx_vnni)$' | tr '\n' ' ')
echo "== LLM decoder: sdumc${LB:+ and llama.cpp ($(git -C "$LLAMA_CPP_DIR" log -1 --format=%h 2>/dev/null || echo ?))}, $THREADS threads"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, flags: $flags"
echo "shape: LLaMA-7B widths (hidden 4096, ff 11008, 32 heads, vocab 32000), $LAYERS blocks; prompt 64/128, $GEN generated tokens, $ROUNDS round(s)"
echo "OpenMP wait for sdumc: ${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=$OMP_WAIT_POLICY }$SD_WAIT"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== tiny model (4 blocks, hidden 64, Q8_0): a quick check that the decoder runs"
env "$SD_WAIT" "$BUILD/bench_llm" tests/fixtures/llm/tiny_q8_0.gguf --prompt 64 --gen 32 --beams 4 --threads "$THREADS" "${KOPT[@]}" | sed 's/^/  /'

bw=$("$BUILD/bench_llm" --bandwidth --threads "$THREADS" --json | sed -n 's/^BENCH //p')
echo "bw $bw" > "$OUT/bandwidth"

mkdir -p "$BENCH_DIR"
for t in $TYPES; do
  f=$BENCH_DIR/7b-$t.gguf
  [ "$LAYERS" = 32 ] || f=$BENCH_DIR/llama-L$LAYERS-$t.gguf
  if [ ! -s "$f" ]; then
    need=$(case $t in q8_0) echo 8;; q4_0) echo 5;; f16) echo 15;; f32) echo 29;; esac)
    need=$(( need * LAYERS / 32 + 1 ))
    free_gb=$(df -BG --output=avail "$BENCH_DIR" | tail -1 | tr -dc 0-9)
    if [ "$free_gb" -lt $((need + 2)) ]; then echo "skipping $t: $free_gb GB free in $BENCH_DIR, $need needed"; continue; fi
    echo "writing $f ($t, $LAYERS blocks)..."
    $PY bench/bench_llm_make_gguf.py "$f" --type "$t" --layers "$LAYERS" >/dev/null
    # the file's pages on disk before anything is timed: otherwise the kernel writes gigabytes of
    # dirty pages back during the first program's run (sdumc, which ran right after each write,
    # got only 1.6-1.8 of the 2 CPUs even in its compute-bound prompt passes; bench/README.md)
    sync "$f"
  fi
  size_gb=$(( $(stat -c %s "$f") / 1000000000 + 1 ))
  mem_gb=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
  if [ "$mem_gb" -lt "$size_gb" ]; then
    echo "note: $t: $mem_gb GB of memory available for a $size_gb GB file: it will be read from disk"
  fi
  for r in $(seq 1 "$ROUNDS"); do
    order="sdumc llama"; [ $((r % 2)) -eq 0 ] && order="llama sdumc"
    for who in $order; do
      if [ $who = sdumc ]; then
        echo "-- $t round $r: sdumc"
        env "$SD_WAIT" "$BUILD/bench_llm" "$f" --prompt 64,128 --gen "$GEN" --beams 4 --threads "$THREADS" "${KOPT[@]}" --json \
          | tee -a "$OUT/log" | grep -v '^BENCH' | sed 's/^/  /'
        grep '^BENCH' "$OUT/log" | tail -1 | sed "s/^BENCH /sdumc $t /" >> "$OUT/results"
      elif [ -n "$LB" ]; then
        echo "-- $t round $r: llama.cpp"
        "$LB" -m "$f" -p 64,128 -n "$GEN" -t "$THREADS" -r 1 -o json 2>/dev/null > "$OUT/lb.json"
        "$LBB" -m "$f" -c 512 -b 512 -ub 512 -npp 64 -ntg "$GEN" -npl 4 -pps -t "$THREADS" -tb "$THREADS" \
          --output-format jsonl 2>/dev/null | grep '^{' > "$OUT/lbb.json"
        $PY - "$OUT/lb.json" "$OUT/lbb.json" "$t" >> "$OUT/results" <<'EOF'
import json, sys
lb = json.load(open(sys.argv[1]))
lbb = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
r = {}
for row in lb:
    if row["n_gen"] == 0:
        r["pp%d" % row["n_prompt"]] = row["avg_ts"]
    else:
        r["tg"] = row["avg_ts"]
if lbb:
    r["tg_batch"] = lbb[-1]["speed_tg"]
print("llama %s %s" % (sys.argv[3], json.dumps(r)))
EOF
        tail -1 "$OUT/results" | cut -d' ' -f3- | sed 's/^/  /'
      fi
    done
  done
done
bw2=$("$BUILD/bench_llm" --bandwidth --threads "$THREADS" --json | sed -n 's/^BENCH //p')
echo "bw $bw2" >> "$OUT/bandwidth"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -s "$OUT/results" ] || exit 0
$PY - "$OUT/results" "$OUT/bandwidth" <<'EOF'
import json, statistics, sys
rows = [l.split(" ", 2) for l in open(sys.argv[1]) if l.strip()]
bw = max(json.loads(l.split(" ", 1)[1])["bandwidth_gbs"] for l in open(sys.argv[2]))
res = {}
for who, t, js in rows:
    for k, v in json.loads(js).items():
        res.setdefault((t, who, k), []).append(v)
def med(t, who, k):
    v = res.get((t, who, k))
    return statistics.median(v) if v else None
print("\nmedian over rounds; tokens/s; bound = measured read bandwidth %.1f GB/s / weight bytes per step" % bw)
print("%-5s %-22s %10s %10s %8s %12s %12s" % ("type", "test", "sdumc", "llama.cpp", "ratio", "sdumc/bound", "llama/bound"))
for t in dict.fromkeys(r[1] for r in rows):
    wb = med(t, "sdumc", "weight_bytes")
    bound = bw * 1e9 / wb if wb else None
    for k, name, b in [("pp64", "prompt 64", None), ("pp128", "prompt 128", None), ("tg", "generation, 1 seq", 1),
                       ("tg_batch", "generation, 4 seqs", 4)]:
        s, l = med(t, "sdumc", k), med(t, "llama", k)
        fmt = lambda v: "%10.3f" % v if v is not None else "%10s" % "-"  # noqa: E731
        ratio = "%8.2f" % (s / l) if s and l else "%8s" % "-"
        fb = lambda v: "%11.0f%%" % (100 * v / (bound * b)) if v and b and bound else "%12s" % ""  # noqa: E731
        print("%-5s %-22s %s %s %s %s %s" % (t, name, fmt(s), fmt(l), ratio, fb(s), fb(l)))
print("\nsdumc's load (median): seconds, of which repacking the weights (src/llm/kernels_repack.h); RSS after the load and peak")
for t in dict.fromkeys(r[1] for r in rows):
    ls, rp, pb = med(t, "sdumc", "load_s"), med(t, "sdumc", "repack_s"), med(t, "sdumc", "packed_bytes")
    rl, rk = med(t, "sdumc", "rss_load_mb"), med(t, "sdumc", "rss_peak_mb")
    if ls is not None:
        print("%-5s load %.2f s, repacking %.2f s (%.0f MB repacked); RSS %.0f MB after the load, %.0f MB peak"
              % (t, ls, rp or 0, (pb or 0) / 1e6, rl or 0, rk or 0))
EOF
