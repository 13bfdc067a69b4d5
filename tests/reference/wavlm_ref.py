"""Independent float64 PyTorch implementation of WavLM (Chen et al. 2021, arXiv 2110.13900), the
oracle for sdumc's C implementation (src/wavlm/). Written from the paper and the public
descriptions of the released model (docs/WAVLM.md lists each detail and its source); parameter
names are Hugging Face's WavLMModel state_dict names, so a checkpoint of this module is what a user
holds after `WavLMModel.from_pretrained(...).state_dict()`.

Also here: the waveform normalisation of WavLM-Large, the frame count, and sdumc's chunking policy
for long recordings (windows, stitching), written independently of the C code from the policy's
description in docs/WAVLM.md.

    import wavlm_ref as W
    cfg = W.config(hidden_size=32, ...)          # or W.LARGE, W.BASE_PLUS
    model = W.WavLM(cfg); W.random_init(model, seed=1)
    hs = model.hidden_states(torch.tensor(wav, dtype=torch.float64))   # [L + 1] x [T, D]
"""
import math

import torch

# Parameter dtype of new modules: float64 for the parity fixtures; the benchmark sets float32
# (W.DTYPE = torch.float32 before building) to time PyTorch as users run it.
DTYPE = torch.float64

LARGE = dict(conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
             conv_bias=False, feat_extract_norm="layer", hidden_size=1024, num_hidden_layers=24,
             num_attention_heads=16, intermediate_size=4096, num_conv_pos_embeddings=128,
             num_conv_pos_embedding_groups=16, num_buckets=320, max_bucket_distance=800,
             do_stable_layer_norm=True, layer_norm_eps=1e-5, normalize=True)
BASE_PLUS = dict(LARGE, feat_extract_norm="group", hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, do_stable_layer_norm=False,
                 normalize=False)


def config(**changes):
    c = dict(LARGE)
    c.update(changes)
    return c


# ---- small pieces ----------------------------------------------------------------------------

def gelu(x):
    """The exact GELU, x Phi(x)."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def norm_last(x, w, b, eps):
    """LayerNorm over the last axis: biased variance, affine."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def normalize_waveform(wav):
    """WavLM-Large's input normalisation (fairseq F.layer_norm over the whole waveform, eps 1e-5)."""
    mu = wav.mean()
    var = ((wav - mu) ** 2).mean()
    return (wav - mu) / torch.sqrt(var + 1e-5)


def frames(cfg, n):
    for k, s in zip(cfg["conv_kernel"], cfg["conv_stride"]):
        if n < k:
            return 0
        n = (n - k) // s + 1
    return n


def hop_and_receptive(cfg):
    hop, rec = 1, 1
    for k, s in zip(cfg["conv_kernel"], cfg["conv_stride"]):
        rec += (k - 1) * hop
        hop *= s
    return hop, rec


def bucket(rel, num_buckets, max_distance):
    """Relative-position bucket of rel = key index - query index (an integer tensor). Half the
    buckets for rel > 0; |rel| < num_buckets/4 maps to itself, larger distances logarithmically to
    the rest of the half, saturating at its last bucket from max_distance on (T5's scheme with the
    sign split, as WavLM uses it). Computed in float64."""
    half = num_buckets // 2
    exact = half // 2
    side = (rel > 0).long() * half
    a = rel.abs()
    far = exact + torch.floor(torch.log(a.double().clamp(min=1) / exact) /
                              math.log(max_distance / exact) * (half - exact)).long()
    far = far.clamp(max=half - 1)
    return side + torch.where(a < exact, a, far)


def bucket_float32(rel, num_buckets, max_distance):
    """The same as the released implementations compute it, in float32 with truncation; used only
    to check that float32 rounding does not move any bucket for the configurations tested."""
    half = num_buckets // 2
    exact = half // 2
    side = (rel > 0).long() * half
    a = rel.abs()
    v = torch.log(a.float() / exact) / math.log(max_distance / exact) * (half - exact)
    far = (exact + v).long().clamp(max=half - 1)
    return side + torch.where(a < exact, a, far)


# ---- the model -------------------------------------------------------------------------------

class Linear(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(n_out, n_in, dtype=DTYPE))
        self.bias = torch.nn.Parameter(torch.zeros(n_out, dtype=DTYPE))

    def forward(self, x):
        return x @ self.weight.T + self.bias


class Norm(torch.nn.Module):
    """Affine parameters of a LayerNorm or GroupNorm (the math is in the callers)."""
    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n, dtype=DTYPE))
        self.bias = torch.nn.Parameter(torch.zeros(n, dtype=DTYPE))


class Conv(torch.nn.Module):
    def __init__(self, c_in, c_out, k, bias):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(c_out, c_in, k, dtype=DTYPE))
        self.bias = torch.nn.Parameter(torch.zeros(c_out, dtype=DTYPE)) if bias else None


class ConvLayer(torch.nn.Module):
    def __init__(self, c_in, c_out, k, bias, norm):
        super().__init__()
        self.conv = Conv(c_in, c_out, k, bias)
        if norm:
            self.layer_norm = Norm(c_out)


class FeatureEncoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        layers, c_in = [], 1
        for i, (c, k) in enumerate(zip(cfg["conv_dim"], cfg["conv_kernel"])):
            norm = cfg["feat_extract_norm"] == "layer" or i == 0
            layers.append(ConvLayer(c_in, c, k, cfg["conv_bias"], norm))
            c_in = c
        self.conv_layers = torch.nn.ModuleList(layers)


class FeatureProjection(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer_norm = Norm(cfg["conv_dim"][-1])
        self.projection = Linear(cfg["conv_dim"][-1], cfg["hidden_size"])


class PosConv(torch.nn.Module):
    """The grouped positional conv with weight normalisation over every axis but the kernel's:
    weight[:, :, j] = g[j] v[:, :, j] / ||v[:, :, j]||."""
    def __init__(self, cfg):
        super().__init__()
        D, G, K = cfg["hidden_size"], cfg["num_conv_pos_embedding_groups"], cfg["num_conv_pos_embeddings"]
        self.weight_g = torch.nn.Parameter(torch.ones(1, 1, K, dtype=DTYPE))
        self.weight_v = torch.nn.Parameter(torch.zeros(D, D // G, K, dtype=DTYPE))
        self.bias = torch.nn.Parameter(torch.zeros(D, dtype=DTYPE))


class PosConvEmbed(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.conv = PosConv(cfg)


class Attention(torch.nn.Module):
    def __init__(self, cfg, first):
        super().__init__()
        D, H = cfg["hidden_size"], cfg["num_attention_heads"]
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (Linear(D, D) for _ in range(4))
        self.gru_rel_pos_const = torch.nn.Parameter(torch.ones(1, H, 1, 1, dtype=DTYPE))
        self.gru_rel_pos_linear = Linear(D // H, 8)
        if first:
            self.rel_attn_embed = torch.nn.Module()
            self.rel_attn_embed.weight = torch.nn.Parameter(
                torch.zeros(cfg["num_buckets"], H, dtype=DTYPE))


class FeedForward(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.intermediate_dense = Linear(cfg["hidden_size"], cfg["intermediate_size"])
        self.output_dense = Linear(cfg["intermediate_size"], cfg["hidden_size"])


class Layer(torch.nn.Module):
    def __init__(self, cfg, first):
        super().__init__()
        self.attention = Attention(cfg, first)
        self.layer_norm = Norm(cfg["hidden_size"])
        self.feed_forward = FeedForward(cfg)
        self.final_layer_norm = Norm(cfg["hidden_size"])


class Encoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.pos_conv_embed = PosConvEmbed(cfg)
        self.layer_norm = Norm(cfg["hidden_size"])
        self.layers = torch.nn.ModuleList(Layer(cfg, i == 0) for i in range(cfg["num_hidden_layers"]))


class WavLM(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        self.masked_spec_embed = torch.nn.Parameter(torch.zeros(cfg["hidden_size"], dtype=DTYPE))
        self.feature_extractor = FeatureEncoder(cfg)
        self.feature_projection = FeatureProjection(cfg)
        self.encoder = Encoder(cfg)

    # -- pieces of the forward pass --

    def conv_features(self, wav):
        """wav [n] -> [T, C]."""
        cfg = self.cfg
        x = wav.reshape(1, 1, -1)
        for i, layer in enumerate(self.feature_extractor.conv_layers):
            conv = layer.conv
            x = torch.nn.functional.conv1d(x, conv.weight, conv.bias, stride=cfg["conv_stride"][i])
            if cfg["feat_extract_norm"] == "layer":
                x = norm_last(x.transpose(1, 2), layer.layer_norm.weight, layer.layer_norm.bias,
                              1e-5).transpose(1, 2)
            elif i == 0:  # one group per channel: each channel normalised over time
                mu = x.mean(2, keepdim=True)
                var = ((x - mu) ** 2).mean(2, keepdim=True)
                x = (x - mu) / torch.sqrt(var + 1e-5) * layer.layer_norm.weight[None, :, None] \
                    + layer.layer_norm.bias[None, :, None]
            x = gelu(x)
        return x[0].T

    def position_conv(self, x):
        """x [T, D] -> GELU(weight-normalised grouped conv of x), [T, D]."""
        cfg = self.cfg
        pc = self.encoder.pos_conv_embed.conv
        K, T = cfg["num_conv_pos_embeddings"], x.shape[0]
        norm = torch.sqrt((pc.weight_v ** 2).sum(dim=(0, 1), keepdim=True))
        w = pc.weight_g * pc.weight_v / norm
        y = torch.nn.functional.conv1d(x.T[None], w, pc.bias, padding=K // 2,
                                       groups=cfg["num_conv_pos_embedding_groups"])[0]
        return gelu(y[:, :T].T)  # an even kernel gives T + 1 outputs: the last is dropped

    def relative_bias(self, T):
        """[H, T, T]: P[bucket(j - i), h], computed once (layer 0's table) and shared."""
        cfg = self.cfg
        idx = torch.arange(T)
        rel = idx[None, :] - idx[:, None]
        b = bucket(rel, cfg["num_buckets"], cfg["max_bucket_distance"])
        assert torch.equal(b, bucket_float32(rel, cfg["num_buckets"], cfg["max_bucket_distance"])), \
            "float32 rounding moves a bucket for this configuration"
        P = self.encoder.layers[0].attention.rel_attn_embed.weight
        return P[b].permute(2, 0, 1)

    def attention(self, att, h, bias):
        cfg = self.cfg
        T, D = h.shape
        H = cfg["num_attention_heads"]
        d = D // H
        q = att.q_proj(h).reshape(T, H, d).transpose(0, 1) / math.sqrt(d)   # [H, T, d]
        k = att.k_proj(h).reshape(T, H, d).transpose(0, 1)
        v = att.v_proj(h).reshape(T, H, d).transpose(0, 1)
        # The gate: from the attention input split by heads (not the projected query), 8 outputs
        # whose two sums of four go through a sigmoid: g = a (b c - 1) + 2 per head and frame.
        r = att.gru_rel_pos_linear(h.reshape(T, H, d))                       # [T, H, 8]
        a = torch.sigmoid(r[..., :4].sum(-1))
        b = torch.sigmoid(r[..., 4:].sum(-1))
        c = att.gru_rel_pos_const.reshape(H)
        gate = (a * (b * c - 1.0) + 2.0).T                                   # [H, T]
        scores = q @ k.transpose(1, 2) + gate[:, :, None] * bias
        p = torch.softmax(scores, dim=-1)
        o = (p @ v).transpose(0, 1).reshape(T, D)
        return att.out_proj(o)

    def feed_forward(self, ff, h):
        return ff.output_dense(gelu(ff.intermediate_dense(h)))

    def hidden_states(self, wav, upto=None):
        """wav [n] float64 (already normalised when cfg['normalize']) -> hidden_states[0..L] as
        Hugging Face's WavLMModel returns them (or up to index upto)."""
        cfg = self.cfg
        eps = cfg["layer_norm_eps"]
        L = cfg["num_hidden_layers"]
        upto = L if upto is None else upto
        fp = self.feature_projection
        x = self.conv_features(wav)
        x = fp.projection(norm_last(x, fp.layer_norm.weight, fp.layer_norm.bias, eps))
        x = x + self.position_conv(x)
        enc = self.encoder
        if not cfg["do_stable_layer_norm"]:
            x = norm_last(x, enc.layer_norm.weight, enc.layer_norm.bias, eps)
        bias = self.relative_bias(x.shape[0])
        out = [x]
        for l in range(upto):
            lay = enc.layers[l]
            if cfg["do_stable_layer_norm"]:
                h = norm_last(x, lay.layer_norm.weight, lay.layer_norm.bias, eps)
                x = x + self.attention(lay.attention, h, bias)
                x = x + self.feed_forward(lay.feed_forward, norm_last(
                    x, lay.final_layer_norm.weight, lay.final_layer_norm.bias, eps))
            else:
                x = norm_last(x + self.attention(lay.attention, x, bias), lay.layer_norm.weight,
                              lay.layer_norm.bias, eps)
                x = norm_last(x + self.feed_forward(lay.feed_forward, x), lay.final_layer_norm.weight,
                              lay.final_layer_norm.bias, eps)
            out.append(x)
        if upto == L and cfg["do_stable_layer_norm"]:
            out[-1] = norm_last(x, enc.layer_norm.weight, enc.layer_norm.bias, eps)
        return out


def random_init(model, seed):
    """Weights that keep every layer's activations of order one and make each mechanism matter
    (the relative bias and its gate change the attention noticeably)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if name.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.1 * n)
            elif name.endswith("weight_g"):
                p.copy_(1.0 + 0.2 * n.abs())
            elif name.endswith("gru_rel_pos_const"):
                p.copy_(1.0 + 0.3 * n)
            elif name.endswith("rel_attn_embed.weight"):
                p.copy_(n)
            elif name.endswith("bias") or name == "masked_spec_embed":
                p.copy_(0.1 * n)
            elif name.endswith("conv.weight") and p.dim() == 3:  # feature encoder
                p.copy_(n * math.sqrt(2.0 / (p.shape[1] * p.shape[2])))
            elif p.dim() >= 2:
                p.copy_(n / math.sqrt(p.shape[-1]))
            else:
                p.copy_(n)


# ---- whole recordings: sdumc's chunking policy (docs/WAVLM.md) --------------------------------

def plan(cfg, n, chunk_seconds, overlap_seconds, rate=16000):
    """Windows of a recording of n samples: a list of (first sample, end sample, first frame,
    first kept frame, end kept frame), frames counted on the whole recording's grid."""
    hop, rec = hop_and_receptive(cfg)
    F = frames(cfg, n)
    chunk = int(round(chunk_seconds * rate))
    Fw = frames(cfg, chunk)
    O = int(round(overlap_seconds * rate / hop))
    if F <= Fw:
        return [(0, n, 0, 0, F)]
    m = -(-(F - O) // (Fw - O))  # windows needed for overlaps of at least O frames
    starts = [(i * (F - Fw) + (m - 1) // 2) // (m - 1) for i in range(m)]
    cuts = [0] + [(starts[i - 1] + Fw + starts[i]) // 2 for i in range(1, m)] + [F]
    out = []
    for i, s in enumerate(starts):
        end = n if i == m - 1 else hop * (s + Fw - 1) + rec
        out.append((hop * s, end, s, cuts[i], cuts[i + 1]))
    return out


def extract(model, wav, layers, chunk_seconds=30.0, overlap_seconds=5.0):
    """Hidden states of the listed layers for a whole recording wav [n] (raw, float64), through
    the normalisation and the windows: {layer: [F, D]}."""
    cfg = model.cfg
    x = normalize_waveform(wav) if cfg["normalize"] else wav
    parts = {l: [] for l in layers}
    for s0, s1, f0, k0, k1 in plan(cfg, len(wav), chunk_seconds, overlap_seconds):
        hs = model.hidden_states(x[s0:s1], upto=max(layers))
        for l in layers:
            parts[l].append(hs[l][k0 - f0:k1 - f0])
    return {l: torch.cat(parts[l]) for l in layers}


def hf_state_dict(model, prefix=""):
    """The module's tensors under Hugging Face names (float32 numpy), optional prefix."""
    return {prefix + k: v.detach().numpy().astype("float32") for k, v in model.state_dict().items()}


def hf_metadata(cfg):
    """The configuration as safetensors metadata (Hugging Face config.json names, strings)."""
    return {"num_hidden_layers": str(cfg["num_hidden_layers"]),
            "conv_stride": str(list(cfg["conv_stride"])),
            "feat_extract_norm": cfg["feat_extract_norm"],
            "do_stable_layer_norm": str(bool(cfg["do_stable_layer_norm"])).lower(),
            "max_bucket_distance": str(cfg["max_bucket_distance"]),
            "layer_norm_eps": repr(cfg["layer_norm_eps"]),
            "normalize": str(bool(cfg["normalize"])).lower()}
