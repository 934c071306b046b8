"""Our compiled GEMM, NumPy's BLAS and PyTorch's at the training step's GEMM shapes
(batch 128), float32.

    python bench/gemm_shapes.py THREADS [THREADS ...]

Prints, per thread count and shape, the median of 300 calls of each (after 20 warm-ups)
and its GFLOP/s.  It tells whether a gap to PyTorch on some machine is the BLAS
(PyTorch's CPU wheels use MKL, NumPy's OpenBLAS), and what the compiled GEMM
(``vaeas_np._ext.gemm``, float32 layers' forward and gradients where it is built) gains
over NumPy's.  Weight gradients read x^T as a transposed view, as the layers do; the
"ours fwd" figure includes the bias and ReLU that NumPy's and PyTorch's leave to a
separate pass.
"""
import sys

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from timing import median_us
from vaeas_np._ext import gemm

SHAPES = [  # name, (m, k), (k, n); "dW": A is the transpose of a (k, m) array
    ("fwd 128x784x500", (128, 784), (784, 500)),
    ("fwd 128x500x500", (128, 500), (500, 500)),
    ("dW 500x128x500", (500, 128), (128, 500)),
    ("dW 500x128x784", (500, 128), (128, 784)),
    ("dX^T 500x500x128", (500, 500), (500, 128)),
    ("dX^T 500x784x128", (500, 784), (784, 128)),
    ("dec out 128x500x784", (128, 500), (500, 784)),
    ("IWAE 4096x500x500", (4096, 500), (500, 500)),
    # wider layers: B's rows 4 KB apart (our GEMM packs its strips), and 1,000 for contrast
    ("fwd 128x1024x1024", (128, 1024), (1024, 1024)),
    ("fwd 128x1000x1000", (128, 1000), (1000, 1000)),
    ("dW 1024x128x1024", (1024, 128), (128, 1024)),
]


def main(threads):
    rng = np.random.default_rng(0)
    for nt in threads:
        torch.set_num_threads(nt)
        for name, sa, sb in SHAPES:
            a = (rng.random(sa[::-1], dtype=np.float32).T if name.startswith("dW")
                 else rng.random(sa, dtype=np.float32))
            b = rng.random(sb, dtype=np.float32)
            bias = rng.random(sb[1], dtype=np.float32)
            c = np.empty((sa[0], sb[1]), np.float32)
            ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.empty(sa[0], sb[1])
            fwd = name.startswith(("fwd", "dec", "IWAE"))
            n = 30 if sa[0] > 1000 else 300
            line = f"threads={nt:2d} {name:22s}"
            flops = 2 * sa[0] * sa[1] * sb[1]
            if gemm.available():
                t = median_us(lambda: gemm.sgemm(a, b, c, bias if fwd else None, fwd, False, nt),
                              n=n, warmup=20)
                line += f" ours {t:7.1f} us ({flops / t / 1e3:4.0f})"
            with threadpool_limits(nt, user_api="blas"):
                t_np = median_us(lambda: np.matmul(a, b, out=c), n=n, warmup=20)
            t_pt = median_us(lambda: torch.mm(ta, tb, out=tc), n=n, warmup=20)
            print(f"{line}  NumPy {t_np:7.1f} us ({flops / t_np / 1e3:4.0f})  "
                  f"PyTorch {t_pt:7.1f} us ({flops / t_pt / 1e3:4.0f} GFLOP/s)")


if __name__ == "__main__":
    main([int(t) for t in sys.argv[1:]] or [2])
