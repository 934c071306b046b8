"""vaeas_np against a PyTorch reference on the same CPU: one command, one Markdown table.

    python bench/run.py [--quick] [--threads 2] [--repeats 5] [--out FILE]

Every (case, implementation) runs in its own subprocess (``bench/cases.py``), so
its peak RSS is its own and PyTorch never shares a process with the library.
Ours and PyTorch are measured in the same run, alternating (``--rounds``
processes each, so that a change of machine load hits both); each reports the
median and spread of all its timed blocks (``--repeats`` per process).  Ratio = PyTorch
time / our time (> 1: we are faster).  Inputs are random binary images and
random posteriors: no data set is needed.  PyTorch (``pip install torch==2.13.0``,
a CPU build) is needed for the comparison columns only.
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from cases import B, N, STEPS_PER_EPOCH  # noqa: E402


def settings(a):
    """Per-case arguments for bench/cases.py, full or --quick."""
    q = a.quick
    r = a.repeats or (2 if q else 3)
    return {
        "vae": dict(steps=15 if q else 100, repeats=r),
        "hierarchical": dict(steps=15 if q else 100, repeats=r),
        "full": dict(steps=1 if q else 4, repeats=r),
        "iwae": dict(images=4 if q else 20, k=4096, repeats=r),
        "mi": dict(points=1_000 if q else 10_000, repeats=r),
        "hs_kernel": dict(steps=50 if q else 200, repeats=r),
    }


def run_one(case, impl, threads, opts, extra=(), env=None):
    """Run one case in a subprocess (``env``: extra environment variables); its JSON
    result, or {'error': ...}."""
    cmd = [sys.executable, os.path.join(HERE, "cases.py"), case, impl, "--threads", str(threads)]
    for k, v in opts.items():
        cmd += [f"--{k}", str(v)]
    cmd += list(extra)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env={**os.environ, **env} if env else None)
    wall = time.perf_counter() - t
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        err = (p.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  {case}/{impl}: FAILED ({err})", file=sys.stderr)
        return {"error": err}
    res = json.loads(lines[-1])
    res["wall_s"] = wall
    print(f"  {case}/{impl}{' ' + str(env) if env else ''}: median {np.median(res['times']):.4g} "
          f"({wall:.0f} s wall, peak RSS {res['peak_rss_mb']:.0f} MB)", file=sys.stderr)
    return res


def quietest_ratio(ours, torch_res):
    """PyTorch's quietest round over ours' quietest round: the smallest per-process median
    of each side.  This machine's slow spells can last a whole process (a probe GEMM
    around the processes missed one inside a PyTorch process); each side's fastest
    process is the best estimate of a quiet machine, as long as each had one."""
    o = [m for m in ours.get("round_medians", []) if m]
    t = [m for m in torch_res.get("round_medians", []) if m]
    return min(t) / min(o) if o and t else float("nan")


def pool(runs):
    """Merge the rounds of one (case, implementation): all timed blocks, the largest RSS."""
    ok = [r for r in runs if r and "error" not in r]
    if not ok:
        return next((r for r in runs if r), None)
    out = dict(ok[0])
    out["times"] = [t for r in ok for t in r["times"]]
    out["round_medians"] = [float(np.median(r["times"])) if r and "error" not in r else None
                            for r in runs]          # by round, for the paired ratio
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ok)
    return out


def torch_available():
    p = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


# ------------------------------------------------------------------ formatting
def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"


def spread(times, scale):
    t = np.asarray(times) * scale
    return f"{fmt(float(np.median(t)))} [{fmt(float(t.min()))}–{fmt(float(t.max()))}]"


CASES = [
    # key, label, unit, scale (seconds per timed value -> unit), lower is better
    ("vae", "VAE training epoch", "s / epoch*", STEPS_PER_EPOCH),
    ("hierarchical", "VAE-AS hierarchical (V=55k) epoch", "s / epoch*", STEPS_PER_EPOCH),
    ("full", "VAE-AS full softmax (V=55k) epoch", "s / epoch*", STEPS_PER_EPOCH),
    ("iwae", "IWAE NLL, k=4096", "s (see rate)", 1.0),
    ("mi", "exact aggregate MI, N=55k, M=10k, d=40", "s**", None),
    ("hs_kernel", "tree softmax fwd+bwd+step (B=128, h=500)", "ms / step", 1e3),
]


def time_scale(key, res, opts):
    """Multiplier turning one timed value into the table's unit."""
    if key == "mi":
        return 10_000 / opts["points"]               # extrapolate M linearly to 10,000
    return dict((k, s) for k, _, _, s in CASES)[key]


def gflops(res, quietest=False):
    """GFLOP/s at the median of all timed blocks, or (``quietest``) at the median of the
    fastest process (the machine's slow spells can last a whole process)."""
    if not res or "error" in res or not res.get("flops"):
        return None
    rounds = [m for m in res.get("round_medians", []) if m]
    t = min(rounds) if quietest and rounds else float(np.median(res["times"]))
    return res["flops"] / t / 1e9


def row(key, label, unit, ours, torch_res, opts, peak):
    """One Markdown table row."""
    s = time_scale(key, ours, opts)
    cells = [label, unit]
    if "error" in ours:
        return "| " + " | ".join(cells + ["error: " + ours["error"]] + ["—"] * 9) + " |"
    cells.append(spread(ours["times"], s))
    has_t = torch_res and "error" not in torch_res
    cells.append(spread(torch_res["times"], s) if has_t else "—")
    if has_t:
        ratio = np.median(torch_res["times"]) / np.median(ours["times"])
        best = np.min(torch_res["times"]) / np.min(ours["times"])
        cells += [f"**{ratio:.3g}x**", f"{paired_ratio(ours, torch_res):.3g}x",
                  f"{best:.3g}x"]                    # 3 digits: GPU ratios are << 1
        cells.append(f"{quietest_ratio(ours, torch_res):.3g}x")
    else:
        cells += ["—", "—", "—", "—"]
    g_o, g_t = gflops(ours), gflops(torch_res) if has_t else None
    g_q = gflops(ours, quietest=True)
    cells.append(f"{fmt(g_o)} ({100 * g_o / peak:.0f}%; quietest process "
                 f"{100 * g_q / peak:.0f}%)" if g_o else "—")
    on_gpu = has_t and "gpu_mem_mb" in torch_res.get("notes", {})
    cells.append("—" if not g_t else f"{fmt(g_t)} (GPU)" if on_gpu
                 else f"{fmt(g_t)} ({100 * g_t / peak:.0f}%)")
    cells.append(f"{ours['peak_rss_mb']:.0f} / "
                 + (f"{torch_res['peak_rss_mb']:.0f}" if has_t else "—")
                 + (f" + {torch_res['notes']['gpu_mem_mb']:.0f} GPU" if on_gpu else ""))
    return "| " + " | ".join(cells) + " |"


def paired_ratio(ours, torch_res):
    """Median over rounds of (PyTorch's median / ours) within a round: the two processes
    of a round ran back to back, so a slow spell of the machine hits both."""
    pairs = [t / o for o, t in zip(ours.get("round_medians", []),
                                   torch_res.get("round_medians", [])) if o and t]
    return float(np.median(pairs)) if pairs else float("nan")


def first_layer_note(results):
    """The fraction of nonzero first-layer inputs our training cases saw."""
    d = sorted({round(r[0]["notes"]["first_layer_density"], 3) for r in results.values()
                if r[0] and "error" not in r[0]
                and "first_layer_density" in r[0].get("notes", {})})
    return ("nonzero fraction of the random binary batch: "
            + ", ".join(f"{x:.1%}" for x in d)) if d else "no training case run"


def rate_line(res_o, res_t):
    """IWAE throughput in image-samples per second."""
    def rate(r):
        return r["work"] / float(np.median(r["times"])) if r and "error" not in r else None
    ro, rt = rate(res_o), rate(res_t)
    return (f"IWAE throughput: ours {fmt(ro)} image-samples/s, PyTorch {fmt(rt)} "
            f"image-samples/s" + (f" (ratio {ro / rt:.3g}x)" if ro and rt else ""))


def machine():
    """CPU model, cores, versions, BLAS (as a few Markdown lines)."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
                         for i in info) or "none found"
    except ImportError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return [f"- CPU: {cpu}; {os.cpu_count()} logical cores; load average at start "
            f"{load[0]:.1f}",
            f"- NumPy BLAS: {blas}",
            f"- Python {platform.python_version()}, NumPy {np.__version__}, "
            f"PyTorch {torch_available() or 'not installed'}"]


# ------------------------------------------------------------------ GEMM peak
#: OpenBLAS core types whose sgemm kernels are AVX-512 (its names, as threadpoolctl reports)
AVX512_CORETYPES = ("skylakex", "cooperlake", "sapphirerapids")
#: what OpenBLAS's SkylakeX kernels need of the CPU
AVX512_FLAGS = ("avx512f", "avx512bw", "avx512dq", "avx512vl")


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return set(next(ln for ln in f if ln.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return set()


def measure_peaks(threads, with_torch, previous=None):
    """GFLOP/s of a 1024^3 float32 matmul by each BLAS at hand, as {label: GFLOP/s}
    (the best of ``previous`` and this measurement).

    NumPy's OpenBLAS picks its kernels by CPU model; on an AVX-512 CPU it does not
    know (AMD Zen 5 in scipy-openblas 0.3.31) it runs its AVX2 (Haswell) kernels at
    half the machine's float32 peak.  The machine's peak is then measured by NumPy
    with ``OPENBLAS_CORETYPE=SkylakeX`` (its AVX-512 kernels) as well.
    """
    out = dict(previous or {})

    def put(label, res):
        if res and "error" not in res:
            out[label] = max(out.get(label, 0.0), res["times"][0])

    numpy = run_one("peak", "ours", threads, {})
    blas = "" if "error" in numpy else numpy["notes"].get("blas", "")
    put(f"NumPy, {blas.split(' ', 1)[-1]}" if blas else "NumPy", numpy)
    if (set(AVX512_FLAGS) <= cpu_flags()
            and not any(c in blas.lower() for c in AVX512_CORETYPES)):
        put("NumPy, openblas with OPENBLAS_CORETYPE=SkylakeX",
            run_one("peak", "ours", threads, {}, env={"OPENBLAS_CORETYPE": "SkylakeX"}))
    if with_torch:
        put("PyTorch torch.mm", run_one("peak", "torch", threads, {}))
    return out


# ------------------------------------------------------------------ main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a ~2-minute version")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=None, help="timed blocks (5; --quick 3)")
    p.add_argument("--rounds", type=int, default=None,
                   help="alternating ours/PyTorch processes per case (3; --quick 2)")
    p.add_argument("--compile", choices=["off", "on", "auto"], default=None,
                   help="torch.compile for PyTorch training (default: auto, --quick: off)")
    p.add_argument("--cases", nargs="+", default=[k for k, *_ in CASES])
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--torch-device", choices=["cpu", "cuda"], default="cpu",
                   help="where PyTorch runs: the same CPU (default, the contest) or a CUDA "
                        "GPU (ours stays on the CPU; GFLOP/s of a GPU run get no %% of the "
                        "CPU's peak)")
    p.add_argument("--out", help="also write the Markdown report to this file")
    a = p.parse_args(argv)
    a.rounds = a.rounds or (2 if a.quick else 3)
    comp = a.compile or ("off" if a.quick else "auto")
    opts = settings(a)
    have_torch = not a.no_torch and torch_available()
    if not have_torch and not a.no_torch:
        print("PyTorch is not installed: only our timings are measured "
              "(pip install torch==2.13.0 for the comparison).", file=sys.stderr)
    t0 = time.time()
    peaks = measure_peaks(a.threads, have_torch and a.torch_device == "cpu")
    results = {}
    for key in a.cases:
        o = opts[key]
        extra = ["--compile", comp] if key in ("vae", "hierarchical", "full") else []
        if key == "mi":                                  # compiled block: ~3x faster, always
            extra = ["--compile", a.compile or "on"]
        extra += ["--torch-device", a.torch_device]
        rounds = [(run_one(key, "ours", a.threads, o),
                   run_one(key, "torch", a.threads, o, extra) if have_torch else None)
                  for _ in range(a.rounds)]             # alternate: load drift hits both
        numpy_ref = run_one(key, "numpy", a.threads, o) if key == "hs_kernel" else None
        results[key] = (pool([r[0] for r in rounds]), pool([r[1] for r in rounds]),
                        numpy_ref)
    peaks = measure_peaks(a.threads, have_torch and a.torch_device == "cpu", peaks)
    report = render(a, comp, opts, results, peaks, time.time() - t0)
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report + "\n")


def render(a, comp, opts, results, peaks, elapsed):
    """The Markdown report."""
    peak_gf = max(peaks.values(), default=float("nan"))
    head = ("| case | unit | ours: median [min–max] | PyTorch: median [min–max] | "
            "ratio (torch/ours, medians) | ratio (paired rounds) | ratio (best/best) | "
            "ratio (quietest rounds) | ours GFLOP/s (% peak) | "
            "PyTorch GFLOP/s (% peak) | peak RSS MB ours / torch |")
    devices = sorted({r[1]["notes"]["device"] for r in results.values()
                      if r[1] and "error" not in r[1] and "device" in r[1].get("notes", {})})
    where = ("PyTorch on " + ", ".join(devices) if devices and devices != ["cpu"]
             else "the same CPU")
    lines = [f"## vaeas_np vs PyTorch ({'--quick' if a.quick else 'full'} run, "
             f"{a.threads} threads, {where}, {time.strftime('%Y-%m-%d %H:%M')})", "",
             head, "|" + "---|" * 11]
    for key, label, unit, _ in CASES:
        if key in results:
            ours, tres, _ = results[key]
            lines.append(row(key, label, unit, ours, tres, opts[key], peak_gf))
    lines += ["", f"Float32 GEMM peak of this machine: **{fmt(peak_gf)} GFLOP/s**, the fastest "
              f"1024^3 matmul on {a.threads} threads (best of 7 at the start and 7 at the end) "
              "of: " + "; ".join(f"{k} {fmt(v)}" for k, v in peaks.items()) + ". "
              "The % peak columns are of that figure."]
    if "iwae" in results:
        lines.append(rate_line(*results["iwae"][:2]) + ".")
    if "hs_kernel" in results and results["hs_kernel"][2] and \
            "error" not in results["hs_kernel"][2]:
        o, _, npr = results["hs_kernel"]
        lines.append(f"Tree softmax, NumPy reference: {spread(npr['times'], 1e3)} ms / step "
                     f"({np.median(npr['times']) / np.median(o['times']):.1f}x our compiled "
                     f"kernel).")
    lines += ["", "Notes:",
              f"- \\* seconds per epoch of {N:,} examples = seconds per training step x "
              f"{N}/{B}, extrapolated from {opts['vae']['steps']} steps per timed block "
              f"({opts['full']['steps']} for the full softmax); steps only (no data "
              "loading/binarisation), the same random binary batch.",
              f"- \\*\\* M = {opts['mi']['points']:,} points"
              + (", time scaled linearly to M = 10,000." if opts['mi']['points'] != 10_000
                 else "."),
              f"- IWAE: {opts['iwae']['images']} random binary images x 4096 samples per timed "
              "value.",
              "- GFLOP/s count the GEMM FLOPs each side performs, analytically (2 m n k; "
              "training = forward + weight and input gradients, less the first layer's "
              "input gradient, which nobody computes); the tree softmax counts its B x "
              "depth node dot products. Ours' first layer skips the zero pixels "
              f"({first_layer_note(results)}), so ours does fewer FLOPs than PyTorch in "
              "the training cases: compare times, not GFLOP/s. Ours' % peak is at the "
              "median of all timed blocks, and at the median of our fastest process.",
              f"- PyTorch: float32, Adam fused, SparseAdam on the tree's node rows, "
              f"torch.compile of the training loss: {comp}"
              + (" (kept only where it was faster than eager)" if comp == "auto" else "")
              + f"; of the MI block kernel (GEMM + logsumexp): {a.compile or 'on'}"
              + ("; on CUDA: TF32 off (true float32), GPU memory = "
                 "torch.cuda.max_memory_allocated"
                 + (", training compiled in mode reduce-overhead (CUDA graphs)"
                    if comp != "off" else "") if a.torch_device == "cuda" else "") + ".",
              "- Ratio (paired rounds): the median over rounds of PyTorch's median / ours "
              "within a round (its two processes ran back to back).",
              "- Ratio (quietest rounds): PyTorch's fastest process (its median) over "
              "ours' fastest. This machine has slow spells that slow every part of a step "
              "(GEMMs by 25-45 %, memory-bound passes by 3-5x) and can last a whole "
              "process; each side's fastest process estimates a quiet machine, if each "
              "had one.",
              f"- Spread = [min–max] of {a.rounds} alternating ours/PyTorch processes x "
              f"{opts['vae']['repeats']} timed blocks each; "
              f"total bench time {elapsed:.0f} s.",
              "", "Machine:", *machine()]
    notes = {k: v[1]["notes"] for k, v in results.items() if v[1] and "error" not in v[1]}
    failed = [k for k, n in notes.items() if n.get("compile") in ("on", "auto")
              and n.get("compiled") is False]
    if failed:
        lines.append("- torch.compile failed (eager used) for: " + ", ".join(failed))
    if "onednn_kept" in notes.get("iwae", {}):
        n = notes["iwae"]
        lines.append(f"- PyTorch's IWAE decoder on oneDNN (torch.utils.mkldnn; MKL runs AVX2 "
                     f"only on AMD CPUs): kept={n['onednn_kept']}" + (
                         f" (MKL median {n['eager_median_s']:.3g} s)"
                         if n.get("eager_median_s") else ""))
    if any("compile_kept" in n for n in notes.values()):
        lines.append("- torch.compile kept for: " + ", ".join(
            f"{k}={n['compile_kept']} (eager median {n['eager_median_s'] * 1e3:.1f} ms/step)"
            for k, n in notes.items() if "compile_kept" in n))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
