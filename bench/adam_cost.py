"""What the dense Adam steps cost inside a training step: VAE and VAE-AS (tree softmax).

    python bench/adam_cost.py [--threads 2] [--blocks 20] [--steps 20]

Adam's update of the networks' weights runs in the weight-gradient GEMM's epilogue
(``Adam.step_slice_gemm``) and, for biases and the sparse first layer, in the fused
pass (``Adam.step_slice``).  Its cost is memory traffic: p, m and v (float32) read
and written once per step, 24 bytes per parameter (2.1M parameters in the VAE, 2.4M
with the classifier: 50-57 MB per step).  This times blocks of steps with the update
as it is, interleaved with blocks where ``step_slice_gemm`` runs the same GEMM into
a scratch buffer and ``step_slice`` does nothing (the tree's node rows keep their
sparse Adam), and prints the paired difference.  The models then stop learning,
which does not change the cost of a step (random binary inputs, as bench/step_cost.py).
"""
import argparse
import time

import numpy as np

from step_cost import build
from vaeas_np import VAE, VAEAS
from vaeas_np._ext import gemm
from vaeas_np._threads import thread_limits
from vaeas_np.nn import optim

N, D, B = 55_000, 784, 128


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args(argv)
    if not gemm.available():
        raise SystemExit("this build has no compiled GEMM (AVX-512F): nothing to measure")
    real = (optim.Adam.step_slice_gemm, optim.Adam.step_slice)
    scratch = {}

    def gemm_only(self, start, x, y, n_threads=None, scale=1.0):
        C = scratch.setdefault((x.shape[0], y.shape[1]),
                               np.empty((x.shape[0], y.shape[1]), np.float32))
        gemm.sgemm(x, y, C, None, False, False, a.threads)

    def nothing(self, *args, **kwargs):
        pass

    rng = np.random.default_rng(0)
    x = (rng.random((B, D)) < 0.13).astype(np.float32)
    kw = dict(seed=0, verbose=False, n_threads=a.threads)
    for name, model in (("VAE", build(VAE(**kw))),
                        ("VAE-AS (tree)", build(VAEAS(alpha=2.0, **kw)))):
        res = {"with": [], "without": []}
        with thread_limits(a.threads) as nt:
            model._nt = nt
            for net in model._networks():
                net.n_threads = nt
            for _ in range(10):
                model._train_step(x, rng.permutation(N)[:B])
            for r in range(a.blocks):
                for mode in (("with", "without") if r % 2 else ("without", "with")):
                    optim.Adam.step_slice_gemm, optim.Adam.step_slice = (
                        real if mode == "with" else (gemm_only, nothing))
                    idx = [rng.permutation(N)[:B].copy() for _ in range(a.steps)]
                    t = time.perf_counter()
                    for i in range(a.steps):
                        model._train_step(x, idx[i])
                    res[mode].append((time.perf_counter() - t) / a.steps)
        optim.Adam.step_slice_gemm, optim.Adam.step_slice = real
        w, wo = np.array(res["with"]) * 1e3, np.array(res["without"]) * 1e3
        n_params = sum(o.params.size for o in model.optimizers_.values())
        diff = float(np.median(w - wo))
        print(f"{name:14s} step {np.median(w):.3f} ms; without the dense Adam "
              f"{np.median(wo):.3f} ms; Adam {diff:.3f} ms per step (median of "
              f"{a.blocks} paired blocks) for {n_params / 1e6:.2f}M parameters: "
              f"{24 * n_params / diff / 1e6:.0f} GB/s")


if __name__ == "__main__":
    main()
