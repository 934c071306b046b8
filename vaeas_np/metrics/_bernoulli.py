"""Bernoulli log-likelihood from logits (compiled kernel, NumPy reference)."""
import numpy as np

from .._ext import fused as _fused


def bernoulli_loglik(x, logits, n_threads=1):
    """``sum_D [x l - softplus(l)]`` over the last axis, as float64.

    x: (..., D) in [0, 1] (binary for a true likelihood), broadcast against
    logits (..., D) (e.g. 3-d ``(n, s, D)`` with x ``(n, 1, D)`` for importance
    samples: the s rows of one image share its x row, which is not copied).
    float32 and float64 logits are computed in their own precision by
    ``_ext.fused.bernoulli_rows`` (one pass, per-row sums in double) on
    ``n_threads`` threads; other dtypes in float64.  ``logits`` is not modified.
    Reference: :func:`bernoulli_loglik_reference`.
    """
    logits = np.asarray(logits)
    dt = logits.dtype if logits.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    x = np.asarray(x, dtype=dt)
    shape = np.broadcast_shapes(x.shape, logits.shape)
    D = shape[-1] if shape else 1
    L2 = np.ascontiguousarray(np.broadcast_to(logits, shape), dtype=dt).reshape(-1, D)
    if (x.ndim == len(shape) and x.ndim >= 2 and x.shape[-2] == 1 and shape[-2] > 1
            and x.shape[:-2] == shape[:-2] and x.shape[-1] == D):
        # one x row per group of shape[-2] logits rows (the IWAE's samples)
        X2, per = np.ascontiguousarray(x).reshape(-1, D), shape[-2]
    else:
        X2, per = np.ascontiguousarray(np.broadcast_to(x, shape)).reshape(-1, D), 1
    out = np.empty(L2.shape[0])
    _fused.bernoulli_rows(X2, L2, per, out, None, 1.0, int(n_threads))
    return out.reshape(shape[:-1])


def bernoulli_loglik_reference(x, logits):
    """NumPy reference of :func:`bernoulli_loglik`, in float64:
    ``sum_D x l - softplus(l)``, softplus(l) = max(l, 0) + log1p(exp(-|l|))."""
    l = np.asarray(logits, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    return (x * l - (np.maximum(l, 0) + np.log1p(np.exp(-np.abs(l))))).sum(-1)
