"""PyTorch side of the WavLM benchmark: the float32 reference module (tests/reference/wavlm_ref.py)
on the same synthetic waveform and the same work as bench_wavlm.c (every layer, layer 20 and the
last one kept), timed after one warm-up run, under torch.no_grad.

    /usr/bin/python3 bench/bench_wavlm_torch.py --model M.safetensors [--seconds 10] [--threads 2] [--iters 3]
    /usr/bin/python3 bench/bench_wavlm_torch.py --write M.safetensors   (a random WavLM-Large, float16)

Prints one line in the format of bench_wavlm.c.
"""
import argparse
import os
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--write")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()
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
    times = []
    with torch.no_grad():
        for it in range(a.iters + 1):
            t0 = time.perf_counter()
            hs = model.hidden_states(x)
            keep = (hs[min(20, len(hs) - 1)], hs[-1])
            times.append(time.perf_counter() - t0)
    times = sorted(times[1:])
    med = times[len(times) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    with open("/proc/self/maps") as f:  # which BLAS torch really calls (BENCHMARKING.md)
        blas = "OpenBLAS" if "openblas" in f.read() else "NOT OpenBLAS (figures not comparable)"
    print("torch  audio %.1f s (%d frames), %d threads: median %.3f s, min %.3f s, RTF %.3f, peak RSS %.0f MiB "
          "(model load %.1f s, torch %s, %s, checksum %.3g)" % (a.seconds, keep[1].shape[0], a.threads, med, times[0],
                                                                 med / a.seconds, rss, load_s, torch.__version__,
                                                                 blas, float(keep[1].double().sum())))


if __name__ == "__main__":
    main()
