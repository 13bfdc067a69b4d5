#!/usr/bin/env bash
# make demo-robustness: the demo corpus of scripts/demo.sh, SDUMC (paper preset) and the
# complete-flow-only baseline each trained with 3 seeds (the demo's settings), then
# `sdumc robustness` on the test split (missing frames, dropped runs and noise at 0-0.9, the 7
# patterns, both flows) and `sdumc compare` of the two. Outputs in $BUILD/demo_robustness.
# Settings as scripts/demo.sh (DEMO_* variables); ROBUST_SEEDS (1,2,3), ROBUST_JOBS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${DEMO_N:-1200}
HIDDEN=${DEMO_HIDDEN:-256}
EPOCHS=${DEMO_EPOCHS:-12}
BATCH=${DEMO_BATCH:-32}
LR=${DEMO_LR:-1e-3}
THREADS=${DEMO_THREADS:-0}
SEEDS=${ROBUST_SEEDS:-1,2,3}
JOBS=${ROBUST_JOBS:-1}
OUT=$BUILD/demo_robustness
BIN=$BUILD/sdumc
start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
"$BIN" synth --out "$OUT/data" --n "$N" --seed 1
common=(--data "$OUT/data" --hidden "$HIDDEN" --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" --threads "$THREADS"
        --seeds "$SEEDS" --jobs "$JOBS")
echo "== SDUMC, paper preset, seeds $SEEDS =="
"$BIN" train --preset paper "${common[@]}" --out "$OUT/sdumc.safetensors"
t_sdumc=$(date +%s)
echo "== baseline: complete flow only, seeds $SEEDS =="
"$BIN" train --preset paper "${common[@]}" --w-miss 0 --w-tf 0 --w-tq 0 --w-f 0 --w-rnc 0 --select full \
  --out "$OUT/baseline.safetensors"
t_train=$(date +%s)
echo "== robustness =="
"$BIN" robustness --model "sdumc=$OUT/sdumc.seed{seed}.safetensors" --model "baseline=$OUT/baseline.seed{seed}.safetensors" \
  --data "$OUT/data" --seeds "$SEEDS" --threads "$THREADS" --out "$OUT/robust"
t_robust=$(date +%s)
echo "== paired comparison (B = sdumc, A = baseline), MAE =="
"$BIN" compare "$OUT/robust/results.csv" --a baseline --b sdumc | tee "$OUT/compare_mae.txt" | \
  grep -E '^(clean|pattern|missing,all,[a-z]+,(0|0.5|0.9) |drop,all,[a-z]+,(0.5|0.9) |noise,all,[a-z]+,(0.5|0.9) )|conditions:|B - A'
"$BIN" compare "$OUT/sdumc.seeds.csv" "$OUT/baseline.seeds.csv" --a sdumc --b baseline > "$OUT/compare_seeds.txt" || true
echo
echo "times: training SDUMC $((t_sdumc - start)) s (corpus included), baseline $((t_train - t_sdumc)) s, robustness $((t_robust - t_train)) s"
echo "report: $OUT/robust/report.html  summary: $OUT/robust/summary.json  results: $OUT/robust/results.csv"
