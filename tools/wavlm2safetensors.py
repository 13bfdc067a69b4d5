"""Converts a PyTorch WavLM checkpoint to the safetensors file `sdumc audio-features` reads.

    /usr/bin/python3 tools/wavlm2safetensors.py IN OUT.safetensors [--config config.json] [--dtype f32|f16]

IN is one of:
  - a Hugging Face checkpoint (pytorch_model.bin of WavLMModel or a WavLMFor... head, or a dict
    holding it under 'state_dict' or 'model'); a DataParallel 'module.' prefix is stripped, the
    'wavlm.' prefix is kept (sdumc strips it);
  - the original checkpoint of microsoft/unilm (WavLM-Large.pt, WavLM-Base+.pt): a dict with 'cfg'
    and 'model' holding fairseq names, which are renamed to Hugging Face's;
  - a .safetensors file with Hugging Face names (to add the configuration as metadata).
The configuration goes into __metadata__ under Hugging Face's config.json names: from --config,
else from config.json (and do_normalize from preprocessor_config.json) next to IN, else from the
unilm checkpoint's cfg. Without any, sdumc infers it from the tensor shapes (docs/WAVLM.md).
Tensors are written as float32 (or float16 with --dtype f16, half the size; sdumc computes in
float32 either way). Exit status 0 on success, 1 with a message naming the file on any error.
"""
import argparse
import ast
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pt2safetensors import ConvertError, _load, extract_state_dict  # noqa: E402
from safetensors_np import read as st_read  # noqa: E402
from safetensors_np import write as st_write  # noqa: E402

# fairseq/unilm name -> Hugging Face name (regular expressions, first match wins).
FAIRSEQ_TO_HF = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)$", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"^layer_norm\.(weight|bias)$", r"feature_projection.layer_norm.\1"),
    (r"^post_extract_proj\.(weight|bias)$", r"feature_projection.projection.\1"),
    (r"^encoder\.pos_conv\.0\.(weight_g|weight_v|bias)$", r"encoder.pos_conv_embed.conv.\1"),
    (r"^encoder\.layer_norm\.(weight|bias)$", r"encoder.layer_norm.\1"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)$", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)$", r"encoder.layers.\1.attention.gru_rel_pos_linear.\2"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.grep_a$", r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight$", r"encoder.layers.\1.attention.rel_attn_embed.weight"),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)$", r"encoder.layers.\1.layer_norm.\2"),
    (r"^encoder\.layers\.(\d+)\.fc1\.(weight|bias)$", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.fc2\.(weight|bias)$", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"^mask_emb$", r"masked_spec_embed"),
]

HF_KEYS = ["conv_dim", "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm", "hidden_size",
           "num_hidden_layers", "num_attention_heads", "intermediate_size", "num_conv_pos_embeddings",
           "num_conv_pos_embedding_groups", "num_buckets", "max_bucket_distance", "do_stable_layer_norm",
           "layer_norm_eps", "num_feat_extract_layers"]


def _safe_eval(text):
    """Evaluates a conv_feature_layers string such as "[(512,10,5)] + [(512,3,2)] * 4": lists,
    tuples, integers, + and * only."""
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            a, b = ev(node.left), ev(node.right)
            return a + b if isinstance(node.op, ast.Add) else a * b
        raise ValueError("unexpected element %s" % type(node).__name__)
    return ev(ast.parse(text, mode="eval"))


def meta_from_hf(cfg, do_normalize=None):
    meta = {}
    for k in HF_KEYS:
        if k in cfg:
            v = cfg[k]
            meta[k] = json.dumps(v) if isinstance(v, (list, bool)) else str(v)
    if do_normalize is not None:
        meta["normalize"] = json.dumps(bool(do_normalize))
    return meta


def meta_from_unilm(cfg, path):
    """The unilm WavLMConfig (a dict) as Hugging Face metadata."""
    if not cfg.get("relative_position_embedding", False) or not cfg.get("gru_rel_pos", False):
        raise ConvertError(f"{path}: cfg has no gated relative position bias "
                           "(relative_position_embedding / gru_rel_pos false): not a WavLM checkpoint")
    try:
        layers = _safe_eval(cfg.get("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"))
    except (ValueError, SyntaxError) as e:
        raise ConvertError(f"{path}: cfg conv_feature_layers is not understood: {e}") from None
    mode = cfg.get("extractor_mode", "default")
    hf = {"conv_dim": [l[0] for l in layers], "conv_kernel": [l[1] for l in layers],
          "conv_stride": [l[2] for l in layers], "conv_bias": bool(cfg.get("conv_bias", False)),
          "feat_extract_norm": "layer" if mode == "layer_norm" else "group",
          "do_stable_layer_norm": bool(cfg.get("layer_norm_first", False)),
          "num_buckets": cfg.get("num_buckets", 320), "max_bucket_distance": cfg.get("max_distance", 1280),
          "num_hidden_layers": cfg.get("encoder_layers", 12), "hidden_size": cfg.get("encoder_embed_dim", 768),
          "num_attention_heads": cfg.get("encoder_attention_heads", 12),
          "intermediate_size": cfg.get("encoder_ffn_embed_dim", 3072),
          "num_conv_pos_embeddings": cfg.get("conv_pos", 128),
          "num_conv_pos_embedding_groups": cfg.get("conv_pos_groups", 16)}
    return meta_from_hf(hf, cfg.get("normalize", False))


def rename_fairseq(state, path):
    out, dropped = {}, 0
    for name, value in state.items():
        for pat, rep in FAIRSEQ_TO_HF:
            if re.match(pat, name):
                out[re.sub(pat, rep, name)] = value
                break
        else:
            dropped += 1  # label_embs_concat, final_proj, ...: not part of the encoder
    if "feature_projection.projection.weight" not in out:
        raise ConvertError(f"{path}: no post_extract_proj.weight: not a WavLM checkpoint in fairseq naming")
    return out, dropped


def convert(src, dst, config=None, dtype="f32"):
    meta = {}
    if src.endswith(".safetensors"):
        if not os.path.isfile(src):
            raise ConvertError(f"{src}: no such file")
        try:
            tensors, meta = st_read(src)
        except (ValueError, OSError) as e:
            raise ConvertError(f"{src}: {e}") from None
        dropped = 0
    else:
        obj = _load(src)
        if isinstance(obj, dict) and isinstance(obj.get("cfg"), dict) and isinstance(obj.get("model"), dict):
            state, _ = extract_state_dict(obj["model"], src)
            state, dropped = rename_fairseq(state, src)
            meta = meta_from_unilm(obj["cfg"], src)
        else:
            state, _ = extract_state_dict(obj, src)
            dropped = 0
        tensors = {k: v.detach().to("cpu").double().numpy() for k, v in state.items()}
    if not any(k.split("wavlm.")[-1].startswith("feature_extractor.conv_layers.0.conv.weight") for k in tensors):
        raise ConvertError(f"{src}: no feature_extractor.conv_layers.0.conv.weight: not a WavLM model "
                           "(Hugging Face or fairseq naming)")
    if not any("gru_rel_pos_const" in k for k in tensors):
        raise ConvertError(f"{src}: no gru_rel_pos_const: a wav2vec2 or HuBERT model, not WavLM")
    cfg_path = config or os.path.join(os.path.dirname(os.path.abspath(src)), "config.json")
    if config or os.path.isfile(cfg_path):
        try:
            with open(cfg_path) as f:
                hf_cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise ConvertError(f"{cfg_path}: cannot read the configuration: {e}") from None
        norm = None
        pre = os.path.join(os.path.dirname(os.path.abspath(cfg_path)), "preprocessor_config.json")
        if os.path.isfile(pre):
            with open(pre) as f:
                norm = json.load(f).get("do_normalize")
        meta.update(meta_from_hf(hf_cfg, norm))
    np_dtype = np.float16 if dtype == "f16" else np.float32
    out = {k: np.ascontiguousarray(v, dtype=np_dtype) for k, v in tensors.items()}
    meta = dict(meta, source="wavlm2safetensors", source_file=os.path.basename(src))
    try:
        st_write(dst, out, meta)
    except OSError as e:
        raise ConvertError(f"{dst}: cannot write: {e.strerror}") from None
    return len(out), dropped


def main(argv):
    ap = argparse.ArgumentParser(description="Converts a PyTorch WavLM checkpoint to safetensors.")
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--config", help="Hugging Face config.json")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32")
    a = ap.parse_args(argv[1:])
    try:
        n, dropped = convert(a.src, a.dst, a.config, a.dtype)
    except ConvertError as e:
        print(f"wavlm2safetensors: error: {e}", file=sys.stderr)
        return 1
    extra = f" ({dropped} pre-training tensors left out)" if dropped else ""
    print(f"wavlm2safetensors: wrote {n} tensors to {a.dst}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
