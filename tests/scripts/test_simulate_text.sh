#!/usr/bin/env bash
# End to end: `sdumc simulate-text` on the tiny GGUF model of tests/fixtures/llm/ with a random
# projector and random "WavLM" features, against the Python reference (tests/reference/llama_ref.py:
# projector + HF-semantics beam search + hidden-state sum), then resume, partial redo and the
# clear errors (wrong feature dim, projector/LLM dim mismatch, non-LLaMA model).
# Prints PASS/FAIL/SKIP lines.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=$BUILD/sdumc
PY=/usr/bin/python3
if [ ! -x "$BIN" ]; then echo "FAIL simulate_text_build ($BIN missing)"; exit 1; fi
if ! $PY -c "import torch, numpy" 2>/dev/null; then echo "SKIP simulate_text (no torch for $PY)"; exit 0; fi
T=$(mktemp -d /tmp/sdumc-simtext-XXXXXX)
trap 'rm -rf "$T"' EXIT
MODEL=tests/fixtures/llm/tiny_f32.gguf

# Inputs: projector (Df = 16, k = 5, hidden 32, out 64) as safetensors; 3 utterances of T = 23, 40, 12
# frames (23 and 12 are not multiples of 5); a wrong-dim file in another folder; a 48-out projector.
$PY - "$T" <<'EOF' || { echo "FAIL simulate_text_inputs"; exit 1; }
import json, struct, sys
import numpy as np
T = sys.argv[1]
def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
rng = np.random.default_rng(5)
P = {"encoder_projector.linear1.weight": rng.standard_normal((32, 80)) / 9,
     "encoder_projector.linear1.bias": rng.standard_normal(32) * 0.1,
     "encoder_projector.linear2.weight": rng.standard_normal((64, 32)) / 5,
     "encoder_projector.linear2.bias": rng.standard_normal(64) * 0.1}
st_write(T + "/proj.safetensors", P)
st_write(T + "/proj48.safetensors", {**P, "encoder_projector.linear2.weight": rng.standard_normal((48, 32)),
                                     "encoder_projector.linear2.bias": np.zeros(48)})
import os
os.makedirs(T + "/wavlm"); os.makedirs(T + "/wavlm_bad")
for name, n in [("utt_a", 23), ("utt_b", 40), ("utt_c", 12)]:
    np.save(T + "/wavlm/%s.npy" % name, rng.standard_normal((n, 16)).astype(np.float16))
np.save(T + "/wavlm_bad/utt_x.npy", rng.standard_normal((20, 12)).astype(np.float32))
EOF

ARGS=(--llm "$MODEL" --projector "$T/proj.safetensors" --wavlm "$T/wavlm" --max-new-tokens 12 --threads 2 --exact)

# 1. Beam search (4), slot-0 features, against the reference: --exact (float32 activations and KV
# cache) against the float64 reference, then the default (llama.cpp's arithmetic: float16 KV cache,
# queries and attention weights rounded to float16; F32 weights keep float32 activations) against
# the reference emulating it.
for mode in exact default; do
if [ $mode = exact ]; then OUT=$T/out; MARGS=("${ARGS[@]}"); else OUT=$T/out_default; MARGS=("${ARGS[@]:0:${#ARGS[@]}-1}"); fi
if "$BIN" simulate-text "${MARGS[@]}" --out "$OUT" 2>"$T/log1"; then
  if $PY - "$T" "$MODEL" "$OUT" "$mode" <<'EOF'
import csv, sys
import numpy as np
sys.path.insert(0, "tests/reference")
import llama_ref as ref, make_llm_fixtures as mk
T, model, out, mode = sys.argv[1:5]
fw = {} if mode == "exact" else dict(act="f32", kv16=True)
vocab = mk.build_vocab(); tok = ref.Tokenizer(*vocab)
rng = np.random.default_rng(1234)
W = ref.random_weights(mk.CFG, rng, eos_boost=(2, 2.0))   # the weights tiny_f32.gguf holds
import struct, json
def st_read(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}
P = st_read(T + "/proj.safetensors")
pre = "encoder_projector."
rows = {r["name"]: r["text"] for r in csv.DictReader(open(out + "/transcripts.csv", newline=""))}
worst = 0
for name in ["utt_a", "utt_b", "utt_c"]:
    f = np.load(T + "/wavlm/%s.npy" % name).astype(np.float32)
    sp = ref.project(f, P[pre + "linear1.weight"], P[pre + "linear1.bias"], P[pre + "linear2.weight"], P[pre + "linear2.bias"])
    assert sp.shape[0] == f.shape[0] // 5
    prefix = np.concatenate([sp, W["embed"][tok.encode(mk.PROMPT)]], axis=0)
    g = ref.generate(mk.CFG, W, prefix, num_beams=4, max_new_tokens=12, **fw)
    got = np.load(out + "/%s.npy" % name)
    assert got.dtype == np.float16, got.dtype
    assert got.shape == g["slot0"].shape, (name, got.shape, g["slot0"].shape)
    want = g["slot0"].astype(np.float16).astype(np.float32)
    err = np.abs(got.astype(np.float32) - want).max() / np.abs(want).max()
    worst = max(worst, err)
    text = tok.decode(g["tokens"]).decode("utf-8", "replace")
    assert rows[name] == text, (name, rows[name], text)
print("  %s: max frame error (scaled, float16 output): %.2e" % (mode, worst))
assert worst < 2e-3, worst
EOF
  then echo "PASS simulate_text_matches_reference_$mode"; else echo "FAIL simulate_text_matches_reference_$mode"; cat "$T/log1"; fi
else
  echo "FAIL simulate_text_run_$mode"; cat "$T/log1"
fi
done
grep -q '\[3/3\] utt_c' "$T/log1" && echo "PASS simulate_text_progress" || echo "FAIL simulate_text_progress"
ls "$T/out" | grep -q '\.tmp' && echo "FAIL simulate_text_no_temporaries" || echo "PASS simulate_text_no_temporaries"

# 2. Resume: a second run writes nothing; after deleting one output only that one is redone.
before=$(stat -c %Y.%s "$T/out/utt_a.npy" "$T/out/utt_b.npy" | tr '\n' ' ')
sleep 1
"$BIN" simulate-text "${ARGS[@]}" --out "$T/out" 2>"$T/log2"
after=$(stat -c %Y.%s "$T/out/utt_a.npy" "$T/out/utt_b.npy" | tr '\n' ' ')
if grep -q "0 written, 3 already done" "$T/log2" && [ "$before" = "$after" ]; then
  echo "PASS simulate_text_resume_skips"; else echo "FAIL simulate_text_resume_skips"; cat "$T/log2"; fi
cp "$T/out/utt_b.npy" "$T/utt_b.first"
rm "$T/out/utt_b.npy"
"$BIN" simulate-text "${ARGS[@]}" --out "$T/out" 2>"$T/log3"
if grep -q "1 written, 2 already done" "$T/log3" && cmp -s "$T/out/utt_b.npy" "$T/utt_b.first" &&
   [ "$(grep -c '^"\?utt_' "$T/out/transcripts.csv")" = 3 ]; then
  echo "PASS simulate_text_resume_redoes_missing"; else echo "FAIL simulate_text_resume_redoes_missing"; cat "$T/log3"; fi

# 3. Greedy and best-beam options run and give frames of the hidden size.
if "$BIN" simulate-text "${ARGS[@]}" --greedy --out "$T/greedy" 2>"$T/log4" &&
   "$BIN" simulate-text "${ARGS[@]}" --features best --out "$T/best" 2>>"$T/log4" &&
   $PY -c "
import numpy as np, sys
for d in ('greedy', 'best'):
    a = np.load('$T/%s/utt_b.npy' % d); assert a.ndim == 2 and a.shape[1] == 64 and a.shape[0] >= 1, a.shape
"; then echo "PASS simulate_text_greedy_and_best"; else echo "FAIL simulate_text_greedy_and_best"; cat "$T/log4"; fi

# 4. Clear errors.
expect_error() { # name, expected message part, args...
  local name=$1 want=$2; shift 2
  "$BIN" simulate-text "$@" 2>"$T/err" >/dev/null
  local rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$want" "$T/err"; then echo "PASS $name"
  else echo "FAIL $name (exit $rc)"; cat "$T/err"; fi
}
expect_error simulate_text_wrong_feature_dim "features of dim 12, the projector expects 16" \
  --llm "$MODEL" --projector "$T/proj.safetensors" --wavlm "$T/wavlm_bad" --out "$T/o2"
expect_error simulate_text_projector_mismatch "projector output dim 48 does not match the LLM's embedding length 64" \
  --llm "$MODEL" --projector "$T/proj48.safetensors" --wavlm "$T/wavlm" --out "$T/o3"
expect_error simulate_text_not_llama "architecture 'gpt2' is not supported" \
  --llm tests/fixtures/llm/not_llama.gguf --projector "$T/proj.safetensors" --wavlm "$T/wavlm" --out "$T/o4"
expect_error simulate_text_missing_args "are required" --llm "$MODEL"
[ ! -e "$T/o2/utt_x.npy" ] && echo "PASS simulate_text_no_output_on_error" || echo "FAIL simulate_text_no_output_on_error"
exit 0
