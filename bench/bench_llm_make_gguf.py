"""Writes a LLaMA-7B-shaped GGUF with random Q8_0 weights for bench_llm (no real model needed).

  /usr/bin/python3 bench/bench_llm_make_gguf.py OUT.gguf [--layers N]

Shape of Vicuna-7B v1.5 / LLaMA-2-7B: hidden 4096, 32 blocks, 32 heads (no GQA), ff 11008, vocab
32000, context 4096; about 7.2 GB. --layers writes fewer blocks (to extrapolate on a small disk).
Scales are chosen so activations stay finite; the numbers mean nothing.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import gguf_writer as gw  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--layers", type=int, default=32)
a = ap.parse_args()
D, F, V, H = 4096, 11008, 32000, 32
rng = np.random.default_rng(0)


def q8_random(rows, cols):
    nb = rows * cols // 32
    def produce():
        blk = np.empty((nb, 34), dtype=np.uint8)
        d = np.full(nb, 1.0 / (40.0 * np.sqrt(cols)), dtype=np.float16)
        blk[:, :2] = d.view(np.uint8).reshape(-1, 2)
        blk[:, 2:] = rng.integers(-127, 128, size=(nb, 32), dtype=np.int8).view(np.uint8)
        return blk.tobytes()
    return nb * 34, produce


w = gw.GGUFWriter(a.out)
w.add_string("general.architecture", "llama")
w.add_string("general.name", "random-7b-shape")
w.add_u32("general.file_type", 7)
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
    n, f = q8_random(rows, cols)
    w.add_tensor_lazy(name, (rows, cols), gw.T_Q8_0, n, f)


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
