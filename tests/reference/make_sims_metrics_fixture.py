#!/usr/bin/python3
"""Writes tests/fixtures/metrics/sims_cases.txt: prediction/label cases and MMSA's CH-SIMS regression
metrics (metricsTop.py, __eval_sims_regression), re-implemented here in numpy independently of the
C code, on float32 arrays as MMSA has them (its torch tensors are float32, and numpy compares a
float32 array with a Python float in float32).

    clip predictions and labels to [-1, 1]; classes by bins (lo, hi]:
      Acc-2 edges -1.01, 0, 1.01; Acc-3 -1.01, -0.1, 0.1, 1.01; Acc-5 -1.01, -0.7, -0.1, 0.1, 0.7, 1.01
    accuracy = mean(class(p) == class(y)); F1 = weighted F1 of the Acc-2 classes (sklearn's
    f1_score(average='weighted') written out, as in make_metrics_fixture.py); MAE, Corr on the
    clipped values (MSE, which MMSA does not report, likewise).
Run: /usr/bin/python3 tests/reference/make_sims_metrics_fixture.py
"""
import numpy as np

from make_metrics_fixture import weighted_f1, write_cases


def classes(v, edges):
    out = v.copy()
    for i in range(len(edges) - 1):
        out[np.logical_and(v > edges[i], v <= edges[i + 1])] = i
    return out


def sims(p, y):
    p = np.clip(p.astype(np.float32), -1.0, 1.0)
    y = np.clip(y.astype(np.float32), -1.0, 1.0)
    a2p, a2y = classes(p, [-1.01, 0.0, 1.01]), classes(y, [-1.01, 0.0, 1.01])
    a3 = [classes(v, [-1.01, -0.1, 0.1, 1.01]) for v in (p, y)]
    a5 = [classes(v, [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]) for v in (p, y)]
    mae = np.mean(np.absolute(p - y))
    mse = np.mean((p.astype(np.float64) - y) ** 2)
    corr = np.corrcoef(p, y)[0][1] if np.std(p) > 0 and np.std(y) > 0 else float("nan")
    acc = lambda a, b: np.sum(np.round(a) == np.round(b)) / float(len(b))
    return [mae, mse, corr, acc(a2p, a2y), acc(*a3), acc(*a5), weighted_f1(a2y, a2p), len(y)]


def main():
    rng = np.random.default_rng(20260514)
    cases = []
    y = np.round(rng.uniform(-1, 1, 300) * 5) / 5  # CH-SIMS labels are multiples of 0.2
    cases.append((np.clip(y + rng.normal(0, 0.35, 300), -1.3, 1.3), y))
    # The bin edges in float32 and values just beside them; beyond the clip; zeros.
    edges = np.array([-1.0, -0.7, -0.1, 0.0, 0.1, 0.7, 1.0], np.float32)
    near = np.concatenate([edges, np.nextafter(edges, np.float32(2)), np.nextafter(edges, np.float32(-2)),
                           np.array([1.5, -1.5, 0.1000001, -0.0999999], np.float32)])
    cases.append((near, np.roll(near, 5)))
    cases.append((np.full(6, 0.2), np.array([-1.0, -0.6, 0.0, 0.2, 0.8, 1.0])))  # constant: Corr undefined
    cases.append((np.array([0.3, 0.5, -0.2]), np.array([0.4, 0.6, 0.8])))  # one Acc-2 class in the labels
    write_cases("sims_cases.txt", "make_sims_metrics_fixture.py", "mae mse corr acc2 acc3 acc5 f1 n", cases, sims)

if __name__ == "__main__":
    main()
