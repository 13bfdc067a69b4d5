#!/usr/bin/python3
"""Writes tests/fixtures/adam/adam_10steps.txt: 10 steps of torch.optim.Adam (PyTorch 1.13,
float32, CPU, single-tensor path) on a small linear regression, for tests/test_adam.c.

Run from the repository root:  /usr/bin/python3 tests/reference/make_adam_fixture.py

Problem: pred = X w^T + b, loss = mean((pred - y)^2); parameters w [1,3], b [1] and a third
tensor "unused" [2] that never enters the loss (its .grad stays None, Adam must skip it).
Two scenarios, 10 steps each:
  0: lr 0.01, betas, eps and weight decay given as float32-exact values (the ones the C
     float config holds), weight decay 0.1 (large, so L2-in-gradient vs AdamW would show);
  1: the sdumc defaults as Python literals (betas (0.9, 0.999), eps 1e-8, weight decay 1e-5)
     with lr = 1e-3 * factor(step - 1), factor the epoch schedule of MODEL.md, set on the
     param group before every step.

Format: lines starting with '#' are comments; every other line is a record
  <name> <count> <value> ... (count values, printed with repr, so float32 values are exact)
in this order, per scenario:
  scenario 1 <id>; config 5 <lr> <beta1> <beta2> <eps> <weight_decay>;
  x 24 <X [8,3] row-major>; y 8; init_w 3; init_b 1; init_unused 2;
  then per step: lr 1; loss 1 (before the step); grad_w 3; grad_b 1; w 3; b 1; unused 2
  (parameters after the step).
"""
import os
import sys

import numpy as np
import torch

from sdumc_ref import lr_factor  # the MODEL.md epoch schedule

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "adam",
                   "adam_10steps.txt")


def f32(x):
    return float(np.float32(x))


def record(out, name, values):
    values = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    out.append("%s %d %s" % (name, len(values), " ".join(repr(v) for v in values)))


def scenario(out, sid, lr, betas, eps, wd, lr_of_step):
    g = torch.Generator().manual_seed(1234 + sid)
    X = torch.randn(8, 3, generator=g, dtype=torch.float32)
    y = (X @ torch.tensor([0.7, -1.3, 0.4]) + 0.25 +
         0.1 * torch.randn(8, generator=g)).to(torch.float32)
    w = torch.nn.Parameter(torch.randn(1, 3, generator=g) * 0.5)
    b = torch.nn.Parameter(torch.randn(1, generator=g) * 0.5)
    unused = torch.nn.Parameter(torch.randn(2, generator=g))
    opt = torch.optim.Adam([w, b, unused], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    record(out, "scenario", [sid])
    record(out, "config", [lr, betas[0], betas[1], eps, wd])
    record(out, "x", X.numpy())
    record(out, "y", y.numpy())
    record(out, "init_w", w.detach().numpy())
    record(out, "init_b", b.detach().numpy())
    record(out, "init_unused", unused.detach().numpy())
    for step in range(1, 11):
        step_lr = lr_of_step(step)
        for group in opt.param_groups:
            group["lr"] = step_lr
        opt.zero_grad(set_to_none=True)
        loss = ((X @ w.t()).reshape(-1) + b - y).pow(2).mean()
        loss.backward()
        assert unused.grad is None
        opt.step()
        record(out, "lr", [step_lr])
        record(out, "loss", [loss.item()])
        record(out, "grad_w", w.grad.numpy())
        record(out, "grad_b", b.grad.numpy())
        record(out, "w", w.detach().numpy())
        record(out, "b", b.detach().numpy())
        record(out, "unused", unused.detach().numpy())


def main():
    torch.set_num_threads(1)
    out = ["# Adam fixture for tests/test_adam.c, written by tests/reference/make_adam_fixture.py",
           "# torch %s, numpy %s, float32, CPU, torch.optim.Adam (foreach=False, amsgrad=False)"
           % (torch.__version__, np.__version__),
           "# scenario 0: lr 0.01, betas/eps/wd float32-exact (0.9f, 0.999f, 1e-8f), wd 0.1f",
           "# scenario 1: betas (0.9, 0.999), eps 1e-8, wd 1e-5 (Python literals),"
           " lr = 1e-3 * factor(step-1)",
           "# record: <name> <count> <values...>; see the script for the order"]
    scenario(out, 0, f32(0.01), (f32(0.9), f32(0.999)), f32(1e-8), f32(0.1), lambda s: f32(0.01))
    scenario(out, 1, 1e-3, (0.9, 0.999), 1e-8, 1e-5, lambda s: 1e-3 * lr_factor(s - 1))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
