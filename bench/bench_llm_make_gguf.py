"""Writes a LLaMA-7B-shaped GGUF with random weights for the LLM benchmark (no real model needed).

  /usr/bin/python3 bench/bench_llm_make_gguf.py OUT.gguf [--type q8_0|q4_0|f16|f32] [--layers N]

Shape of Vicuna-7B v1.5 / LLaMA-2-7B: hidden 4096, 32 blocks, 32 heads (no GQA), ff 11008, vocab
32000, context 4096; about 7.2 GB in Q8_0, 3.8 GB in Q4_0, 13.5 GB in F16, 27 GB in F32. --layers writes fewer
blocks (to extrapolate on a small disk). Scales are chosen so activations stay finite; the numbers
mean nothing. llama.cpp reads these files too (bench/bench_llm.sh runs both on them).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import gguf_writer as gw  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--type", default="q8_0", choices=["q8_0", "q4_0", "f16", "f32"])
ap.add_argument("--layers", type=int, default=32)
a = ap.parse_args()
D, F, V, H = 4096, 11008, 32000, 32
rng = np.random.default_rng(0)
TTYPE = {"q8_0": gw.T_Q8_0, "q4_0": gw.T_Q4_0, "f16": gw.T_F16, "f32": gw.T_F32}[a.type]
FILE_TYPE = {"q8_0": 7, "q4_0": 2, "f16": 1, "f32": 0}[a.type]


def random_blocks(rows, cols):
    """(bytes, producer) of a random [rows, cols] matrix in the chosen type."""
    if a.type in ("f16", "f32"):
        ft = np.float16 if a.type == "f16" else np.float32

        def produce():
            return (rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)).astype(ft).tobytes()
        return rows * cols * np.dtype(ft).itemsize, produce
    nb = rows * cols // 32
    size = 34 if a.type == "q8_0" else 18

    def produce():
        blk = np.empty((nb, size), dtype=np.uint8)
        scale = 1.0 / (40.0 * np.sqrt(cols)) if a.type == "q8_0" else 1.0 / (3.0 * np.sqrt(cols))
        blk[:, :2] = np.full(nb, scale, dtype=np.float16).view(np.uint8).reshape(-1, 2)
        if a.type == "q8_0":
            blk[:, 2:] = rng.integers(-127, 128, size=(nb, 32), dtype=np.int8).view(np.uint8)
        else:
            blk[:, 2:] = rng.integers(0, 256, size=(nb, 16), dtype=np.uint8)
        return blk.tobytes()
    return nb * size, produce


w = gw.GGUFWriter(a.out)
w.add_string("general.architecture", "llama")
w.add_string("general.name", "random-7b-shape")
w.add_u32("general.file_type", FILE_TYPE)
for k, v in [("context_length", 4096), ("embedding_length", D), ("block_count", a.layers),
             ("feed_forward_length", F), ("rope.dimension_count", D // H),
             ("attention.head_count", H), ("attention.head_count_kv", H)]:
    w.add_u32("llama." + k, v)
w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
w.add_f32("llama.rope.freq_base", 10000.0)
pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
pieces += ["\u2581tok%d" % i for i in range(V - len(pieces))]
w.add_string("tokenizer.ggml.model", "llama")
w.add_array("tokenizer.ggml.tokens", gw.STRING, pieces)
w.add_array("tokenizer.ggml.scores", gw.F32, [0.0] * V)
w.add_array("tokenizer.ggml.token_type", gw.I32, [2, 3, 3] + [6] * 256 + [1] * (V - 259))


def mat(name, rows, cols):
    n, f = random_blocks(rows, cols)
    w.add_tensor_lazy(name, (rows, cols), TTYPE, n, f)


mat("token_embd.weight", V, D)
for l in range(a.layers):
    b = "blk.%d." % l
    w.add_tensor(b + "attn_norm.weight", np.ones(D, np.float32), gw.T_F32)
    w.add_tensor(b + "ffn_norm.weight", np.ones(D, np.float32), gw.T_F32)
    for n, r, c in [("attn_q", D, D), ("attn_k", D, D), ("attn_v", D, D), ("attn_output", D, D),
                    ("ffn_gate", F, D), ("ffn_up", F, D), ("ffn_down", D, F)]:
        mat(b + n + ".weight", r, c)
w.add_tensor("output_norm.weight", np.ones(D, np.float32), gw.T_F32)
mat("output.weight", V, D)
w.write()
print("wrote %s: %.2f GB" % (a.out, os.path.getsize(a.out) / 1e9))
