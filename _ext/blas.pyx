# cython: language_level=3
"""``C += A^T B`` through numpy's own OpenBLAS (its ``cblas_?gemm`` with beta = 1).

``np.matmul(x.T, delta, out=C)`` calls ``cblas_sgemm`` with beta = 0, and OpenBLAS
then zeroes C in a pass of its own (``sgemm_beta``, a ``memset`` per column) before
its kernel adds the product into it: 3 % of the MNIST VAE step's samples in
``perf``.  A layer's weight gradient goes to a scratch buffer that the fused Adam
zeroes as it reads it (:func:`vaeas_np._ext.optim.adam_step` with ``zero_grad``),
so it can be accumulated into with beta = 1 and that pass disappears.

The addresses come from :mod:`vaeas_np.nn._blas` (numpy's OpenBLAS, found by
threadpoolctl), whose integers are 64-bit.  Same operands,
same kernel, same blocking: the product's bits are those of ``np.matmul`` (the
kernel adds each block's partial sums into C whatever beta was).
"""
from cython cimport floating
from libc.stdint cimport int64_t, uintptr_t

ctypedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float*,
                           int64_t, const float*, int64_t, float, float*, int64_t) noexcept nogil
ctypedef void (*dgemm64_t)(int, int, int, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t) noexcept nogil
cdef enum:
    ROW_MAJOR = 101
    NO_TRANS = 111
    TRANS = 112

cdef uintptr_t _sgemm = 0, _dgemm = 0


def set_gemm(uintptr_t sgemm, uintptr_t dgemm):
    """Use these ``cblas_sgemm`` / ``cblas_dgemm`` addresses (64-bit integers; 0: none)."""
    global _sgemm, _dgemm
    _sgemm, _dgemm = sgemm, dgemm


def available(dtype_char):
    """True when :func:`add_at_b` has a GEMM for this dtype ('f' or 'd')."""
    return (_sgemm if dtype_char == 'f' else _dgemm if dtype_char == 'd' else 0) != 0


def add_at_b(const floating[:, ::1] A,   # IN  (K, M)
             const floating[:, ::1] B,   # IN  (K, N)
             floating[:, ::1] C):        # IN/OUT (M, N): C += A^T B
    """C += A^T B with numpy's cblas GEMM (beta = 1).  Raises RuntimeError when no
    GEMM was set for this dtype (check :func:`available` first)."""
    cdef Py_ssize_t K = A.shape[0], M = A.shape[1], N = B.shape[1]
    if B.shape[0] != K or C.shape[0] != M or C.shape[1] != N:
        raise ValueError(f"add_at_b: shapes do not match: A ({K}, {M}), B ({B.shape[0]}, "
                         f"{N}), C ({C.shape[0]}, {C.shape[1]}); C must be (A.shape[1], "
                         f"B.shape[1])")
    if floating is float:
        if _sgemm == 0:
            raise RuntimeError("add_at_b: no float32 GEMM set (vaeas_np.nn._blas)")
    else:
        if _dgemm == 0:
            raise RuntimeError("add_at_b: no float64 GEMM set (vaeas_np.nn._blas)")
    if M == 0 or N == 0 or K == 0:
        return
    with nogil:
        if floating is float:
            (<sgemm64_t>_sgemm)(ROW_MAJOR, TRANS, NO_TRANS, M, N, K, 1.0, &A[0, 0], M,
                                &B[0, 0], N, 1.0, &C[0, 0], N)
        else:
            (<dgemm64_t>_dgemm)(ROW_MAJOR, TRANS, NO_TRANS, M, N, K, 1.0, &A[0, 0], M,
                                &B[0, 0], N, 1.0, &C[0, 0], N)
