"""PyTorch reference for sdumc's text simulation (MODEL.md section 6): the SentencePiece tokenizer,
the LLaMA forward pass written the Hugging Face way (rotate-half RoPE on un-permuted Q/K weights),
the SLAM-LLM projector, and generation (Hugging Face beam search / greedy semantics) with the
hidden-state sum per step.

Independent of the C code on purpose:
  - the tokenizer rescans the whole symbol list for the best pair each round (no heap);
  - the model recomputes the full causal sequence each step (no KV cache), in float64;
  - RoPE is the HF rotate_half form; the GGUF files hold llama.cpp's permuted Q/K rows, which the
    C code rotates as adjacent pairs. Agreement checks the permutation too.
"""
import math

import numpy as np
import torch

SPACE = "\u2581"


# ---------------------------------------------------------------------------------------------
# tokenizer

def utf8_len(b):
    return [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4][b >> 4]


class Tokenizer:
    def __init__(self, pieces, scores, types, bos=1, eos=2, unk=0, add_space_prefix=True):
        self.pieces = [p.encode("utf-8") if isinstance(p, str) else p for p in pieces]
        self.scores = [np.float32(s) for s in scores]
        self.types = list(types)
        self.index = {}
        for i, p in enumerate(self.pieces):
            self.index.setdefault(p, i)
        self.bos, self.eos, self.unk = bos, eos, unk
        self.add_space_prefix = add_space_prefix

    def encode(self, text, add_bos=True):
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        ids = [self.bos] if add_bos else []
        if not data:
            return ids
        esc = data.replace(b" ", SPACE.encode())
        if self.add_space_prefix:
            esc = SPACE.encode() + esc
        syms, off = [], 0
        while off < len(esc):
            n = min(utf8_len(esc[off]), len(esc) - off)
            syms.append(esc[off:off + n])
            off += n
        # Each round: the adjacent pair forming the best-scoring piece, leftmost on ties.
        while True:
            best = None
            for i in range(len(syms) - 1):
                j = self.index.get(syms[i] + syms[i + 1])
                if j is None:
                    continue
                if best is None or self.scores[j] > best[0]:
                    best = (self.scores[j], i)
            if best is None:
                break
            i = best[1]
            syms[i:i + 2] = [syms[i] + syms[i + 1]]
        for s in syms:
            j = self.index.get(s)
            if j is not None:
                ids.append(j)
                continue
            for b in s:
                ids.append(self.index.get(b"<0x%02X>" % b, self.unk))
        return ids

    def decode(self, ids):
        out, first, strip = b"", True, False
        for t in ids:
            ty, p = self.types[t], self.pieces[t]
            if ty in (3, 5):  # control, unused
                continue
            if ty == 2:
                out += "\u2585".encode()
            elif ty == 6:
                out += bytes([int(p[3:5], 16)])
            elif ty == 4:
                out += p
            else:
                if first and self.add_space_prefix and p.startswith(SPACE.encode()):
                    strip = True
                out += p.replace(SPACE.encode(), b" ")
            first = False
        if strip:
            out = out[1:]
        return out


# ---------------------------------------------------------------------------------------------
# model

class Config:
    def __init__(self, n_vocab, dim, n_layer, n_head, n_kv_head, ff, rope_base=10000.0,
                 eps=1e-5, ctx=512):
        self.n_vocab, self.dim, self.n_layer = n_vocab, dim, n_layer
        self.n_head, self.n_kv_head, self.ff = n_head, n_kv_head, ff
        self.head_dim = dim // n_head
        self.rope_base, self.eps, self.ctx = rope_base, eps, ctx


def permute_qk(w, n_head):
    """llama.cpp's convert permutation (rows of each head: [first half, second half] interleaved),
    so that adjacent-pair RoPE on the permuted weights equals HF rotate-half RoPE on the originals."""
    out, inp = w.shape
    return (w.reshape(n_head, 2, out // n_head // 2, inp).swapaxes(1, 2).reshape(out, inp))


def random_weights(cfg, rng, eos_boost=None):
    """HF-layout float32 weights (Linear [out, in])."""
    def lin(o, i, scale=1.0):
        return (rng.standard_normal((o, i)) * scale / math.sqrt(i)).astype(np.float32)
    kv = cfg.n_kv_head * cfg.head_dim
    w = {"embed": (rng.standard_normal((cfg.n_vocab, cfg.dim)) * 0.5).astype(np.float32)}
    for l in range(cfg.n_layer):
        w[l, "attn_norm"] = (1 + 0.1 * rng.standard_normal(cfg.dim)).astype(np.float32)
        w[l, "q"] = lin(cfg.dim, cfg.dim, 2.0)
        w[l, "k"] = lin(kv, cfg.dim, 2.0)
        w[l, "v"] = lin(kv, cfg.dim)
        w[l, "o"] = lin(cfg.dim, cfg.dim)
        w[l, "ffn_norm"] = (1 + 0.1 * rng.standard_normal(cfg.dim)).astype(np.float32)
        w[l, "gate"] = lin(cfg.ff, cfg.dim)
        w[l, "up"] = lin(cfg.ff, cfg.dim)
        w[l, "down"] = lin(cfg.dim, cfg.ff)
    w["norm"] = (1 + 0.1 * rng.standard_normal(cfg.dim)).astype(np.float32)
    w["output"] = lin(cfg.n_vocab, cfg.dim, 4.0)
    if eos_boost is not None:
        w["output"][eos_boost[0]] *= eos_boost[1]
    return w


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def round16(x):
    """Values rounded to float16 (through float32, as a float32 program converts them)."""
    return torch.from_numpy(x.numpy().astype(np.float32).astype(np.float16).astype(np.float64))


def quant_q8_0(x):
    """llama.cpp's quantize_row_q8_0 on each row of x [N, K] (K a multiple of 32), returning the
    values the 8-bit products use: f16(d) * q with, in float32, d = amax / 127, q =
    round-half-even(x * (127 / amax))."""
    a = x.numpy().astype(np.float32)
    b = a.reshape(a.shape[0], -1, 32)
    amax = np.abs(b).max(axis=-1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(amax != 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(b * inv)  # float32 product, ties to even
    return torch.from_numpy((q.astype(np.float64) * d.astype(np.float16).astype(np.float64)).reshape(a.shape))


def round_act(x, act):
    """The activations a product with the weights sees: act None or "f32": as they are; "f16":
    rounded to float16; "q8_0": llama.cpp's 8-bit blocks."""
    if act == "f16":
        return round16(x)
    if act == "q8_0":
        return quant_q8_0(x)
    return x


def forward(cfg, W, x, act=None, kv16=False):
    """x: [N, dim] input embeddings (float64 tensor), positions 0..N-1, causal.
    Returns hidden (list of n_layer [N, dim] block outputs), normed [N, dim], logits [N, vocab].
    act emulates llama.cpp's arithmetic (None: exact; "f32", "f16" or "q8_0": the rounding of the
    inputs of every weight product, by weight type); kv16: keys and values stored as float16,
    and with act set also the queries and the softmax weights rounded to float16 before their
    products (llama.cpp with a float16 KV cache)."""
    N, hd = x.shape[0], cfg.head_dim
    T = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in W.items()}
    inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    pos = torch.arange(N, dtype=torch.float64)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    mask = torch.full((N, N), float("-inf"), dtype=torch.float64).triu(1)
    group = cfg.n_head // cfg.n_kv_head
    hidden = []
    h = x
    for l in range(cfg.n_layer):
        a = round_act(rms_norm(h, T[l, "attn_norm"], cfg.eps), act)
        q = (a @ T[l, "q"].T).view(N, cfg.n_head, hd)
        k = (a @ T[l, "k"].T).view(N, cfg.n_kv_head, hd)
        v = (a @ T[l, "v"].T).view(N, cfg.n_kv_head, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if kv16:
            k, v = round16(k), round16(v)
            if act is not None:
                q = round16(q)
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        att = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd) + mask
        att = torch.softmax(att, dim=-1)
        if kv16 and act is not None:
            att = round16(att)
        o = torch.einsum("hqk,khd->qhd", att, v).reshape(N, cfg.dim)
        h = h + round_act(o, act) @ T[l, "o"].T
        f = round_act(rms_norm(h, T[l, "ffn_norm"], cfg.eps), act)
        g = torch.nn.functional.silu(f @ T[l, "gate"].T) * (f @ T[l, "up"].T)
        h = h + round_act(g, act) @ T[l, "down"].T
        hidden.append(h)
    normed = rms_norm(h, T["norm"], cfg.eps)
    logits = round_act(normed, act) @ T["output"].T
    return hidden, normed, logits


def hidden_sum(hidden, normed):
    """HF's hidden_states tuple is (embeddings, block 0..L-2 outputs, final norm of block L-1);
    MODEL.md sums its last four entries: blocks L-4, L-3, L-2 and the final-norm output."""
    L = len(hidden)
    return hidden[L - 4] + hidden[L - 3] + hidden[L - 2] + normed


# ---------------------------------------------------------------------------------------------
# projector

def project(feats, w1, b1, w2, b2, k=5):
    """feats [T, D] -> [T//k, out]: concat k consecutive frames, Linear, ReLU, Linear."""
    f = torch.from_numpy(np.asarray(feats, dtype=np.float64))
    T = (f.shape[0] // k) * k
    x = f[:T].reshape(T // k, k * f.shape[1])
    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    y = torch.relu(x @ t(w1).T + t(b1))
    return (y @ t(w2).T + t(b2)).numpy()


# ---------------------------------------------------------------------------------------------
# generation (Hugging Face transformers semantics, decoder-only with inputs_embeds: input_ids
# holds only generated tokens, so cur_len counts generated tokens)

def _step(cfg, W, prefix, tokens_list, fw):
    """Runs the full sequence prefix + each token list; returns per list (logits of the last
    position as float32 numpy, hidden-state sum at the last position as float64 numpy). fw: the
    arithmetic options of forward()."""
    E = torch.from_numpy(np.asarray(W["embed"], dtype=np.float64))
    outs = []
    for toks in tokens_list:
        x = torch.cat([prefix, E[list(toks)]], dim=0) if toks else prefix
        hidden, normed, logits = forward(cfg, W, x, **fw)
        outs.append((logits[-1].numpy(), hidden_sum(hidden, normed)[-1].numpy()))
    return outs


def log_softmax32(z):
    z = torch.from_numpy(np.asarray(z, dtype=np.float32))
    return torch.log_softmax(z, dim=-1).numpy()


def _add_hyp(hyps, worst, num_beams, score, tokens, frames):
    """HF BeamHypotheses.add: keep the num_beams best finished hypotheses in insertion order; when
    one too many, drop the lowest score (the earliest among equals). Returns the new worst score."""
    if len(hyps) < num_beams or score > worst:
        hyps.append((score, tokens, frames))
        if len(hyps) > num_beams:
            order = sorted(range(len(hyps)), key=lambda i: (hyps[i][0], i))
            del hyps[order[0]]
            return hyps[order[1] - (order[1] > order[0])][0]
        return min(score, worst)
    return worst


def generate(cfg, W, prefix_embd, num_beams=4, max_new_tokens=200, eos=2, min_new_tokens=1,
             length_penalty=1.0, **fw):
    """Returns dict(tokens = best hypothesis (without EOS), slot0 = [steps-1, dim] frames of beam
    slot 0 after the first step, best = frames along the best hypothesis, steps). fw: forward()'s
    arithmetic options (act, kv16)."""
    prefix = torch.from_numpy(np.asarray(prefix_embd, dtype=np.float64))
    if num_beams == 1:
        toks, frames = [], []
        for step in range(max_new_tokens):
            (logit, hs), = _step(cfg, W, prefix, [toks], fw)
            if step > 0:
                frames.append(hs)
            z = np.asarray(logit, dtype=np.float32).copy()
            if step < min_new_tokens:
                z[eos] = -np.inf
            t = int(np.argmax(z))
            if t == eos:
                break
            toks.append(t)
        fr = np.array(frames).reshape(-1, cfg.dim)
        return dict(tokens=toks, slot0=fr, best=fr, steps=len(frames) + 1)

    V = cfg.n_vocab
    beams = [[] for _ in range(num_beams)]          # generated tokens per slot
    hist = [[] for _ in range(num_beams)]           # frames along each slot's history
    scores = np.full(num_beams, -1e9, dtype=np.float32)
    scores[0] = 0
    hyps = []                                       # (score, tokens, frames)
    worst = 1e9
    slot0 = []
    done = False
    cur_len = 0
    for step in range(max_new_tokens):
        outs = _step(cfg, W, prefix, beams, fw)
        if step > 0:
            slot0.append(outs[0][1])
        cand = np.empty((num_beams, V), dtype=np.float32)
        for b in range(num_beams):
            lp = log_softmax32(outs[b][0])
            if cur_len < min_new_tokens:
                lp[eos] = -np.inf
            cand[b] = lp + scores[b]
        flat = torch.from_numpy(cand.reshape(-1))
        top_s, top_i = torch.topk(flat, 2 * num_beams, largest=True, sorted=True)
        new = []
        for rank, (s, i) in enumerate(zip(top_s.tolist(), top_i.tolist())):
            b, t = divmod(i, V)
            fr = hist[b] + ([outs[b][1]] if step > 0 else [])
            if t == eos:
                if rank >= num_beams:
                    continue
                worst = _add_hyp(hyps, worst, num_beams, s / (cur_len ** length_penalty),
                                 list(beams[b]), fr)
            else:
                new.append((np.float32(s), beams[b] + [t], fr))
            if len(new) == num_beams:
                break
        best_next = float(top_s.max())
        if len(hyps) >= num_beams:
            done = done or worst >= best_next / (cur_len ** length_penalty)
        scores = np.array([n[0] for n in new], dtype=np.float32)
        beams = [n[1] for n in new]
        hist = [n[2] for n in new]
        cur_len += 1
        if done or cur_len >= max_new_tokens:
            break
    if not done:
        for b in range(num_beams):
            worst = _add_hyp(hyps, worst, num_beams, float(scores[b]) / (cur_len ** length_penalty),
                             list(beams[b]), hist[b])
    best = sorted(hyps, key=lambda h: h[0])[-1]  # stable: the latest added among equal scores
    return dict(tokens=best[1], slot0=np.array(slot0).reshape(-1, cfg.dim),
                best=np.array(best[2]).reshape(-1, cfg.dim), steps=step + 1)
