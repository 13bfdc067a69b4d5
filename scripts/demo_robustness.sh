#!/usr/bin/env bash
# make demo-robustness: the demo corpus of scripts/demo.sh, SDUMC (paper preset) and the
# complete-flow-only baseline each trained with 3 seeds (the demo's settings), then
# `sdumc robustness` on the test split (missing frames, dropped runs and noise at 0-0.9, the 7
# patterns, both flows) and `sdumc compare` of the two. Outputs in $BUILD/demo_robustness.
# Settings as scripts/demo.sh (scripts/demo_settings.sh, DEMO_* variables); ROBUST_SEEDS (1,2,3),
# ROBUST_JOBS (training runs at once, 1), ROBUST_THREADS (threads of the robustness step).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo_settings.sh
SEEDS=${ROBUST_SEEDS:-1,2,3}
JOBS=${ROBUST_JOBS:-1}
# Threads of the robustness step: on a machine busy with other work one thread wastes far less
# than two (OpenMP's barriers spin while the other thread waits for a core).
ROBUST_THREADS=${ROBUST_THREADS:-$THREADS}
OUT=$BUILD/demo_robustness
start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
"$BIN" synth --out "$OUT/data" --n "$N" --seed "$SEED"
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
  --data "$OUT/data" --seeds "$SEEDS" --threads "$ROBUST_THREADS" --out "$OUT/robust"
t_robust=$(date +%s)
echo "== paired comparison (B = sdumc, A = baseline), MAE =="
"$BIN" compare "$OUT/robust/results.csv" --a baseline --b sdumc | tee "$OUT/compare_mae.txt" | \
  grep -E '^(clean|pattern|missing,all,[a-z]+,(0|0.5|0.9) |drop,all,[a-z]+,(0.5|0.9) |noise,all,[a-z]+,(0.5|0.9) )|conditions:|B - A'
"$BIN" compare "$OUT/sdumc.seeds.csv" "$OUT/baseline.seeds.csv" --a sdumc --b baseline > "$OUT/compare_seeds.txt" || true
echo
echo "times: training SDUMC $((t_sdumc - start)) s (corpus included), baseline $((t_train - t_sdumc)) s, robustness $((t_robust - t_train)) s"
echo "report: $OUT/robust/report.html  summary: $OUT/robust/summary.json  results: $OUT/robust/results.csv"
