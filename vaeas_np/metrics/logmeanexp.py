"""Stable log-mean-exp, whole rows or streamed in chunks of columns."""
import numpy as np

from ._ext import mixture


def logmeanexp_rows(A, n_threads=1):
    """``out[i] = log (1/k) sum_j exp(A[i, j])``; A (n, k) float32/64 -> float64 (n,)."""
    A = np.asarray(A)
    if A.dtype != np.float32:
        A = A.astype(np.float64, copy=False)
    return mixture.logmeanexp_rows(np.ascontiguousarray(A), n_threads)


class LogMeanExp:
    """Running log-mean-exp of n rows whose columns arrive in chunks.

    Keeps (m, s) per row with ``sum_j exp(a_ij) = s_i exp(m_i)``; ``add`` merges a
    chunk (n, kc) in the compiled kernel, ``result()`` returns
    ``m + log s - log k`` (float64 (n,)) with k the number of columns seen.
    Memory: 2 n floats, whatever k.
    """

    def __init__(self, n, n_threads=1):
        self.run_max = np.full(n, -np.inf)
        self.run_sum = np.zeros(n)
        self.count = 0
        self.n_threads = n_threads

    def add(self, chunk):
        chunk = np.asarray(chunk)
        if chunk.dtype != np.float32:
            chunk = chunk.astype(np.float64, copy=False)
        mixture.lse_accumulate(np.ascontiguousarray(chunk), self.run_max, self.run_sum,
                               self.n_threads)
        self.count += chunk.shape[1]
        return self

    def result(self):
        if self.count == 0:
            raise ValueError("LogMeanExp.result: no columns were added")
        with np.errstate(divide="ignore"):
            return self.run_max + np.log(self.run_sum) - np.log(self.count)
