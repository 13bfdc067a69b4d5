#!/usr/bin/env bash
# The study of issue 21: what input standardisation does for the paper preset on features with
# field-like scales. Two corpora: `sdumc synth --scales raw` (1,200 utterances) and an MMSA-style
# unaligned pickle with raw scales (tests/reference/mmsa_pickle.py, 1,260 utterances, imported with
# import-mmsa --sim zeros). For each: the paper preset (batch 128, lr 1e-4, 25 epochs; general dim
# HIDDEN, default 64 to keep the study under an hour on 2 shared cores, 256 is the paper's) with
# --normalize none and standard over SEEDS, and --preset auto with standardisation; valid and
# test MAE of the complete flow (text-missing in brackets) from `sdumc eval`; against predicting the
# training mean and ridge regression on mean-pooled features (tests/reference/pooled_baselines.py).
# Prints a markdown table (also OUT/study.md). Takes long: 9 trainings per corpus (RUNS x SEEDS), a
# minute each on the synthetic corpus and about ten on the MMSA-style one (its 375 audio and 500
# vision frames) on 2 busy cores; models already trained in OUT are reused.
#   bench/normalize_study.sh [OUT]   (SEEDS="1 2 3", THREADS=2, N=1200, HIDDEN=64, RUNS, CORPORA="synth mmsa",
#                                     SDUMC=binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SDUMC:-${BUILD:-build}/sdumc}
PY=/usr/bin/python3
OUT=${1:-${BUILD:-build}/normalize_study}
SEEDS=${SEEDS:-1 2 3}
THREADS=${THREADS:-2}
N=${N:-1200}
HIDDEN=${HIDDEN:-64}
RUNS=${RUNS:-paper:none paper:standard auto:standard}
CORPORA=${CORPORA:-synth mmsa}
mkdir -p "$OUT"
[ -d "$OUT/synth" ] || "$BIN" synth --out "$OUT/synth" --n "$N" --seed 21 --scales raw >/dev/null
if [ ! -d "$OUT/mmsa" ]; then
  $PY tests/reference/mmsa_pickle.py write "$OUT/mmsa.pkl" unaligned --scales raw --n 840 --seed 21
  "$BIN" import-mmsa "$OUT/mmsa.pkl" --out "$OUT/mmsa" --sim zeros >/dev/null
fi
# mae MODEL DATA SPLIT: "complete (missing)" MAE
mae() {
  "$BIN" eval --model "$1" --data "$2" --nonfinite zero --split "$3" --format json 2>/dev/null |
    $PY -c "import json,sys; d=json.load(sys.stdin); print('%.4f %.4f' % (d['full']['mae'], d['missing']['mae']))"
}
{
  echo "| corpus | run | valid MAE complete (text-missing) | test MAE complete (text-missing) |"
  echo "|---|---|---|---|"
  for corpus in $CORPORA; do
    data=$OUT/$corpus
    for run in $RUNS; do
      preset=${run%%:*} mode=${run##*:}
      vs=() ts=()
      for seed in $SEEDS; do
        model=$OUT/$corpus.h$HIDDEN.$preset.$mode.s$seed.safetensors
        [ -s "$model" ] || "$BIN" train --data "$data" --nonfinite zero --preset "$preset" --normalize "$mode" \
          --hidden "$HIDDEN" --seed "$seed" --threads "$THREADS" --out "$model" >"$model.out" 2>"$model.err"
        vs+=("$(mae "$model" "$data" valid)"); ts+=("$(mae "$model" "$data" test)")
      done
      summary() { printf '%s\n' "$@" | $PY -c "
import sys, numpy as np
a = np.array([[float(v) for v in l.split()] for l in sys.stdin if l.strip()])
m, s = a.mean(0), a.std(0)
print('%.3f +- %.3f (%.3f +- %.3f)' % (m[0], s[0], m[1], s[1]))"; }
      echo "| $corpus | --preset $preset --normalize $mode, hidden $HIDDEN ($(echo $SEEDS | wc -w) seeds) | $(summary "${vs[@]}") | $(summary "${ts[@]}") |"
    done
    $PY tests/reference/pooled_baselines.py "$data" | $PY -c "
import json, sys
d = json.load(sys.stdin)
for k, label in (('train_mean', 'predict the training mean'), ('ridge_text', 'ridge, pooled text'), ('ridge_all', 'ridge, pooled audio+text+video')):
    print('| $corpus | %s | %.3f | %.3f |' % (label, d[k]['valid'], d[k]['test']))"
  done
} | tee "$OUT/study.md"
