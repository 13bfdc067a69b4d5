#!/usr/bin/env bash
# Features as users have them (issue 21), end to end on `sdumc synth --scales raw` (field-like
# scales, -inf in an audio dim at pauses):
#  - -inf is a validation problem, read as 0 and counted with --nonfinite zero;
#  - validate and train report the feature scales and warn (train only with --normalize none);
#  - train standardises by default; the model file (standardisation folded in) loads into the
#    reference PyTorch module with strict loading and predicts, from raw features, what sdumc
#    predict and predict-one predict (both flows, each utterance alone, <= 1e-4 relative);
#  - --preset auto chooses batch and lr for a small corpus and says so on the console, in the log
#    and in the report; --normalize standard with --mask off is refused.
# (Fold equivalence, statistics and bit-identical resume: tests/test_norm.c.)
set -u
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/sdumc
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "PASS normalize.$1"; }
bad() { echo "FAIL normalize.$1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

"$BIN" synth --out "$tmp/d" --n 150 --seed 9 --scales raw >/dev/null || { bad synth; exit 0; }
out=$("$BIN" validate --data "$tmp/d" 2>&1); rc=$?
check inf_is_a_problem bash -c "[ $rc -eq 1 ] && grep -q '/audio/.*: Inf at frame .*, column 1' <<<\"\$1\"" _ "$out"
"$BIN" validate --data "$tmp/d" --nonfinite zero >"$tmp/v.out" 2>"$tmp/v.err"
check nonfinite_zero_counts grep -q "ok, 150 utterances .*, [0-9]* NaN/Inf audio values read as 0" "$tmp/v.out"
check validate_scales grep -q "^  audio  std .* .. .* (.*x), |x| up to" "$tmp/v.out"
check validate_scale_warning grep -q "warning: audio features: .*sdumc train standardises inputs per dimension by default" "$tmp/v.err"

small=(--data "$tmp/d" --nonfinite zero --hidden 16 --epochs 2 --batch-size 16 --lr 1e-3 --threads 1)
"$BIN" train "${small[@]}" --out "$tmp/m.safetensors" >/dev/null 2>"$tmp/t.err" || cat "$tmp/t.err"
check train_standardises grep -q "inputs standardised per dimension (training-split statistics), folded into the saved model" "$tmp/t.err"
check train_no_warning_when_standardising bash -c "! grep -q 'warning: audio' '$tmp/t.err'"
check model_metadata $PY -c "
import sys; sys.path.insert(0, 'tools'); import safetensors_np
t, meta = safetensors_np.read('$tmp/m.safetensors')
assert meta['normalize'] == 'standard' and len(meta['norm_std_audio'].split(',')) == 32, meta.keys()"
"$BIN" train "${small[@]}" --out "$tmp/none.safetensors" --normalize none >/dev/null 2>"$tmp/none.err"
check train_warns_without_normalisation grep -q "warning: audio features: .*With --normalize none the network sees them as they are" "$tmp/none.err"
out=$("$BIN" train "${small[@]}" --out "$tmp/x.safetensors" --mask off --normalize standard 2>&1); rc=$?
check mask_off_refused bash -c "[ $rc -ne 0 ] && grep -q 'needs --mask on' <<<\"\$1\"" _ "$out"

# The folded file in the reference module (strict loading), on raw features with -inf read as 0.
for flow in full missing; do
  "$BIN" predict --model "$tmp/m.safetensors" --data "$tmp/d" --nonfinite zero --flow $flow --batch-size 1 \
    --out "$tmp/p_$flow.csv" 2>/dev/null
done
# predict-one takes finite features (the C API refuses NaN/Inf): an utterance without -inf.
name=$($PY -c "
import csv, numpy as np
for r in csv.DictReader(open('$tmp/p_full.csv')):
    if np.isfinite(np.load('$tmp/d/audio/%s.npy' % r['name'])).all(): print(r['name']); break")
"$BIN" predict-one --model "$tmp/m.safetensors" --audio "$tmp/d/audio/$name.npy" --text "$tmp/d/text/$name.npy" \
  --video "$tmp/d/video/$name.npy" --json >"$tmp/one.json" 2>"$tmp/one.err"
if "$PY" -c "import torch" 2>/dev/null; then
  check reference_module_strict_load "$PY" - "$tmp" <<'EOF'
import csv, sys
import numpy as np, torch
sys.path.insert(0, "tools"); sys.path.insert(0, "tests/reference")
import safetensors_np
from sdumc_ref import SDUMCRef
tmp = sys.argv[1]
tensors, meta = safetensors_np.read(tmp + "/m.safetensors")
dims = [int(meta[k]) for k in ("dim_audio", "dim_text", "dim_video")]
model = SDUMCRef(*dims, hidden=int(meta["hidden"])).double().eval()
model.load_state_dict({k: torch.tensor(v).double() for k, v in tensors.items()}, strict=True)
def load(sub, name):
    x = np.load("%s/d/%s/%s.npy" % (tmp, sub, name)).astype(np.float64)
    x[~np.isfinite(x)] = 0.0  # --nonfinite zero
    return torch.from_numpy(x)[None]
worst = 0.0
for flow, sub in (("full", "text"), ("missing", "text_sim")):
    for r in csv.DictReader(open("%s/p_%s.csv" % (tmp, flow))):
        a, t, v = load("audio", r["name"]), load(sub, r["name"]), load("video", r["name"])
        L = lambda x: torch.tensor([x.shape[1]])
        with torch.no_grad():
            ref = model(a, L(a), t, L(t), v, L(v), missing=flow == "missing", mia=meta["mia"] == "1")[0].item()
        worst = max(worst, abs(ref - float(r["prediction"])) / max(abs(ref), 1e-3))
print("  reference module (strict load) vs sdumc predict on raw features: worst %.2g relative" % worst)
sys.exit(0 if worst <= 1e-4 else 1)
EOF
else
  echo "SKIP normalize.reference_module_strict_load (no torch for $PY)"
fi
check predict_one_equals_predict $PY -c "
import csv, json
one = json.load(open('$tmp/one.json'))
row = next(r for r in csv.DictReader(open('$tmp/p_full.csv')) if r['name'] == '$name')
p = float(row['prediction']); q = float(one['score'])
assert abs(p - q) <= 1e-5 * max(1.0, abs(p)), (p, q)"

# --preset auto on a small corpus: the choice on the console, in the log and in the report.
"$BIN" train --data "$tmp/d" --nonfinite zero --hidden 16 --epochs 6 --threads 1 --preset auto \
  --out "$tmp/auto.safetensors" >/dev/null 2>"$tmp/auto.err" || cat "$tmp/auto.err"
check auto_printed grep -q "preset auto: [0-9]* train utterances; the paper's batch 128 and lr 0.0001 would take [0-9]* optimiser steps in all, so batch 8 and lr 0.001" "$tmp/auto.err"
check auto_logged bash -c "head -1 '$tmp/auto.safetensors.log.jsonl' | grep -q '\"preset_auto\": {\"batch_size\": 8, \"lr\": 0.00100000005'"
check auto_in_report grep -q "preset auto chose batch 8 and lr 0.001" "$tmp/auto.safetensors.report.html"
check auto_metadata $PY -c "
import sys; sys.path.insert(0, 'tools'); import safetensors_np
assert safetensors_np.read('$tmp/auto.safetensors')[1]['preset'] == 'auto'"
# Resuming an auto run (one more epoch): the run's batch and lr, the state's statistics checked.
"$BIN" train --data "$tmp/d" --nonfinite zero --hidden 16 --epochs 7 --threads 1 --preset auto \
  --out "$tmp/auto.safetensors" --resume "$tmp/auto.safetensors.state" >/dev/null 2>"$tmp/resume.err" || cat "$tmp/resume.err"
check auto_resumed grep -q "preset auto: the run's batch 8 and lr 0.001" "$tmp/resume.err"
check auto_resumed_epochs bash -c "grep -q '^epoch 7/7' '$tmp/resume.err' && ! grep -q '^epoch 6/7' '$tmp/resume.err'"
out=$("$BIN" train --data "$tmp/d" --nonfinite zero --hidden 16 --epochs 8 --threads 1 --preset auto --normalize none \
  --out "$tmp/auto.safetensors" --resume "$tmp/auto.safetensors.state" 2>&1); rc=$?
check resume_other_normalize_refused bash -c "[ $rc -ne 0 ] && grep -q 'normalize: standard when the run started, none now' <<<\"\$1\"" _ "$out"
