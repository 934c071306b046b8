"""Bernoulli log-likelihood from logits."""
import numpy as np


def bernoulli_loglik(x, logits):
    """``sum_D [x l - softplus(l)]`` over the last axis, as float64.

    x: (..., D) in [0, 1] (binary for a true likelihood), broadcast against
    logits (..., D).  Element-wise work in the logits' precision (float32
    for the models), sums in float64.  softplus(l) = max(l, 0) + log1p(e^-|l|).
    """
    sp = np.abs(logits)
    np.negative(sp, out=sp)
    np.exp(sp, out=sp)
    np.log1p(sp, out=sp)
    sp += np.maximum(logits, 0)
    xl = np.multiply(x, logits, dtype=logits.dtype)
    xl -= sp
    return xl.sum(axis=-1, dtype=np.float64)
