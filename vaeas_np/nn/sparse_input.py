"""A mostly-zero input batch as padded sparse rows, for the encoder's first layer.

Binarised images are about 87 % zeros, so the first layer's forward ``x @ W`` and
its weight gradient ``x.T @ delta`` need only about an eighth of a dense GEMM's
multiply-adds.  :class:`SparseRows` holds a batch in that form and calls the
compiled kernels (``vaeas_np._ext.sparse_input``); the ``*_reference`` functions
say in NumPy what they compute (the tests compare the two).

Measured (2 threads, batch 128, 784 x 500, 13 % nonzeros, medians of 200 calls):
forward 0.17-0.20 ms against 0.52 ms for NumPy's GEMM, weight gradient
0.18-0.21 against 0.49-0.51 ms, building the rows 0.03-0.05 ms.  Both scale with
the number of nonzeros, so the dense GEMM is the faster one above about 40 %:
:data:`MAX_DENSITY` keeps a margin.
"""
import numpy as np

from .._ext import sparse_input as _sparse

#: largest fraction of nonzero inputs for which the sparse kernels are used
MAX_DENSITY = 0.25


class SparseRows:
    """Work buffers for batches of ``batch`` rows of ``n_features``; :meth:`load` fills them."""

    def __init__(self, batch, n_features, dtype):
        self.idx = np.empty((batch, n_features), np.int32)
        self.val = np.empty((batch, n_features), dtype)
        self.cnt = np.empty(batch, np.int32)
        self.cptr = np.empty(n_features + 1, np.int32)
        # the column-ordered copy for x.T @ delta: sized for MAX_DENSITY (the most
        # the layers use it for), grown in t_matmul when a denser batch needs more
        n = max(int(np.ceil(batch * n_features * MAX_DENSITY)), 1)
        self.crow = np.empty(n, np.int32)
        self.cval = np.empty(n, dtype)
        self.nnz = 0
        self.columns_ready = False          # crow, cval, cptr hold the loaded x's columns

    def load(self, x, n_threads=1, side=None):
        """Store ``x`` (C-contiguous, this dtype); returns the fraction of nonzeros.

        float32: the rows and x's columns (for :meth:`t_matmul`) are built in one
        parallel region, and ``side`` (a :class:`vaeas_np._ext.noise.NormalFill`, or
        None) runs on one of its threads meanwhile; float64: the rows only, ``side``
        first.
        """
        if self.val.dtype == np.float32:
            args = (x, self.idx, self.val, self.cnt, self.cptr, self.crow, self.cval,
                    n_threads)
            if side is None:
                self.nnz, self.columns_ready = _sparse.load_rows_cols(*args)
            else:
                with side.lock:             # the generator's, as its own methods take it
                    self.nnz, self.columns_ready = _sparse.load_rows_cols(
                        *args, side.fn, side.ctx)
        else:
            if side is not None:
                side()
            self.nnz = _sparse.to_rows(x, self.idx, self.val, self.cnt, n_threads)
            self.columns_ready = False
        return self.nnz / max(x.size, 1)

    def matmul(self, W, out, n_threads=1):
        """out = x @ W."""
        _sparse.rows_matmul(self.idx, self.val, self.cnt, W, out, n_threads)
        return out

    def t_matmul(self, delta, out, n_threads=1):
        """out = x.T @ delta."""
        if not self.columns_ready and self.nnz > self.crow.shape[0]:
            self.crow = np.empty(self.nnz, np.int32)
            self.cval = np.empty(self.nnz, self.cval.dtype)
        _sparse.rows_t_matmul(self.idx, self.val, self.cnt, delta, out, self.cptr,
                              self.crow, self.cval, n_threads, self.columns_ready)
        return out


def to_rows_reference(x):
    """(idx, val, cnt) of ``x``: nonzeros of each row, ascending columns, zero-padded."""
    B, D = x.shape
    idx, val = np.zeros((B, D), np.int32), np.zeros((B, D), x.dtype)
    cnt = np.zeros(B, np.int32)
    for i in range(B):
        (nz,) = np.nonzero(x[i])
        cnt[i] = len(nz)
        idx[i, :len(nz)], val[i, :len(nz)] = nz, x[i, nz]
    return idx, val, cnt


def rows_matmul_reference(idx, val, cnt, W):
    """x @ W from the rows."""
    out = np.zeros((idx.shape[0], W.shape[1]), W.dtype)
    for i in range(idx.shape[0]):
        n = cnt[i]
        out[i] = val[i, :n] @ W[idx[i, :n]]
    return out


def rows_t_matmul_reference(idx, val, cnt, delta):
    """x.T @ delta from the rows."""
    out = np.zeros((idx.shape[1], delta.shape[1]), delta.dtype)
    for i in range(idx.shape[0]):
        n = cnt[i]
        out[idx[i, :n]] += val[i, :n, None] * delta[i]
    return out
