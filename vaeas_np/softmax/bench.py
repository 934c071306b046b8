"""Timing of the softmax output layers: ``python -m vaeas_np.softmax.bench [--V 55000 ...]``.

Measures one training step of the output layer (forward + backward + Adam step)
with the compiled kernels and with the NumPy references, for 1..n threads.
"""
import argparse
import time

import numpy as np

from .._threads import thread_limits
from . import reference as ref
from .full import FullSoftmax
from .hierarchical import HierarchicalSoftmax
from .tree import random_order


def _best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def bench_hierarchical(B, h, V, threads, repeat, seed=0):
    rng = np.random.default_rng(seed)
    L = HierarchicalSoftmax(h, V, order=random_order(V, seed), init_std=0.05, seed=seed,
                            n_threads=threads)
    H = rng.standard_normal((B, h)).astype(np.float32)
    labels = rng.integers(0, V, B)
    batches = [rng.integers(0, V, B) for _ in range(64)]   # fresh rows each step, as in training
    it = iter(range(1 << 62))

    def kernel():                       # the training path: forward with the gradients
        L.forward(H, batches[next(it) % len(batches)], with_grad=True)
        L.backward(1.0)
        L.step(-1.0 / B, 1e-3)

    t = L.tree

    def numpy_ref():
        logp, sig = ref.hs_forward(H, L.Wb, labels, t.paths, t.codes, t.lengths)
        dH, rows, g = ref.hs_backward(H, L.Wb, labels, t.paths, t.codes, t.lengths, sig,
                                      np.ones(B, np.float32))
        L.t += 1
        ref.sparse_adam(L.Wb, rows, g * np.float32(-1.0 / B), L.m, L.v, 1e-3, 0.9, 0.999,
                        1e-8, L.t)

    parts = {"forward": [], "backward": [], "step": []}
    for i in range(repeat):
        t0 = time.perf_counter()
        L.forward(H, batches[i % len(batches)])
        t1 = time.perf_counter()
        L.backward(1.0)
        t2 = time.perf_counter()
        L.step(-1.0 / B, 1e-3)
        t3 = time.perf_counter()
        for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[name].append(dt)
    parts = {name: float(np.median(v)) for name, v in parts.items()}
    return _best(kernel, repeat), _best(numpy_ref, max(3, repeat // 10)), parts, len(L.touched_rows)


def bench_full(B, h, V, threads, repeat, seed=0):
    rng = np.random.default_rng(seed)
    F = FullSoftmax(h, V, init_std=0.05, seed=seed, n_threads=threads)
    H = rng.standard_normal((B, h)).astype(np.float32)
    labels = rng.integers(0, V, B)

    def fb():
        F.forward(H, labels)
        F.backward(1.0)

    def fbs():
        fb()
        F.step(-1.0 / B, 1e-3)

    return _best(fb, repeat), _best(fbs, repeat)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--B", type=int, default=128)
    p.add_argument("--h", type=int, default=500)
    p.add_argument("--V", type=int, default=55000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--no-full", action="store_true")
    a = p.parse_args(argv)
    for n in a.threads:
        with thread_limits(n):
            (km, kb), (rm, rb), parts, k = bench_hierarchical(a.B, a.h, a.V, n, a.repeat)
            print(f"hierarchical B={a.B} h={a.h} V={a.V} float32 threads={n}: "
                  f"kernel fwd+bwd+step {km * 1e3:.3f} ms (min {kb * 1e3:.3f}) "
                  f"[fwd {parts['forward'] * 1e3:.3f}, bwd {parts['backward'] * 1e3:.3f}, "
                  f"step {parts['step'] * 1e3:.3f}; {k} touched rows]; "
                  f"NumPy reference {rm * 1e3:.2f} ms (min {rb * 1e3:.2f})")
            if not a.no_full:
                (fm, _), (sm, _) = bench_full(a.B, a.h, a.V, n, max(3, a.repeat // 20))
                print(f"full softmax B={a.B} h={a.h} V={a.V} float32 threads={n}: "
                      f"fwd+bwd (3 GEMMs) {fm * 1e3:.1f} ms, with dense Adam step "
                      f"{sm * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
