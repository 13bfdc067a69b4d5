"""Writes tests/fixtures/llm/: GGUF files and the PyTorch reference outputs the C tests compare with.

Run from the repository root:  /usr/bin/python3 tests/reference/make_llm_fixtures.py
Deterministic (fixed seeds); the files are committed, this script is kept beside them so they can
be regenerated and reviewed. Everything here is small (< 2 MB in all).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import llama_ref as ref  # noqa: E402

OUT = os.path.join("tests", "fixtures", "llm")


def write_types_fixture():
    """gguf_types.gguf: one [3, 64] tensor per type plus its expected dequantisation, and one
    metadata value of each kind."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    x[1, 5] = 0.0
    x[2, 32:] = 0.0  # an all-zero block (d = 0)
    w = gw.GGUFWriter(os.path.join(OUT, "gguf_types.gguf"))
    w.add_string("t.string", "h\u00e9llo")
    w.add_u32("t.u32", 4000000000)
    w.add_i32("t.i32", 123)
    w.add_i32("t.neg", -5)
    w.add_f32("t.f32", 1e-5)
    w.add_bool("t.bool", True)
    w.add_array("t.strings", gw.STRING, ["a", "", "<0x0A>"])
    w.add_array("t.i32s", gw.I32, [5, -6])
    for name, t in gw.TYPE_NAMES.items():
        expected = w.add_tensor("x." + name, x, t)
        w.add_tensor("x." + name + ".expected", expected, gw.T_F32)
    w.write()



# ---------------------------------------------------------------------------------------------
# vocabulary: <unk> <s> </s>, 256 byte tokens, characters and BPE merges learned from CORPUS

PROMPT = ("USER: Transcribe speech to text. Output the transcription directly without redundant "
          "content. Ensure that the output is not duplicated. \n ASSISTANT:")
CORPUS = [
    PROMPT,
    "the movie was really good and i liked the acting a lot",
    "i did not like this film at all, the story was boring",
    "she said that the ending was the best part of the whole thing",
    "well, um, i think it is okay but not great",
    "the output of the transcription is the text of the speech",
    "USER ASSISTANT Transcribe Output Ensure",
]
N_VOCAB = 384
EXCLUDED_CHARS = set("qzjxQZJX0123456789\n")  # left to byte fallback


def build_vocab():
    words = []
    for line in CORPUS:
        for w in line.replace("\n", " ").split(" "):
            if w:
                words.append([c for c in ref.SPACE + w])
    chars = sorted({c for w in words for c in w} - EXCLUDED_CHARS)
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0] * len(pieces)
    n_merges = N_VOCAB - len(pieces) - len(chars)
    merged, k = [], 0
    while len(merged) < n_merges:
        counts = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[a + b] = counts.get(a + b, 0) + 1
        cands = [p for p in counts if p not in merged and p not in chars]
        if not cands:
            break
        best = max(cands, key=lambda p: (counts[p], p))
        merged.append(best)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if w[i] + w[i + 1] == best:
                    w[i:i + 2] = [best]
                i += 1
        k += 1
    for i, p in enumerate(merged):
        pieces.append(p)
        types.append(1)
        scores.append(-float(i // 2))  # pairs of equal scores exercise the leftmost-first rule
    for i, c in enumerate(chars):
        pieces.append(c)
        types.append(1)
        scores.append(-1000.0 - i)
    while len(pieces) < N_VOCAB:  # pad with unused pieces
        pieces.append("<unused%d>" % len(pieces))
        types.append(5)
        scores.append(-1e6)
    return pieces, scores, types


TOKENIZER_CASES = [
    "", " ", "  ", "a", "hello world", PROMPT, "  two leading spaces", "trailing ", "many    spaces",
    "line\nbreak\tand tab", "quiz jazz 2024", "\u00fcn\u00efc\u00f6d\u00e9 \u65e5\u672c\u8a9e \U0001F642",
    "<s> is text here </s>", "the the the thethe", "ASSISTANT:", "Transcribe speech to text.",
    b"\xff\xfe abc \xc3", b"\xe2\x96\x81 raw mark",
]


def write_tokenizer_cases(tok, rng):
    cases = list(TOKENIZER_CASES)
    alphabet = list("abcdefghi thenos.,:USERqz\n\u00e9")
    for _ in range(40):
        n = int(rng.integers(1, 40))
        cases.append("".join(rng.choice(alphabet, n)))
    with open(os.path.join(OUT, "tokenizer_cases.txt"), "w") as f:
        f.write("# hex(text) TAB ids (with BOS) TAB hex(decode(ids)); see make_llm_fixtures.py\n")
        for c in cases:
            data = c.encode("utf-8") if isinstance(c, str) else c
            ids = tok.encode(data)
            dec = tok.decode(ids)
            f.write("%s\t%s\t%s\n" % (data.hex(), " ".join(map(str, ids)), dec.hex()))


# ---------------------------------------------------------------------------------------------
# tiny LLaMA models

CFG = ref.Config(n_vocab=N_VOCAB, dim=64, n_layer=4, n_head=4, n_kv_head=2, ff=128,
                 rope_base=10000.0, eps=1e-5, ctx=256)


def add_vocab(w, vocab):
    pieces, scores, types = vocab
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", gw.STRING, pieces)
    w.add_array("tokenizer.ggml.scores", gw.F32, scores)
    w.add_array("tokenizer.ggml.token_type", gw.I32, types)
    w.add_u32("tokenizer.ggml.bos_token_id", 1)
    w.add_u32("tokenizer.ggml.eos_token_id", 2)
    w.add_u32("tokenizer.ggml.unknown_token_id", 0)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)


def add_llama_meta(w, cfg, name, file_type):
    w.add_string("general.architecture", "llama")
    w.add_string("general.name", name)
    w.add_u32("general.file_type", file_type)
    w.add_u32("llama.context_length", cfg.ctx)
    w.add_u32("llama.embedding_length", cfg.dim)
    w.add_u32("llama.block_count", cfg.n_layer)
    w.add_u32("llama.feed_forward_length", cfg.ff)
    w.add_u32("llama.rope.dimension_count", cfg.head_dim)
    w.add_u32("llama.attention.head_count", cfg.n_head)
    w.add_u32("llama.attention.head_count_kv", cfg.n_kv_head)
    w.add_f32("llama.attention.layer_norm_rms_epsilon", cfg.eps)
    w.add_f32("llama.rope.freq_base", cfg.rope_base)


def unpermute_qk(w, n_head):
    out, inp = w.shape
    return w.reshape(n_head, out // n_head // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)


def write_model(path, cfg, W, ttype, vocab, tied=False):
    """Writes W (HF layout) as a llama.cpp-style GGUF; returns the weights a reader sees (HF layout)."""
    w = gw.GGUFWriter(path)
    add_llama_meta(w, cfg, os.path.basename(path), {gw.T_F32: 0, gw.T_F16: 1, gw.T_Q8_0: 7,
                                                    gw.T_Q4_0: 2}[ttype])
    add_vocab(w, vocab)
    R = {"embed": w.add_tensor("token_embd.weight", W["embed"], ttype)}
    for l in range(cfg.n_layer):
        b = "blk.%d." % l
        R[l, "attn_norm"] = w.add_tensor(b + "attn_norm.weight", W[l, "attn_norm"], gw.T_F32)
        R[l, "q"] = unpermute_qk(w.add_tensor(b + "attn_q.weight", ref.permute_qk(W[l, "q"], cfg.n_head),
                                              ttype), cfg.n_head)
        R[l, "k"] = unpermute_qk(w.add_tensor(b + "attn_k.weight", ref.permute_qk(W[l, "k"], cfg.n_kv_head),
                                              ttype), cfg.n_kv_head)
        R[l, "v"] = w.add_tensor(b + "attn_v.weight", W[l, "v"], ttype)
        R[l, "o"] = w.add_tensor(b + "attn_output.weight", W[l, "o"], ttype)
        R[l, "ffn_norm"] = w.add_tensor(b + "ffn_norm.weight", W[l, "ffn_norm"], gw.T_F32)
        R[l, "gate"] = w.add_tensor(b + "ffn_gate.weight", W[l, "gate"], ttype)
        R[l, "up"] = w.add_tensor(b + "ffn_up.weight", W[l, "up"], ttype)
        R[l, "down"] = w.add_tensor(b + "ffn_down.weight", W[l, "down"], ttype)
    R["norm"] = w.add_tensor("output_norm.weight", W["norm"], gw.T_F32)
    if tied:
        R["output"] = R["embed"]
    else:
        R["output"] = w.add_tensor("output.weight", W["output"], ttype)
    w.write()
    return R


def write_expect(path, arrays, kv_i32=None):
    """Expected values as F32 tensors (and i32 arrays) in a GGUF the C tests read with sd_gguf."""
    w = gw.GGUFWriter(path)
    for k, v in (kv_i32 or {}).items():
        w.add_array(k, gw.I32, [int(x) for x in v] if len(v) else [])
    for name, a in arrays.items():
        a = np.asarray(a, dtype=np.float32)
        if a.size == 0:
            a = np.zeros((1,), dtype=np.float32)  # GGUF has no empty tensors; counts are in the kv
        w.add_tensor(name, a, gw.T_F32)
    w.write()


def model_cases(vocab, tok):
    rng = np.random.default_rng(1234)
    W = ref.random_weights(CFG, rng, eos_boost=(2, 2.0))
    # forward input: 8 "speech" embeddings then BOS + 15 prompt tokens
    E = 8
    embd = (rng.standard_normal((E, CFG.dim)) * 0.5).astype(np.float32)
    ids = tok.encode("Transcribe speech to text. Output")[:16]
    for ttype, tname, tied in [(gw.T_F32, "f32", False), (gw.T_F16, "f16", True),
                               (gw.T_Q8_0, "q8_0", False), (gw.T_Q4_0, "q4_0", False)]:
        Wt = dict(W)
        if tied:
            Wt["output"] = W["embed"]
        R = write_model(os.path.join(OUT, "tiny_%s.gguf" % tname), CFG, Wt, ttype, vocab, tied)
        x = np.concatenate([embd, R["embed"][ids]], axis=0)
        xt = ref.torch.from_numpy(x.astype(np.float64))
        hidden, normed, logits = ref.forward(CFG, R, xt)
        arrays = {"input.embd": embd, "hidden": np.stack([h.numpy() for h in hidden]),
                  "normed": normed.numpy(), "logits": logits.numpy()}
        # llama.cpp's arithmetic, emulated (ACT: the activation rounding of this weight type), with
        # a float32 and a float16 KV cache; and the exact arithmetic with a float16 cache
        for prefix, fw in [("llamacpp.", dict(act=ACT[ttype])), ("llamacpp_kv16.", dict(act=ACT[ttype], kv16=True)),
                           ("exact_kv16.", dict(kv16=True))]:
            hid, nrm, lg = ref.forward(CFG, R, xt, **fw)
            arrays[prefix + "hidden"] = np.stack([h.numpy() for h in hid])
            arrays[prefix + "normed"] = nrm.numpy()
            arrays[prefix + "logits"] = lg.numpy()
        # the same forward on the unquantised weights: the quantisation error, for the record
        if ttype != gw.T_F32:
            _, _, l32 = ref.forward(CFG, Wt, ref.torch.from_numpy(
                np.concatenate([embd, Wt["embed"][ids]], axis=0).astype(np.float64)))
            arrays["logits.unquantised"] = l32.numpy()
        kv = {"input.tokens": ids}
        if ttype in (gw.T_F32, gw.T_Q8_0):
            add_generation_cases(R, embd, tok, arrays, kv, [("beam4", 4), ("beam2", 2), ("greedy", 1)], {})
        # llama.cpp's arithmetic: a float32 activation one part in 10^6 away from the reference's
        # can round to the other 8-bit code, which moves the tiny model's logits by up to ~1e-2 of
        # their scale; greedy Q8_0 has argmax margins of 0.09 and 0.13 (scale 12) on the way, so
        # it is left out (its token can legitimately differ)
        if ttype == gw.T_Q8_0:
            add_generation_cases(R, embd, tok, arrays, kv, [("llamacpp.beam4", 4)], dict(act="q8_0"))
        if ttype == gw.T_Q4_0:
            add_generation_cases(R, embd, tok, arrays, kv, [("llamacpp.beam4", 4), ("llamacpp.greedy", 1)],
                                 dict(act="q8_0"))
        write_expect(os.path.join(OUT, "tiny_%s.expect.gguf" % tname), arrays, kv)


# activation rounding of llama.cpp's arithmetic by weight type
ACT = {gw.T_F32: "f32", gw.T_F16: "f16", gw.T_Q8_0: "q8_0", gw.T_Q4_0: "q8_0"}


def add_generation_cases(R, embd, tok, arrays, kv, cases, fw):
    """Prefix = speech embeddings + BOS + the MODEL.md prompt; beam search and greedy, 16 new
    tokens; fw: the arithmetic (forward()'s options)."""
    ids = tok.encode(PROMPT)
    prefix = np.concatenate([embd, R["embed"][ids]], axis=0)
    kv["gen.prompt"] = ids
    for name, beams in cases:
        g = ref.generate(CFG, R, prefix, num_beams=beams, max_new_tokens=16, eos=2, **fw)
        kv["gen.%s.tokens" % name] = g["tokens"]
        kv["gen.%s.steps" % name] = [g["steps"], len(g["slot0"]), len(g["best"])]
        arrays["gen.%s.slot0" % name] = g["slot0"]
        arrays["gen.%s.best" % name] = g["best"]
        print("%s: steps %d tokens %s" % (name, g["steps"], g["tokens"]))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_types_fixture()
    vocab = build_vocab()
    tok = ref.Tokenizer(*vocab)
    w = gw.GGUFWriter(os.path.join(OUT, "vocab.gguf"))
    add_vocab(w, vocab)
    w.write()
    write_tokenizer_cases(tok, np.random.default_rng(99))
    model_cases(vocab, tok)
    # a model of another architecture (header only): simulate-text must refuse it by name
    w = gw.GGUFWriter(os.path.join(OUT, "not_llama.gguf"))
    w.add_string("general.architecture", "gpt2")
    add_vocab(w, vocab)
    w.add_tensor("token_embd.weight", np.zeros((N_VOCAB, 32), np.float32), gw.T_Q8_0)
    w.write()


if __name__ == "__main__":
    main()
