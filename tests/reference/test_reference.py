"""Self-checks of the PyTorch reference (sdumc_ref.py), the golden fixtures, tools/safetensors_np.py and
tools/pt2safetensors.py. Prints one PASS/FAIL/SKIP line per check; exits 1 if any check failed.

    /usr/bin/python3 tests/reference/test_reference.py      (from anywhere; paths are repo-relative)
"""
import contextlib
import copy
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL_MD = os.path.join(REPO, "docs", "MODEL.md")
GOLDEN_DIR = os.path.join(REPO, "tests", "fixtures", "golden")
PT2ST = os.path.join(REPO, "tools", "pt2safetensors.py")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))

import make_golden  # noqa: E402
import safetensors_np as stnp  # noqa: E402
import sdumc_ref  # noqa: E402
from sdumc_ref import SDUMCRef  # noqa: E402

MOSEI_DIMS = (1024, 4096, 1024)
PAPER = sdumc_ref.preset_weights("paper")
UNUSED_PREFIXES = ("fc_out_e.", "fc_out_ev.", "prelu.", "layer_normali.")
MIA_PREFIXES = ("missing_text_imagination_mlp.", "missing_cross_text_query_imagination_mlp.")

results = {"PASS": 0, "FAIL": 0, "SKIP": 0}


class Skip(Exception):
    pass


def check(name):
    """Decorator: runs the function now; AssertionError -> FAIL, Skip -> SKIP, other error -> FAIL."""
    def run(fn):
        try:
            detail = fn()
            print(f"PASS {name}" + (f": {detail}" if detail else ""))
            results["PASS"] += 1
        except Skip as e:
            print(f"SKIP {name}: {e}")
            results["SKIP"] += 1
        except AssertionError as e:
            print(f"FAIL {name}: {e}")
            results["FAIL"] += 1
        except Exception:
            print(f"FAIL {name}: exception")
            traceback.print_exc(file=sys.stdout)
            results["FAIL"] += 1
        return fn
    return run


def max_abs(a, b):
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


def random_batch(dims, lens, seed, dtype=torch.float64):
    """lens: dict audio/text/video/sim -> list of lengths. Zero-padded batch dict."""
    g = torch.Generator().manual_seed(seed)
    fd = {"audio": dims[0], "text": dims[1], "video": dims[2], "sim": dims[1]}
    batch = {}
    for k, ls in lens.items():
        x = torch.randn(len(ls), max(ls), fd[k], generator=g, dtype=dtype)
        for b, n in enumerate(ls):
            x[b, n:] = 0
        batch[k] = x
        batch[k + "_len"] = torch.tensor(ls)
    batch["label"] = (torch.rand(len(lens["audio"]), generator=g, dtype=dtype) * 6 - 3)
    return batch


def forward(model, batch, missing, mia, mask):
    text, tl = (batch["sim"], batch["sim_len"]) if missing else (batch["text"], batch["text_len"])
    return model(batch["audio"], batch["audio_len"], text, tl, batch["video"], batch["video_len"],
                 missing=missing, mia=mia, mask=mask)


def slice_sample(batch, b):
    """Sample b alone, cut to its own lengths (no padding)."""
    out = {}
    for k in ("audio", "text", "video", "sim"):
        n = int(batch[k + "_len"][b])
        out[k] = batch[k][b:b + 1, :n]
        out[k + "_len"] = batch[k + "_len"][b:b + 1]
    out["label"] = batch["label"][b:b + 1]
    return out


# ------------------------------------------------------------------------------------------------
# safetensors_np

@check("safetensors_np: F32/F16/F64 round trip, metadata, order, header padding")
def _():
    rng = np.random.default_rng(0)
    tensors = {
        "z.last_in_name_order": rng.standard_normal((3, 5)).astype(np.float32),
        "a.half": rng.standard_normal((7,)).astype(np.float16),
        "m.double": rng.standard_normal((2, 1, 3)).astype(np.float64),
        "scalar": np.array(1.5, dtype=np.float32),
        "empty": np.zeros((0, 4), np.float32),
    }
    meta = {"k": "v", "n": "3"}
    buf = stnp.to_bytes(tensors, meta)
    (n,) = struct.unpack("<Q", buf[:8])
    assert n % 8 == 0, f"header length {n} not a multiple of 8"
    header = json.loads(buf[8:8 + n])
    assert list(header)[1:] == list(tensors), f"header order {list(header)}"
    offs = [header[k]["data_offsets"] for k in tensors]
    assert offs[0][0] == 0 and all(offs[i][1] == offs[i + 1][0] for i in range(len(offs) - 1))
    assert [header[k]["dtype"] for k in tensors] == ["F32", "F16", "F64", "F32", "F32"]
    back, meta2 = stnp.read_bytes(buf)
    assert meta2 == meta, meta2
    assert list(back) == list(tensors)
    for k in tensors:
        assert back[k].dtype == tensors[k].dtype and back[k].shape == tensors[k].shape, k
        assert np.array_equal(back[k], tensors[k]), k
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        stnp.write(p, tensors)
        back, meta3 = stnp.read(p)
        assert meta3 == {} and all(np.array_equal(back[k], tensors[k]) for k in tensors)


@check("safetensors_np: BF16 read")
def _():
    vals = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)  # exact in bfloat16
    raw = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
    hdr = json.dumps({"b": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, len(raw)]}}).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    t, _m = stnp.read_bytes(struct.pack("<Q", len(hdr)) + hdr + raw)
    assert t["b"].dtype == np.float32 and np.array_equal(t["b"].ravel(), vals), t["b"]


@check("safetensors_np: rejects truncated data, holes, bad dtype, non-float write")
def _():
    good = stnp.to_bytes({"a": np.ones(4, np.float32), "b": np.ones(2, np.float64)})
    bad = []
    for label, buf in [("truncated", good[:-1]), ("trailing", good + b"\0"), ("short", good[:5])]:
        try:
            stnp.read_bytes(buf)
            bad.append(label)
        except stnp.SafetensorsError:
            pass
    hdr = json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()
    try:
        stnp.read_bytes(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 8)
        bad.append("hole")
    except stnp.SafetensorsError:
        pass
    hdr = json.dumps({"a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    try:
        stnp.read_bytes(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 4)
        bad.append("I32")
    except stnp.SafetensorsError:
        pass
    try:
        stnp.to_bytes({"i": np.ones(2, np.int32)})
        bad.append("int32 write")
    except stnp.SafetensorsError:
        pass
    assert not bad, f"accepted: {bad}"


# ------------------------------------------------------------------------------------------------
# The module's tensors and parameter counts

def appendix_list():
    if not os.path.isfile(MODEL_MD):
        raise AssertionError(f"{MODEL_MD} not found (the specification is part of the repository)")
    text = open(MODEL_MD, encoding="utf-8").read()
    part = text.split("## Appendix", 1)[1]
    block = part.split("```", 2)[1]
    out = []
    for line in block.strip().splitlines():
        m = re.fullmatch(r"\s*(\S+)\s+\[([\d,\s]+)\]\s*", line)
        assert m, f"cannot parse appendix line {line!r}"
        out.append((m.group(1), [int(x) for x in m.group(2).split(",")]))
    return out


MOSEI_MODEL = SDUMCRef(*MOSEI_DIMS)


@check("state_dict at MOSEI dims == MODEL.md appendix (names, shapes, order)")
def _():
    expected = appendix_list()
    got = [(k, list(v.shape)) for k, v in MOSEI_MODEL.state_dict().items()]
    assert len(got) == len(expected), f"{len(got)} tensors, appendix has {len(expected)}"
    for i, (e, g) in enumerate(zip(expected, got)):
        assert e == g, f"entry {i}: appendix {e}, module {g}"
    return f"{len(got)} tensors"


def used_param_count(model, mia):
    """Parameters that receive a gradient of the total loss (paper weights) on a tiny batch."""
    m = copy.deepcopy(model)
    m.eval()
    lens = {"audio": [2, 1], "text": [2, 2], "video": [1, 2], "sim": [2, 1]}
    batch = random_batch(MOSEI_DIMS, lens, 5, dtype=torch.float32)
    m.zero_grad(set_to_none=True)
    _t, total = sdumc_ref.total_loss(m, batch, PAPER, mia=mia, mask=True)
    total.backward()
    names = [n for n, p in m.named_parameters() if p.grad is not None]
    return sum(p.numel() for _n, p in m.named_parameters() if p.grad is not None), names


@check("parameter counts at MOSEI dims: registered 4,268,884, used 3,857,291 (MIA off), 4,268,235 (MIA on)")
def _():
    reg = sum(p.numel() for p in MOSEI_MODEL.parameters())
    off, names_off = used_param_count(MOSEI_MODEL, mia=False)
    on, names_on = used_param_count(MOSEI_MODEL, mia=True)
    assert (reg, off, on) == (4268884, 3857291, 4268235), f"registered {reg}, used off {off}, on {on}"
    assert not [n for n in names_on if n.startswith(UNUSED_PREFIXES)], "an unused tensor got a gradient"
    assert not [n for n in names_off if n.startswith(MIA_PREFIXES)], "MIA got a gradient with MIA off"
    return f"{reg} / {off} / {on}"


@check("forward shapes (hidden 16): pred [B], z [B,8], r [B,4], q_t [B,16], C_t [B,7,8]")
def _():
    torch.manual_seed(0)
    m = SDUMCRef(6, 10, 5, hidden=16).double().eval()
    batch = random_batch((6, 10, 5), make_golden.LENGTHS, 1)
    for missing in (False, True):
        shapes = [tuple(o.shape) for o in forward(m, batch, missing, True, True)]
        assert shapes == [(4,), (4, 8), (4, 4), (4, 16), (4, 7, 8)], shapes


# ------------------------------------------------------------------------------------------------
# Padding

SMALL_DIMS = (6, 10, 5)
# sample 2 has the longest audio/video but short text/sim; the batch pads every modality of sample 1
PAD_LENS = {"audio": [7, 3, 5, 1], "text": [4, 4, 2, 3], "video": [2, 5, 5, 1], "sim": [3, 4, 1, 2]}


def small_model(seed=3, p_mlp=0.0, p_att=0.0):
    torch.manual_seed(seed)
    return SDUMCRef(*SMALL_DIMS, hidden=16, p_mlp=p_mlp, p_att=p_att).double().eval()


@check("mask on: each sample alone == the same sample in the padded batch (both flows, MIA on/off)")
def _():
    m = small_model()
    batch = random_batch(SMALL_DIMS, PAD_LENS, 7)
    worst = 0.0
    with torch.no_grad():
        for mia in (False, True):
            for missing in (False, True):
                full = forward(m, batch, missing, mia, True)
                for b in range(4):
                    alone = forward(m, slice_sample(batch, b), missing, mia, True)
                    for x, y in zip(full, alone):
                        worst = max(worst, max_abs(x[b:b + 1], y))
    assert worst < 1e-12, f"max |alone - batched| = {worst:.3g}"
    return f"max diff {worst:.3g}"


@check("mask off (released behaviour): a padded sample differs alone vs in the batch")
def _():
    m = small_model()
    batch = random_batch(SMALL_DIMS, PAD_LENS, 7)
    with torch.no_grad():
        full = forward(m, batch, False, False, False)
        masked = forward(m, batch, False, False, True)
        alone = forward(m, slice_sample(batch, 3), False, False, False)  # sample 3 is padded everywhere
    d_alone = max_abs(full[0][3:4], alone[0])
    d_mask = max_abs(full[0], masked[0])
    assert d_alone > 1e-6 and d_mask > 1e-6, f"pred diff alone {d_alone:.3g}, vs masked {d_mask:.3g}"
    # ... and without padding anywhere the two modes agree
    nopad = slice_sample(batch, 0)
    with torch.no_grad():
        a = forward(m, nopad, True, True, False)
        b = forward(m, nopad, True, True, True)
    d0 = max(max_abs(x, y) for x, y in zip(a, b))
    assert d0 < 1e-13, f"unpadded sample: mask on/off differ by {d0:.3g}"
    return f"pred diff alone {d_alone:.3g}, vs masked {d_mask:.3g}"


@check("MIA changes only the text-missing flow; dropout active in train mode only")
def _():
    m = small_model()
    batch = random_batch(SMALL_DIMS, PAD_LENS, 8)
    with torch.no_grad():
        f_on, f_off = forward(m, batch, False, True, True), forward(m, batch, False, False, True)
        s_on, s_off = forward(m, batch, True, True, True), forward(m, batch, True, False, True)
    assert max(max_abs(x, y) for x, y in zip(f_on, f_off)) == 0.0, "MIA changed the complete flow"
    assert max_abs(s_on[0], s_off[0]) > 1e-6, "MIA did not change the missing flow"
    md = small_model(p_mlp=0.3, p_att=0.5)
    with torch.no_grad():
        e1, e2 = forward(md, batch, False, True, True), forward(md, batch, False, True, True)
        md.train()
        t1 = forward(md, batch, False, True, True)
    assert max_abs(e1[0], e2[0]) == 0.0 and max_abs(e1[0], t1[0]) > 1e-6


# ------------------------------------------------------------------------------------------------
# Losses

def rnc_naive(feats, labels, t=2.0, tol=1e-4):
    n = feats.shape[0]
    d = [[float(torch.linalg.norm(feats[i] - feats[j])) for j in range(n)] for i in range(n)]
    y = [float(v) for v in labels]
    total = 0.0
    for i in range(n):
        for k in range(n):
            if k == i:
                continue
            s = sum(np.exp(-d[i][j] / t) for j in range(n)
                    if j != i and abs(y[i] - y[j]) >= abs(y[i] - y[k]) - tol)
            total += d[i][k] / t + np.log(s)
    return total / (n * (n - 1))


TIED_LABELS = torch.tensor([-1.25, 0.5, 2.25, 0.5, 0.5 + 5e-5, -3.0], dtype=torch.float64)


@check("rnc_loss == naive triple loop on tied labels (exact ties, symmetric distances, within 1e-4)")
def _():
    g = torch.Generator().manual_seed(11)
    worst = 0.0
    for labels in (TIED_LABELS, torch.cat([TIED_LABELS[:4], TIED_LABELS[:4]])):
        n = labels.shape[0]
        feats = torch.randn(n, 4, generator=g, dtype=torch.float64)
        for chunk in (1, 3, 64):
            got = float(sdumc_ref.rnc_loss(feats, labels, chunk=chunk))
            want = rnc_naive(feats, labels)
            worst = max(worst, abs(got - want) / abs(want))
    assert worst < 1e-13, f"rel diff {worst:.3g}"
    # the tie tolerance matters: without it a different value
    feats = torch.randn(6, 4, generator=g, dtype=torch.float64)
    a = float(sdumc_ref.rnc_loss(feats, TIED_LABELS))
    b = float(sdumc_ref.rnc_loss(feats, TIED_LABELS, tol=0.0))
    assert abs(a - b) > 1e-6, "tie tolerance has no effect on this case"
    return f"rel diff {worst:.3g}"


@check("rnc_loss: torch.autograd.gradcheck in double; MODEL.md closed-form gradient == autograd")
def _():
    g = torch.Generator().manual_seed(12)
    feats = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    ok = torch.autograd.gradcheck(lambda f: sdumc_ref.rnc_loss(f, TIED_LABELS), (feats,),
                                  eps=1e-6, atol=1e-9, rtol=1e-7)
    assert ok
    # a duplicated row (d_ij = 0) must give a finite gradient
    f2 = feats.detach().clone()
    f2[3] = f2[1]
    f2.requires_grad_(True)
    sdumc_ref.rnc_loss(f2, TIED_LABELS).backward()
    assert torch.isfinite(f2.grad).all(), "non-finite gradient at d_ij = 0"
    ga = torch.autograd.grad(sdumc_ref.rnc_loss(feats, TIED_LABELS), feats)[0]
    gc = sdumc_ref.rnc_grad_closed_form(feats.detach(), TIED_LABELS)
    err = max_abs(ga, gc) / float(ga.abs().max())
    assert err < 1e-12, f"closed form vs autograd rel {err:.3g}"
    return f"closed form rel diff {err:.3g}"


@check("total_loss: weighted sum, stop-gradient of q0/c0 (tf, tq), z-alignment into both flows")
def _():
    m = small_model()
    batch = random_batch(SMALL_DIMS, PAD_LENS, 9)
    terms, total = sdumc_ref.total_loss(m, batch, PAPER, mia=True, mask=True)
    s = sum(PAPER[k] * float(terms[k]) for k in sdumc_ref.LOSS_TERMS)
    assert abs(s - float(total)) < 1e-13, f"{s} vs {float(total)}"

    def grads(loss):
        m.zero_grad(set_to_none=True)
        loss.backward()
        return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

    def only(name):
        w = {k: 0.0 for k in sdumc_ref.LOSS_TERMS}
        w[name] = 1.0
        return sdumc_ref.total_loss(m, batch, w, mia=True, mask=True)[1]

    idx = {"tf": 3, "tq": 4, "f": 1}
    for name in ("tf", "tq", "f"):
        i = idx[name]

        def manual(detach):
            o0, o1 = sdumc_ref.run_flows(m, batch, True, True)
            a, b = o1[i].flatten(1), o0[i].flatten(1)
            return sdumc_ref.rmse(a, b.detach() if detach else b)

        g = grads(only(name))
        g_det, g_both = grads(manual(True)), grads(manual(False))
        want, other = (g_det, g_both) if name != "f" else (g_both, g_det)
        assert set(g) == set(want), f"{name}: gradient set differs"
        d = max(max_abs(g[k], want[k]) for k in g)
        d_other = max(max_abs(g[k], other[k]) for k in g)
        assert d < 1e-14 and d_other > 1e-8, f"{name}: diff {d:.3g}, vs other variant {d_other:.3g}"
    # a zero weight removes the term from the graph
    w = dict(PAPER, rnc=0.0)
    _t, tot = sdumc_ref.total_loss(m, batch, w, mia=True, mask=True)
    gz = grads(tot)
    assert not any(n.startswith("orgin_linear_change.") for n in gz), "w_rnc = 0 still reaches the RnC head"


@check("train_step: one Adam step changes exactly the parameters with a gradient")
def _():
    m = small_model(p_mlp=0.3, p_att=0.5).float()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    opt = sdumc_ref.make_optimizer(m, lr=1e-3)
    batch = random_batch(SMALL_DIMS, PAD_LENS, 10, dtype=torch.float32)
    terms, total = sdumc_ref.train_step(m, opt, batch, PAPER, mia=False, mask=True)
    assert np.isfinite(total) and set(terms) == set(sdumc_ref.LOSS_TERMS)
    changed = {n for n, p in m.named_parameters() if not torch.equal(p, before[n])}
    expect = {n for n, _p in m.named_parameters() if not n.startswith(UNUSED_PREFIXES + MIA_PREFIXES)}
    assert changed == expect, f"changed-but-unexpected {changed - expect}, unchanged {expect - changed}"
    assert sdumc_ref.lr_factor(0) == 0.2 and sdumc_ref.lr_factor(4) == 1.0
    assert sdumc_ref.lr_factor(13) == 1.0 and abs(sdumc_ref.lr_factor(14) - 0.9) < 1e-15


# ------------------------------------------------------------------------------------------------
# Golden fixtures

GOLDEN_NAMES = [f"golden_mia{a}_mask{b}.safetensors" for a in (0, 1) for b in (0, 1)]


@check("golden fixtures: present, < 1 MiB in all, tensor sets as documented")
def _():
    total = 0
    for fname in GOLDEN_NAMES:
        path = os.path.join(GOLDEN_DIR, fname)
        assert os.path.isfile(path), f"{path} missing (run tests/reference/make_golden.py)"
        total += os.path.getsize(path)
        t, meta = stnp.read(path)
        mia = meta["mia"] == "1"
        params = [k[6:] for k in t if k.startswith("param.")]
        grads = [k[5:] for k in t if k.startswith("grad.")]
        adams = [k[5:] for k in t if k.startswith("adam.")]
        torch.manual_seed(0)
        ref_names = list(SDUMCRef(6, 10, 5, hidden=16).state_dict())
        assert params == ref_names, f"{fname}: param list differs from the state_dict"
        want = [n for n in ref_names if not n.startswith(UNUSED_PREFIXES)
                and (mia or not n.startswith(MIA_PREFIXES))]
        assert grads == want and adams == want, f"{fname}: grad/adam set differs"
        for k in ("in.audio", "in.text", "in.video", "in.sim", "in.label", "param.fc_att.weight"):
            assert t[k].dtype == np.float32, k
        for k in ("out.full.c_t", "loss.total", "grad.fc_att.weight", "adam.fc_att.weight"):
            assert t[k].dtype == np.float64, k
        assert t["out.miss.c_t"].shape == (4, 7, 8) and t["loss.rnc"].shape == (1,)
        s = sum(float(meta["w_" + k]) * float(t["loss." + k][0]) for k in sdumc_ref.LOSS_TERMS)
        assert abs(s - float(t["loss.total"][0])) < 1e-14, f"{fname}: loss.total is not the weighted sum"
    assert total < 1024 * 1024, f"{total} bytes"
    return f"{total} bytes"


@check("golden fixtures: regenerated now == committed (rel 1e-12), and the fixture replays")
def _():
    with tempfile.TemporaryDirectory() as d:
        with contextlib.redirect_stdout(io.StringIO()):
            make_golden.main(["--out-dir", d])
        worst = 0.0
        for fname in GOLDEN_NAMES:
            new, meta_new = stnp.read(os.path.join(d, fname))
            old, meta_old = stnp.read(os.path.join(GOLDEN_DIR, fname))
            assert list(new) == list(old), f"{fname}: tensor list changed"
            for k in new:
                scale = max(1.0, float(np.abs(old[k]).max(initial=0.0)))
                worst = max(worst, float(np.abs(new[k] - old[k]).max(initial=0.0)) / scale)
            # replay: load the fixture's params and inputs into a fresh module, recompute outputs
            m = SDUMCRef(int(meta_old["dim_a"]), int(meta_old["dim_t"]), int(meta_old["dim_v"]),
                         hidden=int(meta_old["hidden"]), p_mlp=0.0, p_att=0.0)
            m.load_state_dict({k[6:]: torch.from_numpy(v) for k, v in old.items() if k.startswith("param.")},
                              strict=True)
            m = m.double().eval()
            batch = {}
            for k in ("audio", "text", "video", "sim", "label"):
                batch[k] = torch.from_numpy(old["in." + k]).double()
            for k in ("audio", "text", "video", "sim"):
                batch[k + "_len"] = torch.from_numpy(old[f"in.{k}_len"]).long()
            mia, mask = meta_old["mia"] == "1", meta_old["mask"] == "1"
            with torch.no_grad():
                o0, o1 = sdumc_ref.run_flows(m, batch, mia, mask)
            for flow, o in (("full", o0), ("miss", o1)):
                for name, x in zip(make_golden.OUTPUTS, o):
                    worst = max(worst, max_abs(x, torch.from_numpy(old[f"out.{flow}.{name}"])))
    assert worst < 1e-12, f"max rel diff {worst:.3g}"
    return f"max rel diff {worst:.3g}"


# ------------------------------------------------------------------------------------------------
# pt2safetensors

def run_pt2st(*args):
    return subprocess.run([sys.executable, PT2ST, *args], capture_output=True, text=True)


@check("pt2safetensors: bare, {'state_dict': module.-prefixed}, {'model': ...} -> equal tensors")
def _():
    torch.manual_seed(4)
    m = SDUMCRef(6, 10, 5, hidden=16)
    sd = m.state_dict()
    cases = {
        "bare.pt": sd,
        "dp.pt": {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3},
        "model.pt": {"model": sd, "optimizer_name": "adam"},
        "double.pt": {k: v.double() for k, v in sd.items()},
    }
    with tempfile.TemporaryDirectory() as d:
        for fname, obj in cases.items():
            src, dst = os.path.join(d, fname), os.path.join(d, fname + ".safetensors")
            torch.save(obj, src)
            r = run_pt2st(src, dst)
            assert r.returncode == 0, f"{fname}: exit {r.returncode}: {r.stderr}"
            t, meta = stnp.read(dst)
            assert meta == {"source": "pt2safetensors", "source_file": fname}, meta
            assert list(t) == list(sd), f"{fname}: names/order differ"
            for k, v in sd.items():
                assert t[k].dtype == np.float32 and np.array_equal(t[k], v.float().numpy()), f"{fname}: {k}"
            # and the module loads it back strictly
            m2 = SDUMCRef(6, 10, 5, hidden=16)
            m2.load_state_dict({k: torch.from_numpy(v) for k, v in t.items()}, strict=True)


@check("pt2safetensors: missing file, no tensors, bad usage -> clear error and non-zero exit")
def _():
    with tempfile.TemporaryDirectory() as d:
        r = run_pt2st(os.path.join(d, "nope.pt"), os.path.join(d, "o.safetensors"))
        assert r.returncode != 0 and "nope.pt: no such file" in r.stderr, (r.returncode, r.stderr)
        empty = os.path.join(d, "empty.pt")
        torch.save({"epoch": 3, "state_dict": {}}, empty)
        r = run_pt2st(empty, os.path.join(d, "o.safetensors"))
        assert r.returncode != 0 and "holds no tensors" in r.stderr, (r.returncode, r.stderr)
        junk = os.path.join(d, "junk.pt")
        with open(junk, "wb") as f:
            f.write(b"not a checkpoint")
        r = run_pt2st(junk, os.path.join(d, "o.safetensors"))
        assert r.returncode != 0 and "cannot load" in r.stderr, (r.returncode, r.stderr)
        assert not os.path.exists(os.path.join(d, "o.safetensors"))
        r = run_pt2st(empty)
        assert r.returncode != 0 and "Usage" not in r.stdout, r.returncode
        assert "pt2safetensors.py IN.pt OUT.safetensors" in r.stderr, f"no usage on stderr: {r.stderr!r}"


@check("pt2safetensors --mia on|off: sdumc metadata with dims, hidden and the choice; errors named")
def _():
    torch.manual_seed(5)
    m = SDUMCRef(6, 10, 5, hidden=16)
    sd = m.state_dict()
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "ckpt.pt")
        torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, src)
        for choice in ("on", "off"):
            dst = os.path.join(d, choice + ".safetensors")
            r = run_pt2st(src, dst, "--mia", choice)
            assert r.returncode == 0, (r.returncode, r.stderr)
            t, meta = stnp.read(dst)
            want = {"source": "pt2safetensors", "source_file": "ckpt.pt", "format": "sdumc", "dim_audio": "6",
                    "dim_text": "10", "dim_video": "5", "hidden": "16", "mia": "1" if choice == "on" else "0",
                    "mask": "1", "preset": "imported"}
            assert meta == want, meta
            assert list(t) == list(sd)
        bad = os.path.join(d, "bad.safetensors")
        r = run_pt2st(src, bad, "--mia", "maybe")
        assert r.returncode != 0 and "--mia takes on or off" in r.stderr, r.stderr
        no_mia = os.path.join(d, "nomia.pt")
        torch.save({k: v for k, v in sd.items() if "imagination" not in k}, no_mia)
        r = run_pt2st(no_mia, bad, "--mia", "on")
        assert r.returncode != 0 and "has no MIA tensors" in r.stderr, r.stderr
        r = run_pt2st(no_mia, bad, "--mia", "off")
        assert r.returncode == 0, r.stderr
        other = os.path.join(d, "other.pt")
        torch.save({"w": torch.zeros(2, 2)}, other)
        r = run_pt2st(other, bad + "2", "--mia", "off")
        assert r.returncode != 0 and "frame_dim_reshape_0.weight" in r.stderr, r.stderr
        assert not os.path.exists(bad + "2")


if __name__ == "__main__":
    print(f"{results['PASS']} passed, {results['FAIL']} failed, {results['SKIP']} skipped")
    sys.exit(1 if results["FAIL"] else 0)
