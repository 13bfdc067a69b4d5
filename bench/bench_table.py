"""Prints the `make bench` table from the JSON lines bench/bench.sh collected (bench/README.md)."""
import json
import statistics
import sys


def main(path):
    machine, load_after, point = {}, "", None
    gemm, gemm_avx2, rows, scale = [], [], {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "machine" in r:
                machine = r["machine"]
            elif "load_after" in r:
                load_after = r["load_after"]
            elif "point" in r:
                point = r["point"]
            elif r.get("mode") == "gemm":
                gemm.append(r)
            elif r.get("mode") == "gemm_avx2":
                gemm_avx2.append(r)
            elif point and point.startswith("scale_"):
                scale.append((point, r))
            elif point:
                rows.setdefault(point, {}).setdefault((r["side"], r["mode"]), []).append(r)
    peak = max((g["gemm_peak_gflops"] for g in gemm), default=float("nan"))
    peak_avx2 = max((g["gemm_peak_gflops"] for g in gemm_avx2), default=float("nan"))
    core = gemm[0].get("blas_core", "?") if gemm else "?"
    isa = gemm[0].get("vector_isa", "?") if gemm else "?"
    print(f"machine: {machine.get('cpu', '?')}, {machine.get('cpus', '?')} CPUs, flags: {machine.get('flags', '')}; "
          f"threads {machine.get('threads', '?')}; OpenBLAS kernel {core} (OPENBLAS_CORETYPE {machine.get('coretype')}); "
          f"load average before {machine.get('load_before')}, after {load_after}")
    print(f"vector ISA: sdumc's own kernels run as {isa}; its GEMMs and PyTorch's run on OpenBLAS's {core} kernel")
    print(f"sgemm peak (2048^3, OpenBLAS, same threads): {peak:.1f} GFLOP/s "
          f"(runs: {', '.join('%.1f' % g['gemm_peak_gflops'] for g in gemm)}); "
          f"{machine.get('steps')} timed steps per process, {machine.get('rounds')} round(s), medians")
    if gemm_avx2:
        print(f"points *_avx2: OPENBLAS_CORETYPE=Haswell on both sides (OpenBLAS kernel "
              f"{gemm_avx2[0].get('blas_core', '?')}), sgemm peak {peak_avx2:.1f} GFLOP/s")
    print()

    def med(point, side, mode, key):
        v = [r[key] for r in rows.get(point, {}).get((side, mode), []) if key in r]
        return statistics.median(v) if v else float("nan")

    hdr = f"{'point':<10} {'figure':<34} {'sdumc':>10} {'PyTorch':>10} {'ratio':>7}  target"
    print(hdr)
    print("-" * len(hdr))
    for point in rows:
        figs = [
            ("training samples/s", "train", "samples_per_s",
             ">= 2.5x (AVX2)" if point.endswith("_avx2") else ">= 2.1x" if point == "MOSEI" else ">= 2.5x on AVX2"),
            ("inference batch-1 latency, ms", "infer", "latency1_ms", "<= 0.5x"),
            ("inference batch-96 samples/s", "infer", "infer_samples_per_s", ""),
            ("peak RSS while training, MiB", "train", "peak_rss_mib", "<= 0.5x"),
        ]
        for name, mode, key, target in figs:
            a, b = med(point, "sdumc", mode, key), med(point, "torch", mode, key)
            if a != a and b != b:  # not measured at this point
                continue
            print(f"{point:<10} {name:<34} {a:>10.2f} {b:>10.2f} {a / b:>6.2f}x  {target}")
        st = med(point, "sdumc", "train", "step_s")
        gf = med(point, "sdumc", "train", "gemm_gflop_per_step")
        rate = gf / st
        pk = peak_avx2 if point.endswith("_avx2") else peak
        print(f"{point:<10} {'sdumc GEMM GFLOP/step, GFLOP/s':<34} {gf:>10.2f} {rate:>10.1f} {rate / pk * 100:>6.1f}%  "
              f"{'>= 75% of peak' if point == 'MOSEI' else ''}")
        tt = med(point, "torch", "train", "step_s")
        print(f"{point:<10} {'step time s (sdumc, PyTorch)':<34} {st:>10.3f} {tt:>10.3f}")
        if rows[point].get(("sdumc", "cli")):
            # `sdumc train` end to end (bench_cli.py) against the step above and PyTorch's training RSS.
            cli = med(point, "sdumc", "cli", "cli_samples_per_s")
            step = med(point, "sdumc", "train", "samples_per_s")
            rss = med(point, "sdumc", "cli", "cli_peak_rss_mib")
            step_rss = med(point, "sdumc", "train", "peak_rss_mib")
            torch_rss = med(point, "torch", "train", "peak_rss_mib")
            print(f"{point:<10} {'CLI whole-epoch samples/s':<34} {cli:>10.2f} {step:>10.2f} {cli / step:>6.2f}x  "
                  ">= 0.90x (vs the sdumc step)")
            loop = med(point, "sdumc", "cli", "cli_train_loop_samples_per_s")
            print(f"{point:<10} {'CLI training-loop samples/s':<34} {loop:>10.2f} {step:>10.2f} {loop / step:>6.2f}x  "
                  "(reading + steps only)")
            ep, ev = med(point, "sdumc", "cli", "epoch_s"), med(point, "sdumc", "cli", "cli_eval_s")
            lp = med(point, "sdumc", "cli", "cli_train_loop_s")
            print(f"{point:<10} {'CLI epoch s: loop, evaluations':<34} {lp:>10.2f} {ev:>10.2f} {(lp + ev) / ep:>6.2f}x  "
                  f"of the {ep:.2f} s epoch")
            for mode in sorted(k[1] for k in rows[point] if k[0] == "sdumc" and k[1].startswith("cli_subset")):
                c0 = med(point, "sdumc", mode, "cli_samples_per_s")
                e0 = med(point, "sdumc", mode, "cli_eval_s")
                name = "CLI whole-epoch, --train-subset " + mode[len("cli_subset"):]
                print(f"{point:<10} {name:<34} {c0:>10.2f} {step:>10.2f} {c0 / step:>6.2f}x  "
                      f"(evaluations {e0:.2f} s: validation and the subset)")
            print(f"{point:<10} {'CLI peak RSS MiB (vs the step)':<34} {rss:>10.1f} {step_rss:>10.1f} {rss / step_rss:>6.2f}x  "
                  "<= 1.2x")
            print(f"{point:<10} {'CLI peak RSS MiB (vs PyTorch)':<34} {rss:>10.1f} {torch_rss:>10.1f} {rss / torch_rss:>6.2f}x  "
                  "<= 0.5x")
        print()
    if scale:
        print("sdumc training step scaling (MOSEI point):")
        for name, r in scale:
            print(f"  {name:<20} step {r['step_s']:.3f} s  {r['samples_per_s']:.1f} samples/s  "
                  f"{r['gemm_gflop_per_step'] / r['step_s']:.1f} GFLOP/s  threads {r['threads']}")
    t = [r for p in rows.values() for k, v in p.items() if k[0] == "torch" for r in v]
    if t and not all(r.get("openblas_mapped") and r.get("tcmalloc_mapped") for r in t):
        print("WARNING: a PyTorch process did not map OpenBLAS or tcmalloc (BENCHMARKING.md)")


if __name__ == "__main__":
    main(sys.argv[1])
