"""Plain NumPy references for the compiled kernels of ``vaeas_np._ext.mixture``.

Obviously correct and slow; the tests compare the kernels against these.
"""
import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


def logmeanexp_rows_reference(A):
    """``out[i] = log (1/k) sum_j exp(A[i, j])``, A (n, k) -> float64 (n,)."""
    A = np.asarray(A, dtype=np.float64)
    m = A.max(axis=1, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(np.exp(A - m).mean(axis=1)) + m[:, 0]


def diag_gaussian_logpdf_matrix(Z, mu, logvar):
    """``L[m, n] = log N(Z[m]; mu[n], diag exp(logvar[n]))``, an (M, N) float64 matrix."""
    Z, mu, logvar = (np.asarray(a, dtype=np.float64) for a in (Z, mu, logvar))
    diff = Z[:, None, :] - mu[None, :, :]
    return -0.5 * (LOG_2PI * Z.shape[1] + logvar.sum(1)[None, :]
                   + (diff ** 2 * np.exp(-logvar)[None, :, :]).sum(-1))


def gmm_logdensity_reference(Z, mu, logvar, block_points=None):
    """``log (1/N) sum_n N(Z[m]; mu[n], diag exp(logvar[n]))`` for each row of Z, float64 (M,).

    ``block_points`` evaluates that many points at a time (an (block, N, d)
    temporary); None does all at once.
    """
    M = np.asarray(Z).shape[0]
    b = M if block_points is None else max(1, int(block_points))
    return np.concatenate([
        logmeanexp_rows_reference(diag_gaussian_logpdf_matrix(Z[i:i + b], mu, logvar))
        for i in range(0, M, b)] or [np.empty(0)])
