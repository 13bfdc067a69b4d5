"""The command line's side of `make bench` (bench/README.md): `sdumc train` end to end on a
generated .npy dataset at one operating point, one JSON line on stdout.

    /usr/bin/python3 bench/bench_cli.py --sdumc build/sdumc [--dims a,t,v] [--frames Ta,Tt,Tv]
        [--sim Ts] [--batch B] [--threads n] [--train N] [--valid N] [--epochs E1,E2] [--keep DIR] [--train-subset N]
        [--rounds R]

The dataset: N train and N valid utterances, every one with exactly the point's frames (no
padding, the shapes of bench_sdumc's step), float16 files (what feature extractors write at this
scale), values from bench_value (bench_torch.py), labels in [-3, 3]. It is written to a temporary
folder and deleted afterwards (--keep DIR: written there and kept).

`sdumc train --preset paper` runs twice, for E1 and E2 epochs (R rounds of the pair: the figures are
the medians over rounds). Whole-epoch samples/s is (E2 - E1) * N_train / (wall(E2) - wall(E1)): everything an epoch costs (reading and converting the
files, the steps, validation of both flows, the checkpoint files, progress), without the start-up
both runs share (dataset validation with its value scan, initialisation) and the report of the end.
Peak RSS: the E2 run's (ru_maxrss of the child). The last epoch's own record splits its time: the
training loop (reading, steps) and the evaluations (validation split, and with --train-subset N the
training subset, both flows); the rest of an epoch is the files and the start of the next. The loss of the last epoch is printed so runs can
be compared.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import bench_value  # noqa: E402  (the shared input generator)


def write_dataset(path, dims, frames, sim, n_train, n_valid):
    D = [dims[0], dims[1], dims[2], dims[1]]
    T = [frames[0], frames[1], frames[2], sim]
    folders = ["audio", "text", "video", "text_sim"]
    for f in folders:
        os.makedirs(os.path.join(path, f), exist_ok=True)
    n = n_train + n_valid
    labels = bench_value(n, 9) * 3.0
    lines = ["name,label,split"]
    for u in range(n):
        name = "u%05d" % u
        lines.append("%s,%.6f,%s" % (name, labels[u], "train" if u < n_train else "valid"))
        for k in range(4):
            x = bench_value(T[k] * D[k], 1000 * (u + 1) + k + 1).reshape(T[k], D[k]).astype(np.float16)
            np.save(os.path.join(path, folders[k], name + ".npy"), x)
    with open(os.path.join(path, "labels.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def run_train(sdumc, data, out_dir, epochs, batch, threads, train_subset):
    """Wall seconds, peak RSS (MiB) and the log's last epoch record of one `sdumc train`."""
    out = os.path.join(out_dir, "e%d.safetensors" % epochs)
    cmd = [sdumc, "train", "--data", data, "--out", out, "--preset", "paper", "--epochs", str(epochs),
           "--batch-size", str(batch), "--threads", str(threads)]
    if train_subset is not None:
        cmd += ["--train-subset", str(train_subset)]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
        raise SystemExit("bench_cli: %s failed" % " ".join(cmd))
    with open(out + ".log.jsonl") as f:
        records = [json.loads(line) for line in f if line.startswith('{"epoch"')]
    return wall, usage.ru_maxrss / 1024.0, records[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdumc", required=True)
    ap.add_argument("--dims", default="1024,4096,1024")
    ap.add_argument("--frames", default="250,30,60")
    ap.add_argument("--sim", type=int, default=30)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train", type=int, default=480)
    ap.add_argument("--valid", type=int, default=96)
    ap.add_argument("--epochs", default="1,3")
    ap.add_argument("--keep", default="")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--train-subset", type=int, default=None,
                    help="passed to sdumc train (default: its own, 0: no evaluation-mode training subset)")
    a = ap.parse_args()
    dims = [int(v) for v in a.dims.split(",")]
    frames = [int(v) for v in a.frames.split(",")]
    e1, e2 = (int(v) for v in a.epochs.split(","))
    work = tempfile.mkdtemp(prefix="sdumc-bench-cli-")
    try:
        data = a.keep or os.path.join(work, "data")
        if not os.path.exists(os.path.join(data, "labels.csv")):
            write_dataset(data, dims, frames, a.sim, a.train, a.valid)
        pairs = []
        for _ in range(max(1, a.rounds)):
            w1, rss1, _ = run_train(a.sdumc, data, work, e1, a.batch, a.threads, a.train_subset)
            w2, rss2, last = run_train(a.sdumc, data, work, e2, a.batch, a.threads, a.train_subset)
            pairs.append(((w2 - w1) / (e2 - e1), max(rss1, rss2), last, w1, w2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pairs.sort(key=lambda p: p[0])
    per_epoch, _, last, w1, w2 = pairs[len(pairs) // 2]
    rss = max(p[1] for p in pairs)
    print(json.dumps({
        "side": "sdumc", "mode": "cli" if a.train_subset is None else "cli_subset%d" % a.train_subset,
        "threads": a.threads, "batch": a.batch,
        "train_utterances": a.train, "valid_utterances": a.valid, "epochs": [e1, e2],
        "epoch_s": round(per_epoch, 4), "cli_samples_per_s": round(a.train / per_epoch, 3),
        "cli_train_loop_samples_per_s": last["samples_per_s"], "cli_train_loop_s": last["seconds"],
        "cli_eval_s": last.get("eval_seconds", 0.0), "cli_peak_rss_mib": round(rss, 1), "rounds": len(pairs),
        "epoch_s_all": [round(p[0], 4) for p in pairs],
        "wall_s": [round(w1, 3), round(w2, 3)], "loss": last["loss"]["total"]}))


if __name__ == "__main__":
    main()
