"""PyTorch side of the WavLM benchmark: the float32 reference module (tests/reference/wavlm_ref.py)
on the same synthetic waveform and the same work as bench_wavlm.c (every layer, layer 20 and the
last one kept), timed after one warm-up run, under torch.no_grad.

    /usr/bin/python3 bench/bench_wavlm_torch.py --model M.safetensors [--seconds 10] [--threads 2] [--iters 3]
    /usr/bin/python3 bench/bench_wavlm_torch.py --write M.safetensors   (a random WavLM-Large, float16)

Prints one line in the format of bench_wavlm.c.

    /usr/bin/python3 bench/bench_wavlm_torch.py --summary LOG   (the table of bench_wavlm.sh's runs)
"""
import argparse
import os
import re
import resource
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import safetensors_np  # noqa: E402
import wavlm_ref as W  # noqa: E402

W.DTYPE = torch.float32


def write_model(path):
    model = W.WavLM(W.LARGE)
    W.random_init(model, 5)
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    safetensors_np.write(path, sd, W.hf_metadata(W.LARGE))


LINE = re.compile(r"^(sdumc|torch) +audio ([0-9.]+) s .*?, (\d+) threads: median ([0-9.]+) s, min ([0-9.]+) s, "
                  r"RTF [0-9.]+, peak RSS (\d+) MiB \(CPU time ([0-9.]+) s")
ROUND = re.compile(r"^-- threads (\d+), round (\d+)")


def summarise(log):
    """The table of bench_wavlm.sh's log: per thread count, the range over rounds of each side's
    real-time factor (median wall time of a forward / audio duration), CPU seconds per audio second,
    peak RSS, and of the per-round ratio PyTorch time / sdumc time (the two sides of a round ran
    one right after the other)."""
    runs = {}  # threads -> round -> side -> (audio s, median s, min s, rss MiB, cpu s)
    key = None
    for line in open(log):
        m = ROUND.match(line)
        if m:
            key = (int(m.group(1)), int(m.group(2)))
            continue
        m = LINE.match(line)
        if m and key:
            side, secs, th = m.group(1), float(m.group(2)), int(m.group(3))
            runs.setdefault(th, {}).setdefault(key[1], {})[side] = (
                secs, float(m.group(4)), float(m.group(5)), float(m.group(6)), float(m.group(7)))

    def rng(v, fmt):
        v = sorted(v)
        return (fmt % v[0]) if v[0] == v[-1] else (fmt + "-" + fmt) % (v[0], v[-1])

    print("\n| threads | rounds | sdumc RTF | PyTorch RTF | PyTorch / sdumc time | sdumc CPU s per audio s "
          "| PyTorch CPU s per audio s | PyTorch / sdumc CPU | sdumc peak RSS | PyTorch peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for th in sorted(runs):
        rs = [r for r in runs[th].values() if "sdumc" in r and "torch" in r]
        if not rs:
            continue
        S, P = [r["sdumc"] for r in rs], [r["torch"] for r in rs]
        print("| %d | %d | %s | %s | %s | %s | %s | %s | %s MiB | %s MiB |" % (
            th, len(rs), rng([s[1] / s[0] for s in S], "%.3f"), rng([p[1] / p[0] for p in P], "%.3f"),
            rng([p[1] / s[1] for s, p in zip(S, P)], "%.2f"), rng([s[4] / s[0] for s in S], "%.3f"),
            rng([p[4] / p[0] for p in P], "%.3f"), rng([p[4] / s[4] for s, p in zip(S, P)], "%.2f"),
            rng([s[3] for s in S], "%.0f"), rng([p[3] for p in P], "%.0f")))
    if 2 in runs:
        S = [r["sdumc"] for r in runs[2].values() if "sdumc" in r]
        best = min(s[2] / s[0] for s in S)
        med = sorted(s[1] / s[0] for s in S)[len(S) // 2]
        cpu = sorted(s[4] / s[0] for s in S)[len(S) // 2]
        print("target RTF <= 0.3 on 2 threads: %s (median over rounds %.3f, best single forward %.3f); CPU seconds "
              "per audio second %.3f: with two cores of its own and the work split evenly, RTF %.3f"
              % ("met" if med <= 0.3 else "MISSED", med, best, cpu, cpu / 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--write")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--summary")
    a = ap.parse_args()
    if a.summary:
        summarise(a.summary)
        return
    if a.write:
        write_model(a.write)
        return
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    tensors, _ = safetensors_np.read(a.model)
    model = W.WavLM(W.LARGE)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()})
    del tensors
    model.eval()
    load_s = time.perf_counter() - t0
    n = int(round(a.seconds * 16000))
    i = np.arange(n)
    wav = (0.1 * np.sin(2 * np.pi * (150 + 0.01 * i / 16) * i / 16000)
           + 0.01 * ((i * 2654435761) % (1 << 32) % 1000) / 1000).astype(np.float32)
    x = W.normalize_waveform(torch.from_numpy(wav))
    times, cpu = [], []
    with torch.no_grad():
        for it in range(a.iters + 1):
            c0, t0 = time.process_time(), time.perf_counter()  # process CPU time: every thread
            hs = model.hidden_states(x)
            keep = (hs[min(20, len(hs) - 1)], hs[-1])
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    times, cpu = sorted(times[1:]), sorted(cpu[1:])
    med = times[len(times) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    with open("/proc/self/maps") as f:  # which BLAS torch really calls (BENCHMARKING.md)
        blas = "OpenBLAS" if "openblas" in f.read() else "NOT OpenBLAS (figures not comparable)"
    print("torch  audio %.1f s (%d frames), %d threads: median %.3f s, min %.3f s, RTF %.3f, peak RSS %.0f MiB "
          "(CPU time %.2f s; model load %.1f s, torch %s, %s, checksum %.3g)"
          % (a.seconds, keep[1].shape[0], a.threads, med, times[0], med / a.seconds, rss, cpu[len(cpu) // 2], load_s,
             torch.__version__, blas, float(keep[1].double().sum())))


if __name__ == "__main__":
    main()
