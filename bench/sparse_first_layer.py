"""The encoder's first layer with a sparse input against NumPy's dense GEMM.

    python bench/sparse_first_layer.py [--threads 2] [--density 0.13]

Batch 128 x 784 binary pixels (``density`` of them ones), 500 outputs, float32:
times (median of 200 calls) of building the sparse rows, the forward x @ W and the
weight gradient x.T @ delta with the compiled kernels, and of NumPy's GEMMs.
"""
import argparse
import numpy as np

from timing import median_us
from vaeas_np._threads import thread_limits
from vaeas_np.nn.sparse_input import SparseRows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--density", type=float, default=0.13)
    a = p.parse_args(argv)
    B, D, H = 128, 784, 500
    rng = np.random.default_rng(0)
    x = (rng.random((B, D)) < a.density).astype(np.float32)
    W = rng.standard_normal((D, H)).astype(np.float32)
    delta = rng.standard_normal((B, H)).astype(np.float32)
    out, dW = np.empty((B, H), np.float32), np.empty((D, H), np.float32)
    rows = SparseRows(B, D, np.float32)
    with thread_limits(a.threads) as nt:
        rows.load(x, nt)
        res = {"sparse rows": median_us(lambda: rows.load(x, nt)),
               "x @ W, sparse": median_us(lambda: rows.matmul(W, out, nt)),
               "x @ W, GEMM": median_us(lambda: np.matmul(x, W, out=out)),
               "x.T @ delta, sparse": median_us(lambda: rows.t_matmul(delta, dW, nt)),
               "x.T @ delta, GEMM": median_us(lambda: np.matmul(x.T, delta, out=dW))}
    print(f"threads={a.threads} density={rows.nnz / x.size:.3f} (us, median of 200 calls)")
    for k, v in res.items():
        print(f"  {k:22s} {v:8.1f}")


if __name__ == "__main__":
    main()
