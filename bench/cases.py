"""Benchmark cases, one (case, implementation) per process: ``python bench/cases.py CASE IMPL``.

IMPL is ``ours`` (vaeas_np), ``torch`` (bench/torch_reference.py) or, for the
softmax kernel, ``numpy`` (the library's plain NumPy reference).  The process
prints one JSON line: the timed values (one per repeat, in the case's unit),
the work per timed value (samples, steps, ...), the analytic FLOPs per value,
its own peak resident memory (``ru_maxrss``) and notes.  Running each case in
its own process makes the peak RSS per case and keeps PyTorch out of our runs.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]          # bench/ and the repository root

N, D, B, V, LATENT, H = 55_000, 784, 128, 55_000, 40, 500
STEPS_PER_EPOCH = N / B
TREE_DEPTH = math.ceil(math.log2(V))


# ------------------------------------------------------------------ FLOPs
def gemm_macs(sizes):
    """Multiply-adds per example of an MLP with layer widths ``sizes``."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


ENC = gemm_macs((D, 500, 500, 2 * LATENT))
DEC = gemm_macs((LATENT, 500, 500, 500, 500, 500, D))
CLS = gemm_macs((LATENT, 500, 500))


def train_flops(kind, first_layer_density=1.0):
    """FLOPs of one training step as performed (2 per multiply-add).

    Forward, and in backward every weight gradient and input gradient, except the
    input gradient of the encoder's first layer (the images need none; no
    implementation computes it).  ``first_layer_density``: the fraction of the first
    layer's multiply-adds done (vaeas_np skips zero pixels: the batch's fraction of
    nonzeros; a dense GEMM: 1).  The tree softmax counts its B x depth node dot
    products (2 h each); the full softmax its (h x V) GEMM.
    """
    first = D * 500
    macs = 3 * (ENC - first + DEC) + 2 * first * first_layer_density
    if kind == "hierarchical":
        macs += 3 * (CLS + TREE_DEPTH * (H + 1))
    elif kind == "full":
        macs += 3 * (CLS + (H + 1) * V)
    return 2 * B * macs


IWAE_FLOPS_PER_SAMPLE = 2 * DEC                        # decoder forward per z (encoder negligible)


# ------------------------------------------------------------------ ours
def ours_model(kind, threads):
    """A model built like bench/step_cost.py (random init, V = N labels)."""
    from vaeas_np import VAE, VAEAS
    from step_cost import build
    kw = dict(seed=0, verbose=False, n_threads=threads)
    if kind == "vae":
        return build(VAE(**kw))
    return build(VAEAS(softmax=kind, alpha=2.0, beta=1.0, **kw))


def ours_training(kind, a):
    from step_cost import time_steps
    model = ours_model(kind, a.threads)
    t0 = time.perf_counter()
    times = time_steps({kind: (model, a.steps)}, a.repeats, a.threads,
                       np.random.default_rng(0))[kind]
    rows = model.encoder_._x_rows             # the sparse first layer's last batch, if used
    density = rows.nnz / (B * D) if rows is not None else 1.0
    return list(times), {"setup_s": time.perf_counter() - t0 - float(np.sum(times)) * a.steps,
                         "first_layer_density": density}


def ours_iwae(a):
    from vaeas_np._threads import thread_limits
    from vaeas_np.metrics import iwae_nll
    model = ours_model("vae", a.threads)
    X = iwae_data(a.images)
    times, nll = [], None
    with thread_limits(a.threads):
        # warm-up on every image: the buffers of the timed calls' size are allocated and
        # page-faulted here (one image left ~5,000 page faults, ~19 MB, to the first
        # timed call)
        iwae_nll(model, X, k=256, rng=0)
        for _ in range(a.repeats):
            t = time.perf_counter()
            nll = iwae_nll(model, X, k=a.k, rng=0)
            times.append(time.perf_counter() - t)
    return times, {"nll": nll}


def ours_mi(a):
    from vaeas_np.metrics import exact_aggregate_mi_md
    mu, logvar = posteriors()
    times, res = [], None
    for _ in range(a.repeats):
        t = time.perf_counter()
        res = exact_aggregate_mi_md(mu, logvar, n_points=a.points, rng=0, n_threads=a.threads)
        times.append(time.perf_counter() - t)
    return times, {"mi": res["MI"], "md": res["MD"]}


def ours_hs_kernel(a, numpy_ref=False):
    """Forward + backward + sparse Adam step of the library's tree softmax (or NumPy ref)."""
    from vaeas_np._threads import thread_limits
    from vaeas_np.softmax import HierarchicalSoftmax, reference as ref
    from vaeas_np.softmax.tree import random_order
    rng = np.random.default_rng(0)
    L = HierarchicalSoftmax(H, V, order=random_order(V, 0), init_std=0.05, seed=0,
                            n_threads=a.threads)
    Hm = rng.standard_normal((B, H)).astype(np.float32)
    batches = [rng.integers(0, V, B) for _ in range(a.steps)]
    t = L.tree

    def kernel(lab):
        L.forward(Hm, lab, with_grad=True)          # as in training: backward(1.0) follows
        L.backward(1.0)
        L.step(-1.0 / B, 1e-3)

    def numpy_step(lab):
        _, sig = ref.hs_forward(Hm, L.Wb, lab, t.paths, t.codes, t.lengths)
        _, rows, g = ref.hs_backward(Hm, L.Wb, lab, t.paths, t.codes, t.lengths, sig,
                                     np.ones(B, np.float32))
        L.t += 1
        ref.sparse_adam(L.Wb, rows, g * np.float32(-1.0 / B), L.m, L.v, 1e-3, 0.9, 0.999,
                        1e-8, L.t)

    one = numpy_step if numpy_ref else kernel
    steps = batches[:max(3, a.steps // 10)] if numpy_ref else batches
    times = []
    with thread_limits(a.threads):
        for lab in batches[:3]:
            one(lab)
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for lab in steps:
                one(lab)
            times.append((time.perf_counter() - t0) / len(steps))
    return times, {}


# ------------------------------------------------------------------ torch
def torch_setup(a):
    import torch_reference as tr
    dev, name = tr.setup(a.threads, a.torch_device)
    return tr, dev, name


def device_notes(tr, dev, name, **more):
    """Notes every PyTorch case reports: the device's name and, on a GPU, its peak memory."""
    notes = {"device": name, **more}
    gpu = tr.gpu_memory_mb(dev)
    if gpu is not None:
        notes["gpu_mem_mb"] = gpu
    return notes


def torch_training(kind, a):
    tr, dev, name = torch_setup(a)
    # On a GPU, "reduce-overhead" (CUDA graphs) removes the launch gaps of a batch-128 step.
    compile_mode = None if a.compile == "off" else (
        "reduce-overhead" if dev.type == "cuda" else "default")
    times, warm, compiled = tr.time_training(kind, dev, a.steps, a.repeats,
                                             compile_mode=compile_mode, adam=a.adam)
    notes = device_notes(tr, dev, name, compile=a.compile, compile_mode=compile_mode,
                         compiled=compiled, adam=a.adam, warmup_s=warm)
    if a.compile == "auto" and compiled:                 # keep compile only where it helps
        eager, _, _ = tr.time_training(kind, dev, a.steps, a.repeats, adam=a.adam)
        notes["compile_kept"] = bool(np.median(times) < np.median(eager))
        notes["eager_median_s"] = float(np.median(eager))
        if not notes["compile_kept"]:
            times = eager
    return times, notes


def torch_iwae(a):
    """PyTorch's IWAE in inference mode; with ``--onednn auto`` (the default) its decoder
    is also timed on oneDNN (tr.OneDNNDecoder) and the faster of the two is kept."""
    import torch
    tr, dev, name = torch_setup(a)
    torch.manual_seed(0)
    model = tr.build_model("vae", dev).eval()
    X = torch.from_numpy(iwae_data(a.images)).to(dev)

    def run():
        tr.iwae_nll(model, X, k=256)                     # warm-up, as ours (every image)
        times, nll = [], None
        for _ in range(a.repeats):
            tr.sync(dev)
            t = time.perf_counter()
            nll = tr.iwae_nll(model, X, a.k)
            tr.sync(dev)
            times.append(time.perf_counter() - t)
        return times, nll

    with torch.inference_mode():
        times, nll = run() if a.onednn != "on" else (None, None)
        notes = {"onednn": a.onednn}
        if a.onednn != "off" and dev.type == "cpu":
            dense = model.decoder
            try:
                model.decoder = tr.OneDNNDecoder(dense)
                t1, nll1 = run()
            except Exception as exc:                     # a build without oneDNN
                notes["onednn_error"] = f"{type(exc).__name__}: {exc}"
                model.decoder, t1 = dense, None
            if t1 is not None:
                notes["eager_median_s"] = None if times is None else float(np.median(times))
                keep = times is None or np.median(t1) < np.median(times)
                notes["onednn_kept"] = bool(keep)
                if keep:
                    times, nll = t1, nll1
        if times is None:
            times, nll = run()
    return times, device_notes(tr, dev, name, nll=nll, **notes)


def torch_mi(a):
    import torch
    tr, dev, name = torch_setup(a)
    mu, logvar = (torch.from_numpy(v).to(dev) for v in posteriors())
    comp = a.compile != "off"
    t0 = time.perf_counter()
    tr.exact_aggregate_mi_md(mu, logvar, 1, compile_block=comp)   # warm-up (compiles)
    warm = time.perf_counter() - t0
    times, res = [], None
    for _ in range(a.repeats):
        tr.sync(dev)
        t = time.perf_counter()
        res = tr.exact_aggregate_mi_md(mu, logvar, a.points, compile_block=comp)
        tr.sync(dev)
        times.append(time.perf_counter() - t)
    return times, device_notes(tr, dev, name, **res, compile=a.compile, warmup_s=warm)


def torch_hs_kernel(a):
    tr, dev, name = torch_setup(a)
    times = tr.time_hs_kernel(dev, a.repeats, a.steps, V, H, sparse=a.sparse == "on")
    return times, device_notes(tr, dev, name, sparse=a.sparse)


# ------------------------------------------------------------------ data, peak
def iwae_data(n):
    """n random binary 'images' (float32); NLL values are meaningless, the cost is not."""
    return (np.random.default_rng(1).random((n, D)) < 0.13).astype(np.float32)


def posteriors():
    """N random diagonal Gaussians in d = 40 (float32), the same for both implementations."""
    rng = np.random.default_rng(2)
    mu = rng.standard_normal((N, LATENT)).astype(np.float32)
    logvar = (-2.0 + 0.5 * rng.standard_normal((N, LATENT))).astype(np.float32)
    return mu, logvar


def _best_gflops(fn, size, repeats):
    fn()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best / 1e9, best


def gemm_peak(impl, threads, size=1024, repeats=7):
    """Best float32 GFLOP/s of a size^3 matmul with ``threads`` threads.

    ``impl``: "ours" = NumPy's matmul with the BLAS as loaded (OpenBLAS picks its
    kernels by CPU model, and can pick AVX2 ones on an AVX-512 CPU it does not know:
    bench/run.py then also runs this case with ``OPENBLAS_CORETYPE`` set); "torch" =
    ``torch.mm`` (MKL in PyTorch's CPU wheels).  The machine's peak is the fastest of them.
    """
    rng = np.random.default_rng(0)
    A, Bm = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    if impl == "torch":
        import torch
        torch.set_num_threads(threads)
        tA, tB = torch.from_numpy(A), torch.from_numpy(Bm)
        tC = torch.empty_like(tA)
        g, best = _best_gflops(lambda: torch.mm(tA, tB, out=tC), size, repeats)
        return [g], {"seconds": best, "blas": f"torch {torch.__version__}"}
    from threadpoolctl import threadpool_info, threadpool_limits
    C = np.empty_like(A)
    with threadpool_limits(threads, user_api="blas"):
        g, best = _best_gflops(lambda: np.matmul(A, Bm, out=C), size, repeats)
    blas = ", ".join(f"{i['internal_api']} ({i.get('architecture')})"
                     for i in threadpool_info() if i.get("user_api") == "blas")
    return [g], {"seconds": best, "blas": f"NumPy {blas}",
                 "coretype": os.environ.get("OPENBLAS_CORETYPE")}


# ------------------------------------------------------------------ dispatch
def run_case(case, impl, a):
    """(times, notes, work per value, FLOPs per value) of one case and implementation."""
    if case == "peak":
        t, n = gemm_peak(a.impl, a.threads)
        return t, n, 1, None
    if case in ("vae", "hierarchical", "full"):
        fn = ours_training if impl == "ours" else torch_training
        t, n = fn(case, a)
        return t, n, 1, train_flops(case, n.get("first_layer_density", 1.0))
    if case == "iwae":
        t, n = (ours_iwae if impl == "ours" else torch_iwae)(a)
        return t, n, a.images * a.k, a.images * a.k * IWAE_FLOPS_PER_SAMPLE
    if case == "mi":
        t, n = (ours_mi if impl == "ours" else torch_mi)(a)
        return t, n, a.points, None
    if case == "hs_kernel":
        if impl == "torch":
            t, n = torch_hs_kernel(a)
        else:
            t, n = ours_hs_kernel(a, numpy_ref=impl == "numpy")
        return t, n, 1, None
    raise SystemExit(f"unknown case {case!r}")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", choices=["peak", "vae", "hierarchical", "full", "iwae", "mi",
                                    "hs_kernel"])
    p.add_argument("impl", choices=["ours", "torch", "numpy"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--k", type=int, default=4096)
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--compile", choices=["off", "on", "auto"], default="off")
    p.add_argument("--adam", choices=["fused", "foreach", "plain"], default="fused")
    p.add_argument("--sparse", choices=["on", "off"], default="on")
    p.add_argument("--onednn", choices=["off", "on", "auto"], default="auto",
                   help="PyTorch's IWAE decoder on oneDNN (auto: time both, keep the faster)")
    p.add_argument("--torch-device", choices=["cpu", "cuda"], default="cpu",
                   help="where the PyTorch reference runs (ours always runs on the CPU)")
    return p.parse_args(argv)


def main(argv=None):
    a = parse(argv)
    times, notes, work, flops = run_case(a.case, a.impl, a)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    print(json.dumps({"case": a.case, "impl": a.impl, "times": [float(t) for t in times],
                      "work": work, "flops": flops, "peak_rss_mb": peak_mb, "notes": notes}))


if __name__ == "__main__":
    main()
