"""NumPy's BLAS against PyTorch's at the training step's GEMM shapes (batch 128), float32.

    python bench/gemm_shapes.py THREADS [THREADS ...]

Prints, per thread count and shape, the median of 300 calls of each (after 20 warm-ups)
and its GFLOP/s.  It tells whether a gap to PyTorch on some machine is the BLAS
(PyTorch's CPU wheels use MKL, NumPy's OpenBLAS).
"""
import sys

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from timing import median_us

SHAPES = [  # name, (m, k), (k, n)
    ("fwd 128x784x500", (128, 784), (784, 500)),
    ("fwd 128x500x500", (128, 500), (500, 500)),
    ("dW 500x128x500", (500, 128), (128, 500)),
    ("dec out 128x500x784", (128, 500), (500, 784)),
]


def main(threads):
    rng = np.random.default_rng(0)
    for nt in threads:
        torch.set_num_threads(nt)
        for name, sa, sb in SHAPES:
            a, b = (rng.random(s, dtype=np.float32) for s in (sa, sb))
            c = np.empty((sa[0], sb[1]), np.float32)
            ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.empty(sa[0], sb[1])
            with threadpool_limits(nt, user_api="blas"):
                t_np = median_us(lambda: np.matmul(a, b, out=c), n=300, warmup=20)
            t_pt = median_us(lambda: torch.mm(ta, tb, out=tc), n=300, warmup=20)
            flops = 2 * sa[0] * sa[1] * sb[1]
            print(f"threads={nt:2d} {name:22s} NumPy {t_np:7.1f} us ({flops / t_np / 1e3:5.0f} "
                  f"GFLOP/s)  PyTorch {t_pt:7.1f} us ({flops / t_pt / 1e3:5.0f} GFLOP/s)")


if __name__ == "__main__":
    main([int(t) for t in sys.argv[1:]] or [2])
