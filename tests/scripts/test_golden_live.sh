#!/usr/bin/env bash
# Live golden checks against the PyTorch reference (needs Debian's python3-torch):
#  1. a full-size fixture (hidden 256, the paper's general dim) written now by make_golden.py,
#     checked by the C golden test (every output, loss term, gradient and one Adam step);
#  2. a PyTorch checkpoint of the reference module (torch.save, DataParallel "module." prefix,
#     {"state_dict": ...}) converted by tools/pt2safetensors.py --mia on (the fixture's model uses
#     MIA; without --mia a converted file runs with MIA off, tests/scripts/test_foreign_checkpoint.sh),
#     loaded by sdumc with its dims and hidden from the converter's metadata, predicting what PyTorch
#     predicts.
set -u
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
BUILD=${BUILD:-build}
if ! "$PY" -c "import torch, numpy" >/dev/null 2>&1; then
  echo "SKIP golden_live: $PY cannot import torch and numpy"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1

if "$PY" tests/reference/make_golden.py --hidden 256 --dims 40,96,24 --configs mia1_mask1,mia0_mask0 \
     --out-dir "$tmp/full" >"$tmp/log" 2>&1; then
  "$BUILD/tests/test_golden" "$tmp/full/golden_mia1_mask1.safetensors" "$tmp/full/golden_mia0_mask0.safetensors" \
    | sed 's/^PASS golden\./PASS golden_live.hidden256./; s/^FAIL golden\./FAIL golden_live.hidden256./'
else
  cat "$tmp/log"; echo "FAIL golden_live.hidden256 (fixture generation failed)"
fi

# A checkpoint as PyTorch users hold it, from the parameters of a fresh fixture.
"$PY" tests/reference/make_golden.py --configs mia1_mask1 --out-dir "$tmp/small" >"$tmp/log" 2>&1 &&
"$PY" - "$tmp" <<'PYEOF' >>"$tmp/log" 2>&1
import sys, torch
sys.path.insert(0, "tools")
import safetensors_np
tmp = sys.argv[1]
tensors, meta = safetensors_np.read(tmp + "/small/golden_mia1_mask1.safetensors")
sd = {"module." + k[len("param."):]: torch.tensor(v) for k, v in tensors.items() if k.startswith("param.")}
torch.save({"state_dict": sd, "epoch": 3}, tmp + "/ckpt.pt")
PYEOF
if [ $? -eq 0 ] && "$PY" tools/pt2safetensors.py "$tmp/ckpt.pt" "$tmp/converted.safetensors" --mia on >>"$tmp/log" 2>&1; then
  "$BUILD/tests/test_golden" --model "$tmp/converted.safetensors" "$tmp/small/golden_mia1_mask1.safetensors" \
    | sed 's/^PASS golden\./PASS golden_live.pt2safetensors./; s/^FAIL golden\./FAIL golden_live.pt2safetensors./'
else
  cat "$tmp/log"; echo "FAIL golden_live.pt2safetensors (conversion failed)"
fi
