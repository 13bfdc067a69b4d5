#!/usr/bin/python3
"""Reference baselines for a dataset folder (the layout of docs/DATASET.md), independent of sdumc:
predicting the training mean, and ridge regression on mean-pooled features (per utterance and
modality the mean of its frames, NaN/Inf read as 0; pooled features standardised with the train
split's statistics; intercept unpenalised; the penalty chosen on the valid split's MAE from
10^-2 .. 10^4). Prints one JSON object: {"train_mean": {"valid": MAE, "test": MAE},
"ridge_text": {...}, "ridge_all": {...}} (ridge_all: audio, text and video pooled side by side).

    pooled_baselines.py DATA
"""
import csv
import json
import os
import sys

import numpy as np


def pooled(data, folder, name):
    x = np.load(os.path.join(data, folder, name + ".npy")).astype(np.float64)
    x = np.where(np.isfinite(x), x, 0.0).reshape(-1, x.shape[-1])
    return x.mean(axis=0)


def ridge_mae(X, y, split, lam):
    tr = split == "train"
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd[sd == 0] = 1.0
    Z = (X - mu) / sd
    A = np.c_[np.ones(len(Z)), Z]
    P = lam * np.eye(A.shape[1])
    P[0, 0] = 0.0
    w = np.linalg.solve(A[tr].T @ A[tr] + P, A[tr].T @ y[tr])
    p = A @ w
    return {s: float(np.mean(np.abs(p[split == s] - y[split == s]))) for s in ("valid", "test")}


def main():
    data = sys.argv[1]
    rows = list(csv.DictReader(open(os.path.join(data, "labels.csv"))))
    names = [r["name"] for r in rows]
    y = np.array([float(r["label"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    feats = {m: np.stack([pooled(data, m, n) for n in names]) for m in ("audio", "text", "video")}
    out = {"train_mean": {s: float(np.mean(np.abs(y[split == "train"].mean() - y[split == s])))
                          for s in ("valid", "test")}}
    for key, X in (("ridge_text", feats["text"]), ("ridge_all", np.hstack([feats[m] for m in ("audio", "text", "video")]))):
        fits = [ridge_mae(X, y, split, 10.0 ** e) for e in range(-2, 5)]
        out[key] = min(fits, key=lambda f: f["valid"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
