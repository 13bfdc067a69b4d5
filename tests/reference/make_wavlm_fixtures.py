"""Writes WavLM parity fixtures from the float64 reference (wavlm_ref.py) for tests/test_wavlm.c.

For each configuration NAME: NAME.safetensors (the model under Hugging Face names, with or without
metadata, see CONFIGS) and NAME.expect.safetensors:
  wav.<i>            [n_i]      float32 input waveforms (raw; the C test normalises them when the
                                model does, as the reference does here)
  hidden.<i>.<l>     [T_i, D]   hidden_states[l] of the reference, l = 0..L
  chunked.wav        [n]        one longer waveform, and
  chunked.<l>        [F, D]     its layers l = L // 2 and L through the chunking policy
metadata: n_wavs, chunk_seconds, overlap_seconds, chunked_layers.

    /usr/bin/python3 tests/reference/make_wavlm_fixtures.py --out-dir tests/fixtures/wavlm \
        --configs tiny_large,tiny_base,odd_conv
    /usr/bin/python3 tests/reference/make_wavlm_fixtures.py --out-dir /tmp/x --configs full_layer

The committed fixtures (tests/fixtures/wavlm) are the first three; full_layer (one WavLM-Large
layer at full width, 104 MB) is written at test time by tests/scripts/test_wavlm.sh.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import safetensors_np  # noqa: E402
import wavlm_ref as W  # noqa: E402

# name: (config, seed, waveform lengths, metadata written?, chunked length, chunk s, overlap s)
CONFIGS = {
    # WavLM-Large's structure at toy width: layer-norm conv, pre-LN, waveform normalisation; a small
    # bucket table (32 buckets, max distance 40) so the logarithmic and saturated buckets occur.
    "tiny_large": (W.config(conv_dim=[16] * 7, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                            intermediate_size=64, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=4, num_buckets=32, max_bucket_distance=40),
                   11, [400, 1234, 3277, 20319], True, 40019, 0.5, 0.15),
    # WavLM-Base+'s structure: group-norm conv with biases, post-LN, no waveform normalisation, an
    # odd positional kernel (nothing dropped); no metadata: everything inferred from the shapes.
    "tiny_base": (W.config(conv_dim=[12] * 7, conv_bias=True, feat_extract_norm="group", hidden_size=24,
                           num_hidden_layers=2, num_attention_heads=3, intermediate_size=48,
                           num_conv_pos_embeddings=15, num_conv_pos_embedding_groups=3,
                           do_stable_layer_norm=False, normalize=False),
                  12, [401, 5000, 27000], False, 30001, 0.4, 0.1),
    # A conv stack other than WavLM's (strides from metadata), channels changing between layers.
    "odd_conv": (W.config(conv_dim=[8, 12, 10], conv_kernel=[6, 3, 2], conv_stride=[3, 2, 2],
                          hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, num_buckets=16,
                          max_bucket_distance=20),
                 13, [18, 100, 999], True, 2500, 0.05, 0.01),
    # One WavLM-Large layer at full width (hidden 1024, 16 heads, ffn 4096, 512-channel convs,
    # kernel-128 positional conv in 16 groups, 320 buckets / 800).
    "full_layer": (W.config(num_hidden_layers=1), 14, [7777, 40017], True, 0, 0, 0),
}


def waveform(n, rng):
    """Speech-like test signal: a few harmonics with a drifting pitch, noise, amplitude ~0.1."""
    t = np.arange(n) / 16000.0
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000.0
    x = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 6))
    x = 0.08 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(n)
    return x.astype(np.float32)


def write(name, out_dir):
    cfg, seed, lengths, with_meta, chunk_n, chunk_s, overlap_s = CONFIGS[name]
    torch.manual_seed(seed)
    model = W.WavLM(cfg)
    W.random_init(model, seed)
    rng = np.random.default_rng(seed)
    meta = W.hf_metadata(cfg) if with_meta else None
    safetensors_np.write(os.path.join(out_dir, name + ".safetensors"), W.hf_state_dict(model), meta)
    L = cfg["num_hidden_layers"]
    out = {}
    with torch.no_grad():
        for i, n in enumerate(lengths):
            wav = waveform(n, rng)
            out["wav.%d" % i] = wav
            x = torch.tensor(wav, dtype=torch.float64)
            if cfg["normalize"]:
                x = W.normalize_waveform(x)
            for l, h in enumerate(model.hidden_states(x)):
                out["hidden.%d.%d" % (i, l)] = h.numpy().astype(np.float32)
        emeta = {"n_wavs": str(len(lengths)), "n_layers": str(L)}
        if chunk_n:
            wav = waveform(chunk_n, rng)
            layers = sorted({L // 2, L})
            res = W.extract(model, torch.tensor(wav, dtype=torch.float64), layers, chunk_s, overlap_s)
            out["chunked.wav"] = wav
            for l in layers:
                out["chunked.%d" % l] = res[l].numpy().astype(np.float32)
            windows = len(W.plan(cfg, chunk_n, chunk_s, overlap_s))
            emeta.update(chunk_seconds=repr(chunk_s), overlap_seconds=repr(overlap_s),
                         chunked_layers=",".join(map(str, layers)), chunked_windows=str(windows))
    safetensors_np.write(os.path.join(out_dir, name + ".expect.safetensors"), out, emeta)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--configs", default="tiny_large,tiny_base,odd_conv")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for name in a.configs.split(","):
        write(name, a.out_dir)
        print("wrote %s/%s.safetensors and .expect.safetensors" % (a.out_dir, name))


if __name__ == "__main__":
    main()
