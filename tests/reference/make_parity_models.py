"""Writes better-conditioned variants of the tiny test models for the llama.cpp parity test
(tests/parity/llama_cpp_parity.c, PARITY_MODELS=...), into the folder given (not committed):

    /usr/bin/python3 tests/reference/make_parity_models.py /tmp/calm
    PARITY_MODELS="/tmp/calm/calm_q8_0.gguf ..." build/tests/test_llama_cpp_parity

The committed tiny models (make_llm_fixtures.py) have sharp attention (query and key weights 2x)
and large logits (output weights 4x) so that their tests exercise every path; that also makes them
amplify a perturbation several times per block. These have the same shapes and vocabulary with the
proportions of a trained LLaMA: unit-scale query/key/output weights and residual branches (attention
output, FFN down) scaled by 0.25, so the residual stream carries a perturbation on instead of
multiplying it."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import llama_ref as ref  # noqa: E402
import make_llm_fixtures as fx  # noqa: E402


def calm_weights(cfg, rng):
    W = ref.random_weights(cfg, rng)
    for l in range(cfg.n_layer):
        W[l, "q"] = W[l, "q"] / 2
        W[l, "k"] = W[l, "k"] / 2
        W[l, "o"] = W[l, "o"] * 0.25
        W[l, "down"] = W[l, "down"] * 0.25
    W["output"] = W["output"] / 4
    return W


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    vocab = fx.build_vocab()
    W = calm_weights(fx.CFG, np.random.default_rng(1234))
    for ttype, tname in [(gw.T_F32, "f32"), (gw.T_F16, "f16"), (gw.T_Q8_0, "q8_0"), (gw.T_Q4_0, "q4_0")]:
        fx.write_model(os.path.join(out, "calm_%s.gguf" % tname), fx.CFG, W, ttype, vocab)


if __name__ == "__main__":
    main()
