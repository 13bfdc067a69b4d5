#!/usr/bin/env bash
# WavLM checks that need PyTorch at test time (the committed small fixtures are checked by
# build/tests/test_wavlm on its own):
#  1. one WavLM-Large layer at full width (hidden 1024, 16 heads, ffn 4096, 512-channel convs,
#     the 128-tap positional conv in 16 groups, 320 buckets) against the float64 reference;
#  2. the tensor-name mapping: checkpoints of the reference module as users hold them, converted by
#     tools/wavlm2safetensors.py and checked by test_wavlm against the same expectations:
#     Hugging Face names in {"state_dict": ...} with DataParallel's "module." and "wavlm." prefixes
#     and a config.json beside it; a bare state_dict with newer PyTorch's weight-norm names
#     (parametrizations.weight.original0/1) and no configuration (inferred); the original unilm
#     checkpoint layout ({"cfg", "model"} with fairseq names); float16 output; clear errors.
# Prints PASS/FAIL/SKIP lines.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
TEST=$BUILD/tests/test_wavlm
if [ ! -x "$TEST" ]; then echo "FAIL wavlm_live ($TEST is not built)"; exit 0; fi
if ! $PY -c "import torch, numpy" 2>/dev/null; then echo "SKIP wavlm_live (no torch for $PY)"; exit 0; fi
T=$(mktemp -d /tmp/sdumc-wavlm-XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=2

# 1. Full-width layer.
if $PY tests/reference/make_wavlm_fixtures.py --out-dir "$T/full" --configs full_layer >"$T/log" 2>&1; then
  "$TEST" "$T/full" full_layer | sed 's/^PASS wavlm\.parity\./PASS wavlm_live./; s/^FAIL wavlm\.parity\./FAIL wavlm_live./'
else
  cat "$T/log"; echo "FAIL wavlm_live.full_layer (fixture generation failed)"
fi
rm -rf "$T/full"

# 2. Checkpoints of the reference module (the committed fixtures' weights, regenerated from seeds).
$PY - "$T" <<'EOF' >"$T/log" 2>&1 || { cat "$T/log"; echo "FAIL wavlm_live.checkpoints (could not write them)"; exit 0; }
import json, os, sys
import torch
sys.path.insert(0, "tests/reference")
import make_wavlm_fixtures as mk, wavlm_ref as W
T = sys.argv[1]

def module(name):
    cfg, seed = mk.CONFIGS[name][0], mk.CONFIGS[name][1]
    m = W.WavLM(cfg)
    W.random_init(m, seed)
    return cfg, {k: v.detach().float().clone() for k, v in m.state_dict().items()}

# (a) Hugging Face names, prefixes, config.json beside the checkpoint.
cfg, sd = module("tiny_large")
os.makedirs(T + "/hf")
torch.save({"state_dict": {"module.wavlm." + k: v for k, v in sd.items()}, "epoch": 3}, T + "/hf/pytorch_model.bin")
hf_cfg = {k: cfg[k] for k in ["conv_dim", "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm",
                              "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                              "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "num_buckets",
                              "max_bucket_distance", "do_stable_layer_norm", "layer_norm_eps"]}
json.dump(dict(hf_cfg, model_type="wavlm", architectures=["WavLMModel"]), open(T + "/hf/config.json", "w"))
json.dump({"do_normalize": True, "sampling_rate": 16000}, open(T + "/hf/preprocessor_config.json", "w"))

# (b) a bare state_dict, newer weight-norm names, no configuration (tiny_base: inferable).
cfg, sd = module("tiny_base")
sd = {k.replace("conv.weight_g", "conv.parametrizations.weight.original0")
       .replace("conv.weight_v", "conv.parametrizations.weight.original1"): v for k, v in sd.items()}
torch.save(sd, T + "/bare.pt")

# (c) the unilm layout: fairseq names (spelled out here from the unilm WavLM.py module tree), cfg.
cfg, sd = module("tiny_large")
def fairseq(k):
    p = k.split(".")
    if k.startswith("feature_extractor.conv_layers."):
        i, rest = p[2], ".".join(p[3:])
        return {"conv.weight": "feature_extractor.conv_layers.%s.0.weight" % i,
                "layer_norm.weight": "feature_extractor.conv_layers.%s.2.1.weight" % i,
                "layer_norm.bias": "feature_extractor.conv_layers.%s.2.1.bias" % i}[rest]
    if k.startswith("feature_projection.layer_norm."): return "layer_norm." + p[-1]
    if k.startswith("feature_projection.projection."): return "post_extract_proj." + p[-1]
    if k.startswith("encoder.pos_conv_embed.conv."): return "encoder.pos_conv.0." + p[-1]
    if k == "masked_spec_embed": return "mask_emb"
    if k.startswith("encoder.layers."):
        l, rest = p[2], ".".join(p[3:])
        rest = {"attention.gru_rel_pos_const": "self_attn.grep_a",
                "attention.rel_attn_embed.weight": "self_attn.relative_attention_bias.weight"}.get(rest, rest)
        rest = (rest.replace("attention.gru_rel_pos_linear", "self_attn.grep_linear")
                    .replace("attention.", "self_attn.")
                    .replace("feed_forward.intermediate_dense", "fc1").replace("feed_forward.output_dense", "fc2"))
        if rest.startswith("layer_norm."): rest = "self_attn_layer_norm." + rest.split(".")[-1]
        return "encoder.layers.%s.%s" % (l, rest)
    return k
unilm = {fairseq(k): v for k, v in sd.items()}
unilm["label_embs_concat"] = torch.zeros(10, 4)
unilm_cfg = {"extractor_mode": "layer_norm", "encoder_layers": cfg["num_hidden_layers"],
             "encoder_embed_dim": cfg["hidden_size"], "encoder_ffn_embed_dim": cfg["intermediate_size"],
             "encoder_attention_heads": cfg["num_attention_heads"], "layer_norm_first": True,
             "conv_feature_layers": "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2", "conv_bias": False,
             "normalize": True, "conv_pos": cfg["num_conv_pos_embeddings"],
             "conv_pos_groups": cfg["num_conv_pos_embedding_groups"], "relative_position_embedding": True,
             "num_buckets": cfg["num_buckets"], "max_distance": cfg["max_bucket_distance"], "gru_rel_pos": True}
torch.save({"cfg": unilm_cfg, "model": unilm}, T + "/WavLM-Tiny.pt")
torch.save({"cfg": dict(unilm_cfg, gru_rel_pos=False), "model": unilm}, T + "/not_wavlm.pt")
EOF

check() { # name, converted model, config name
  local name=$1 model=$2 cfg=$3
  mkdir -p "$T/$name"
  cp "$model" "$T/$name/$cfg.safetensors"
  cp "tests/fixtures/wavlm/$cfg.expect.safetensors" "$T/$name/"
  if "$TEST" "$T/$name" "$cfg" >"$T/$name/log" 2>&1 && grep -q "^PASS" "$T/$name/log"; then
    echo "PASS wavlm_live.$name"
  else
    cat "$T/$name/log"; echo "FAIL wavlm_live.$name"
  fi
}
convert() { # output, args...
  local out=$1; shift
  $PY tools/wavlm2safetensors.py "$@" "$out" >>"$T/conv.log" 2>&1
}
if convert "$T/hf.safetensors" "$T/hf/pytorch_model.bin"; then check hf_prefixed_with_config "$T/hf.safetensors" tiny_large
else cat "$T/conv.log"; echo "FAIL wavlm_live.hf_prefixed_with_config (conversion)"; fi
if convert "$T/bare.safetensors" "$T/bare.pt"; then check bare_parametrizations_inferred "$T/bare.safetensors" tiny_base
else cat "$T/conv.log"; echo "FAIL wavlm_live.bare_parametrizations_inferred (conversion)"; fi
if convert "$T/unilm.safetensors" "$T/WavLM-Tiny.pt" && grep -q "1 pre-training tensors left out" "$T/conv.log"; then
  check unilm_checkpoint "$T/unilm.safetensors" tiny_large
else cat "$T/conv.log"; echo "FAIL wavlm_live.unilm_checkpoint (conversion)"; fi
# float16: every tensor F16, equal to the float32 file's values rounded.
if convert "$T/hf16.safetensors" "$T/hf/pytorch_model.bin" --dtype f16 && $PY - "$T" <<'EOF'
import sys, numpy as np
sys.path.insert(0, "tools")
import safetensors_np as s
T = sys.argv[1]
raw = open(T + "/hf16.safetensors", "rb").read()
a, meta = s.read(T + "/hf16.safetensors"); b, _ = s.read(T + "/hf.safetensors")
assert b'"F32"' not in raw and set(a) == set(b) and meta["max_bucket_distance"] == "40", meta
for k in a:
    assert np.array_equal(a[k].astype(np.float32), b[k].astype(np.float16).astype(np.float32)), k
EOF
then echo "PASS wavlm_live.float16_output"; else echo "FAIL wavlm_live.float16_output"; fi
# Errors name the file and say what is wrong.
expect_fail() { # name, expected text, args...
  local name=$1 want=$2; shift 2
  if $PY tools/wavlm2safetensors.py "$@" "$T/x.safetensors" >"$T/err" 2>&1; then
    echo "FAIL wavlm_live.$name (conversion succeeded)"
  elif grep -q -- "$want" "$T/err"; then echo "PASS wavlm_live.$name"
  else cat "$T/err"; echo "FAIL wavlm_live.$name (message)"; fi
}
expect_fail convert_not_wavlm "not_wavlm.pt: cfg has no gated relative position bias" "$T/not_wavlm.pt"
expect_fail convert_missing_file "nothing.pt: no such file" "$T/nothing.pt"
exit 0
