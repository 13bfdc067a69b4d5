"""PyTorch side of `make bench` (bench/README.md): the same measurements as bench_sdumc.c, on the
reference implementation tests/reference/sdumc_ref.py, one JSON line on stdout.

    /usr/bin/python3 bench/bench_torch.py train|infer [--dims a,t,v] [--frames Ta,Tt,Tv] [--sim Ts]
                                          [--batch B] [--threads n] [--steps N] [--warmup W]

train: median seconds of train_step (both flows, six losses of the "paper" preset, backward, Adam),
       peak resident memory (VmHWM) after it. infer: batch-1 latency and batch-B throughput of the
       text-missing flow (MIA on) in eval mode under torch.no_grad().
Inputs: element i of tensor `salt` is bench_value(i, salt), bench_sdumc.c's hash; full lengths.
bench.sh sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, OMP_WAIT_POLICY=passive and preloads tcmalloc
(BENCHMARKING.md: PyTorch's best set-up on these machines); this script also sets torch's threads.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import sdumc_ref  # noqa: E402


def bench_value(n, salt):
    """bench_sdumc.c's bench_value for i in [0, n): a 32-bit multiplicative hash mapped to [-1, 1)."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(salt * 40503 + 12345)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    return (h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0).astype(np.float32)


def make_batch(dims, frames, sim, B):
    D = [dims[0], dims[1], dims[2], dims[1]]
    T = [frames[0], frames[1], frames[2], sim]
    names = ["audio", "text", "video", "sim"]
    batch = {}
    for k in range(4):
        x = bench_value(B * T[k] * D[k], k + 1).reshape(B, T[k], D[k])
        batch[names[k]] = torch.from_numpy(x)
        batch[names[k] + "_len"] = torch.full((B,), T[k], dtype=torch.long)
    batch["label"] = torch.from_numpy(bench_value(B, 9) * 3.0)
    return batch


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    return -1.0


def blas_mapped():
    with open("/proc/self/maps") as f:
        maps = f.read()
    return "openblas" in maps, "tcmalloc" in maps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "infer"])
    ap.add_argument("--dims", default="1024,4096,1024")
    ap.add_argument("--frames", default="250,30,60")
    ap.add_argument("--sim", type=int, default=30)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dims = [int(v) for v in a.dims.split(",")]
    frames = [int(v) for v in a.frames.split(",")]
    model = sdumc_ref.SDUMCRef(*dims)
    openblas, tcmalloc = blas_mapped()
    common = {"side": "torch", "threads": torch.get_num_threads(), "batch": a.batch,
              "openblas_mapped": openblas, "tcmalloc_mapped": tcmalloc, "torch": torch.__version__}
    if a.mode == "train":
        batch = make_batch(dims, frames, a.sim, a.batch)
        opt = sdumc_ref.make_optimizer(model)
        weights = sdumc_ref.preset_weights("paper")
        times, cpu = [], []
        total = 0.0
        for s in range(a.warmup + a.steps):
            t0, c0 = time.perf_counter(), time.process_time()
            _, total = sdumc_ref.train_step(model, opt, batch, weights, mia=True, mask=True)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if s >= a.warmup:
                times.append(dt)
                cpu.append(dc)
        med = float(np.median(times))
        out = dict(common, mode="train", step_s=med, step_cpu_s=float(np.median(cpu)), samples_per_s=a.batch / med,
                   peak_rss_mib=peak_rss_mib(),
                   loss=total, steps=a.steps, min_step_s=min(times), max_step_s=max(times))
    else:
        model.eval()

        def timed(batch, reps, warmup):
            times = []
            with torch.no_grad():
                for s in range(warmup + reps):
                    t0 = time.perf_counter()
                    model(batch["audio"], batch["audio_len"], batch["sim"], batch["sim_len"], batch["video"],
                          batch["video_len"], missing=True, mia=True, mask=True)
                    dt = time.perf_counter() - t0
                    if s >= warmup:
                        times.append(dt)
            return float(np.median(times))

        lat = timed(make_batch(dims, frames, a.sim, 1), a.steps * 5, a.warmup * 5)
        tb = timed(make_batch(dims, frames, a.sim, a.batch), a.steps, a.warmup)
        out = dict(common, mode="infer", latency1_ms=lat * 1e3, batch_s=tb, infer_samples_per_s=a.batch / tb)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
