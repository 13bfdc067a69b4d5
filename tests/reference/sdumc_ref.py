"""Independent PyTorch reference of the SDUMC network, its losses and one training step.

Written from the specification in docs/MODEL.md (sections 1-5 and the appendix) only; it is the oracle the C
implementation is tested against (tests/reference/make_golden.py writes the golden fixtures from it).

Dimension letters: B batch, T frames (per modality, padded to the batch maximum), D_a/D_t/D_v input
feature dims, H hidden (256 in MODEL.md), C = H/2 cross dim (128), R = H/4 RnC dim (64), Q = 7 query
views.

With hidden=256 the state_dict is exactly the appendix list of MODEL.md (names, shapes, order),
including the registered but unused tensors (fc_out_e, fc_out_ev, prelu, layer_normali) and both MIA
modules (used only in the text-missing flow when MIA is on).
"""
import math

import torch
import torch.nn as nn

POOL_SCALE = 0.3     # attention pooling: softmax(0.3 * s)
CROSS_SCALE = 0.3    # UMCA: softmax(0.3 * K Q'^T), no 1/sqrt(d)
RNC_TEMPERATURE = 2.0
RNC_TIE_TOL = 1e-4
N_QUERIES = 7

LOSS_TERMS = ("full", "miss", "tf", "tq", "f", "rnc")
PRESETS = {
    "paper": dict(mia=True, w_full=0.5, w_miss=0.5, w_tf=0.1, w_tq=0.7, w_f=0.13, w_rnc=0.5),
    "release": dict(mia=False, w_full=0.5, w_miss=0.5, w_tf=0.0, w_tq=0.0, w_f=0.13, w_rnc=0.5),
}


def preset_weights(name):
    """Loss weights of a MODEL.md preset as {"full": .., "miss": .., "tf": .., "tq": .., "f": .., "rnc": ..}."""
    p = PRESETS[name]
    return {k: p["w_" + k] for k in LOSS_TERMS}


def mlp(d_in, dims, p):
    """MODEL.md MLP(in, "d1,d2,..."): for each d, Linear -> ReLU -> Dropout(p), the last one included."""
    layers = []
    for d in dims:
        layers += [nn.Linear(d_in, d), nn.ReLU(), nn.Dropout(p)]
        d_in = d
    return nn.Sequential(*layers)


def frame_mask(lengths, t_max):
    """[B] lengths -> [B, T] bool, True on valid frames."""
    return torch.arange(t_max, device=lengths.device)[None, :] < lengths.long()[:, None]


class AttentionPooling(nn.Module):
    """fra2utt_i: MODEL.md step 2. [B,T,H] frames -> [B,H] utterance vector."""

    def __init__(self, hidden, p_att):
        super().__init__()
        self.attention_context_vector = nn.Parameter(torch.empty(1, hidden))  # c [1,H]
        self.input_proj = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(p_att)
        # MODEL.md: c ~ N(0, 2/(1+H)) (variance; the same as xavier_normal_ on a [1,H] tensor).
        nn.init.normal_(self.attention_context_vector, 0.0, math.sqrt(2.0 / (1 + hidden)))

    def forward(self, x, valid=None):
        # x [B,T,H]; valid [B,T] bool or None (no mask: every frame takes part)
        x = self.drop(x)
        p = torch.tanh(self.input_proj(x))                   # [B,T,H]
        s = POOL_SCALE * (p @ self.attention_context_vector[0])  # [B,T]
        if valid is not None:
            s = s.masked_fill(~valid, float("-inf"))
        alpha = torch.softmax(s, dim=1)                      # [B,T]
        u = (alpha.unsqueeze(-1) * x).sum(dim=1)             # [B,H]
        return self.drop(u)


class CrossAttention(nn.Module):
    """cross_att_fra2utt_i: MODEL.md step 7 (UMCA). Q [B,7,H], frames [B,T,H] -> [B,7,H]."""

    def __init__(self, hidden, p_att):
        super().__init__()
        self.query_proj = nn.Linear(hidden, hidden)
        self.input_proj = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(p_att)

    def forward(self, q, x, valid=None):
        x = self.drop(x)                                     # [B,T,H]
        k = torch.tanh(self.input_proj(x))                   # [B,T,H]
        qp = self.query_proj(q)                              # [B,7,H]
        s = CROSS_SCALE * (k @ qp.transpose(1, 2))           # [B,T,7]
        if valid is not None:
            s = s.masked_fill(~valid.unsqueeze(-1), float("-inf"))
        a = torch.softmax(s, dim=1)                          # [B,T,7], per query over time
        o = a.transpose(1, 2) @ x                            # [B,7,H]
        return self.drop(o)


class MIA(nn.Module):
    """Modality Imagination Autoencoder (MODEL.md section 3), dim D, latent L, no dropout."""

    def __init__(self, d, latent):
        super().__init__()
        self.transition = nn.Sequential(nn.Linear(3 * d, d), nn.ReLU(), nn.Linear(d, d))
        self.encoder_0 = nn.Sequential(nn.Linear(d, latent))
        self.decoder_0 = nn.Sequential(nn.Linear(latent, d))

    def forward(self, x_a, x_t, x_v):
        # [..,D] x3 -> [..,D]; residual on x_t
        x_in = self.transition(torch.cat([x_a, x_t, x_v], dim=-1))
        return self.decoder_0(self.encoder_0(x_in)) + x_t


class SDUMCRef(nn.Module):
    def __init__(self, dim_a, dim_t, dim_v, hidden=256, p_mlp=0.3, p_att=0.5):
        super().__init__()
        if hidden % 4 != 0:
            raise ValueError(f"hidden must be a multiple of 4, got {hidden}")
        h, c, r = hidden, hidden // 2, hidden // 4
        self.hidden, self.cross_dim, self.rnc_dim = h, c, r
        # Registration order == the appendix's state_dict order.
        self.frame_dim_reshape_0 = nn.Linear(dim_a, h)
        self.frame_dim_reshape_1 = nn.Linear(dim_t, h)
        self.frame_dim_reshape_2 = nn.Linear(dim_v, h)
        self.missing_text_imagination_mlp = MIA(h, c)
        self.missing_cross_text_query_imagination_mlp = MIA(c, r)
        self.fra2utt_0 = AttentionPooling(h, p_att)
        self.fra2utt_1 = AttentionPooling(h, p_att)
        self.fra2utt_2 = AttentionPooling(h, p_att)
        self.audio_mlp = mlp(h, (h, h), p_mlp)
        self.text_mlp = mlp(h, (h, h), p_mlp)
        self.video_mlp = mlp(h, (h, h), p_mlp)
        self.attention_mlp = mlp(3 * h, (h, h), p_mlp)
        self.fc_att = nn.Linear(h, 3)
        self.cross_fused_query_mlp = mlp(h, (h,), p_mlp)
        self.cross_at_query_mlp = mlp(h, (h,), p_mlp)
        self.cross_tv_query_mlp = mlp(h, (h,), p_mlp)
        self.cross_av_query_mlp = mlp(h, (h,), p_mlp)
        self.cross_audio_query_mlp = mlp(h, (h,), p_mlp)
        self.cross_text_query_mlp = mlp(h, (h,), p_mlp)
        self.cross_video_query_mlp = mlp(h, (h,), p_mlp)
        self.cross_att_fra2utt_0 = CrossAttention(h, p_att)
        self.cross_att_fra2utt_1 = CrossAttention(h, p_att)
        self.cross_att_fra2utt_2 = CrossAttention(h, p_att)
        self.cross_audio_mlp = mlp(h, (h, c), p_mlp)
        self.cross_text_mlp = mlp(h, (h, c), p_mlp)
        self.cross_video_mlp = mlp(h, (h, c), p_mlp)
        self.cross_attention_mlp = mlp(N_QUERIES * c, (h, c), p_mlp)
        self.cross_fc_att = nn.Linear(c, N_QUERIES)
        self.fc_out_e = nn.Linear(c, 1)          # registered, unused
        self.fc_out_v = nn.Linear(c, 1)
        self.fc_out_ev = nn.Linear(1, 1)         # registered, unused
        self.orgin_linear_change = nn.Sequential(nn.Linear(c, r), nn.ReLU(), nn.Linear(r, r))
        self.prelu = nn.PReLU(6)                 # registered, unused
        self.layer_normali = nn.LayerNorm(h)     # registered, unused

    def forward(self, audio, audio_len, text, text_len, video, video_len,
                missing=False, mia=False, mask=True):
        """audio [B,T_a,D_a], text [B,T_t,D_t], video [B,T_v,D_v], right-padded with zeros; *_len [B].
        missing: this is the text-missing flow (text holds the simulated text); MIA runs only when
        missing and mia. mask: padded frames get no attention weight; False reproduces the released
        code (every frame, padded included, takes part).
        Returns pred [B], z [B,C], r [B,R], q_t [B,H], C_t [B,7,C]."""
        use_mia = missing and mia
        va = frame_mask(audio_len, audio.shape[1]) if mask else None
        vt = frame_mask(text_len, text.shape[1]) if mask else None
        vv = frame_mask(video_len, video.shape[1]) if mask else None

        # 1. frame projection, no activation: [B,T,H]
        a = self.frame_dim_reshape_0(audio)
        t = self.frame_dim_reshape_1(text)
        v = self.frame_dim_reshape_2(video)
        # 2-3. pooling and per-modality MLPs: [B,H]
        h_a = self.audio_mlp(self.fra2utt_0(a, va))
        h_t = self.text_mlp(self.fra2utt_1(t, vt))
        h_v = self.video_mlp(self.fra2utt_2(v, vv))
        if use_mia:  # 3b
            h_t = self.missing_text_imagination_mlp(h_a, h_t, h_v)
        # 4. raw modality weights [B,3]
        w = self.fc_att(self.attention_mlp(torch.cat([h_a, h_t, h_v], dim=-1)))
        w_a, w_t, w_v = w[:, 0:1], w[:, 1:2], w[:, 2:3]
        # 5. fused vectors [B,H]
        f = w_a * h_a + w_t * h_t + w_v * h_v
        f_at = w_a * h_a + w_t * h_t
        f_tv = w_t * h_t + w_v * h_v
        f_av = w_a * h_a + w_v * h_v
        # 6. seven query views, stacked in this order: Q [B,7,H]
        q_t = self.cross_text_query_mlp(h_t)
        q = torch.stack([
            self.cross_fused_query_mlp(f),
            self.cross_at_query_mlp(f_at),
            self.cross_tv_query_mlp(f_tv),
            self.cross_av_query_mlp(f_av),
            self.cross_audio_query_mlp(h_a),
            q_t,
            self.cross_video_query_mlp(h_v),
        ], dim=1)
        # 7-8. UMCA per modality, then per-row MLPs: [B,7,C]
        c_a = self.cross_audio_mlp(self.cross_att_fra2utt_0(q, a, va))
        c_t = self.cross_text_mlp(self.cross_att_fra2utt_1(q, t, vt))
        c_v = self.cross_video_mlp(self.cross_att_fra2utt_2(q, v, vv))
        if use_mia:  # 8b
            c_t = self.missing_cross_text_query_imagination_mlp(c_a, c_t, c_v)
        # 9. weighted sum with the step-4 weights [B,7,C]
        wsum = w_a.unsqueeze(-1) * c_a + w_t.unsqueeze(-1) * c_t + w_v.unsqueeze(-1) * c_v
        # 10. raw query weights [B,7]
        beta = self.cross_fc_att(self.cross_attention_mlp(wsum.flatten(1)))
        # 11. fused representation [B,C]
        z = (beta.unsqueeze(-1) * wsum).sum(dim=1)
        # 12-13. prediction [B] and RnC head [B,R]
        pred = self.fc_out_v(z).squeeze(-1)
        r = self.orgin_linear_change(z)
        return pred, z, r, q_t, c_t


# ---------------------------------------------------------------------------------------------
# Losses (MODEL.md section 4)

def mse(pred, target):
    return ((pred - target) ** 2).mean()


def rmse(a, b):
    """sqrt(mean over all elements of (a-b)^2)."""
    return torch.sqrt(((a - b) ** 2).mean())


def _safe_dist(diff):
    """||diff|| over the last axis, with gradient 0 (not NaN) where the distance is 0."""
    sq = (diff * diff).sum(-1)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def rnc_loss(feats, labels, t=RNC_TEMPERATURE, tol=RNC_TIE_TOL, chunk=64):
    """Rank-N-Contrast, MODEL.md section 4, straight from the formula (autograd gives the gradient).
    feats [n,R], labels [n]. L = 1/(n(n-1)) sum_i sum_{k!=i} [ d_ik/t + log sum_{j in N_ik} exp(-d_ij/t) ],
    N_ik = { j != i : |Y_i - Y_j| >= |Y_i - Y_k| - tol }. Rows i are processed in chunks, so memory is
    O(chunk * n^2), not O(n^3)."""
    n = feats.shape[0]
    d = _safe_dist(feats[:, None, :] - feats[None, :, :])       # [n,n]
    ld = (labels[:, None] - labels[None, :]).abs()               # [n,n] label distance
    eye = torch.eye(n, dtype=torch.bool, device=feats.device)
    logits = -d / t                                             # [n,n]
    total = feats.new_zeros(())
    for i0 in range(0, n, chunk):
        i1 = min(n, i0 + chunk)
        # in_set[i,k,j]: j in N_ik
        in_set = (ld[i0:i1, None, :] >= ld[i0:i1, :, None] - tol) & ~eye[i0:i1, None, :]
        lg = logits[i0:i1, None, :].expand(-1, n, -1).masked_fill(~in_set, float("-inf"))
        log_s = torch.logsumexp(lg, dim=-1)                     # [c,n] (i,k)
        term = d[i0:i1] / t + log_s                             # [c,n]
        # k == i excluded (there N_ii may be the whole row; the formula skips it)
        term = term.masked_fill(eye[i0:i1], 0.0)
        total = total + term.sum()
    return total / (n * (n - 1))


def rnc_grad_closed_form(feats, labels, t=RNC_TEMPERATURE, tol=RNC_TIE_TOL):
    """The gradient MODEL.md gives for rnc_loss (no autograd), [n,R]. Used to check the doc's formula."""
    n = feats.shape[0]
    diff = feats[:, None, :] - feats[None, :, :]
    d = diff.norm(dim=-1)
    ld = (labels[:, None] - labels[None, :]).abs()
    e = torch.exp(-d / t)
    g = torch.zeros(n, n, dtype=feats.dtype)
    for i in range(n):
        s = {}
        for k in range(n):
            if k != i:
                s[k] = sum(e[i, j] for j in range(n) if j != i and ld[i, j] >= ld[i, k] - tol)
        for j in range(n):
            if j == i:
                continue
            acc = sum(e[i, j] / s[k] for k in range(n) if k != i and ld[i, j] >= ld[i, k] - tol)
            g[i, j] = (1.0 / t) / (n * (n - 1)) * (1.0 - acc)
    gs = g + g.T
    unit = torch.where(d[..., None] > 0, diff / d.clamp_min(1e-300)[..., None], torch.zeros_like(diff))
    return (gs[..., None] * unit).sum(dim=1)


def run_flows(model, batch, mia, mask):
    """Complete flow (real text) and text-missing flow (simulated text). Returns two 5-tuples."""
    out0 = model(batch["audio"], batch["audio_len"], batch["text"], batch["text_len"],
                 batch["video"], batch["video_len"], missing=False, mia=mia, mask=mask)
    out1 = model(batch["audio"], batch["audio_len"], batch["sim"], batch["sim_len"],
                 batch["video"], batch["video_len"], missing=True, mia=mia, mask=mask)
    return out0, out1


def total_loss(model, batch, weights, mia, mask, outs=None):
    """The six terms of MODEL.md section 4 and their weighted sum.
    batch: dict audio, audio_len, text, text_len, video, video_len, sim, sim_len, label.
    weights: dict full, miss, tf, tq, f, rnc. A term with weight 0 is left out of the sum and out of
    the graph (its value is still reported, computed without gradient).
    Returns (terms: dict name -> 0-d tensor, total: 0-d tensor)."""
    (y0, z0, r0, q0, c0), (y1, z1, r1, q1, c1) = outs if outs is not None else run_flows(model, batch, mia, mask)
    y = batch["label"]
    makers = {
        "full": lambda: mse(y0, y),
        "miss": lambda: mse(y1, y),
        "tf": lambda: rmse(q1, q0.detach()),                    # text-query distillation
        "tq": lambda: rmse(c1.flatten(1), c0.detach().flatten(1)),  # text cross-attention distillation
        "f": lambda: rmse(z1, z0),                              # gradient into both flows
        "rnc": lambda: rnc_loss(torch.cat([r0, r1], 0), torch.cat([y, y], 0)),
    }
    terms = {}
    total = None
    for name in LOSS_TERMS:
        wgt = float(weights[name])
        if wgt == 0.0:
            with torch.no_grad():
                terms[name] = makers[name]()
            continue
        terms[name] = makers[name]()
        total = wgt * terms[name] if total is None else total + wgt * terms[name]
    if total is None:
        total = y0.new_zeros(())
    return terms, total


# ---------------------------------------------------------------------------------------------
# Optimiser and one training step (for benchmarks and fixtures)

def make_optimizer(model, lr=1e-4, weight_decay=1e-5):
    """Classic Adam with L2 decay added to the gradient; params with no gradient are left alone."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=weight_decay)


def lr_factor(epoch):
    """Per-epoch LR factor, 0-based epoch: (e+1)/5 for e < 5, else 0.9 ** ((e+1-5) // 10)."""
    return (epoch + 1) / 5.0 if epoch < 5 else 0.9 ** ((epoch + 1 - 5) // 10)


def train_step(model, optimizer, batch, weights=None, mia=True, mask=True):
    """Both flows, six losses, backward, one Adam step. Returns (terms as floats, total as float)."""
    if weights is None:
        weights = preset_weights("paper")
    model.train()
    optimizer.zero_grad(set_to_none=True)
    terms, total = total_loss(model, batch, weights, mia, mask)
    total.backward()
    optimizer.step()
    return {k: float(v) for k, v in terms.items()}, float(total)
