"""Losses with their gradients.

Conventions: each loss is **summed over dimensions per example** (shape (B,)),
and the objective takes the **mean over the batch**; gradients returned here
are of the per-example sums (the caller divides by B).
"""
import numpy as np


def softplus(x):
    """log(1 + exp(x)), stable for any x."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def log_sigmoid(x):
    """log sigmoid(x) = -softplus(-x), stable for any x."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    """Stable logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def bernoulli_nll(logits, x):
    """-log p(x | logits) = sum_d softplus(l_d) - x_d l_d, per example (B,).

    Stable for any logit (|l| up to float max): no exp of a large positive number.
    """
    return (softplus(logits) - x * logits).sum(axis=1)


def bernoulli_nll_grad(logits, x, out=None):
    """d bernoulli_nll / d logits = sigmoid(l) - x (per example, not divided by B)."""
    if out is None:
        out = np.empty_like(logits)
    np.multiply(logits, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    out -= x
    return out


def gaussian_kl(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) = 0.5 sum_d (mu^2 + e^logvar - 1 - logvar), (B,)."""
    return 0.5 * (mu * mu + np.exp(logvar) - 1.0 - logvar).sum(axis=1)


def gaussian_kl_grad(mu, logvar):
    """(d KL/d mu, d KL/d logvar) = (mu, 0.5 (e^logvar - 1))."""
    return mu.copy(), 0.5 * np.expm1(logvar)


def reparameterize(mu, logvar, eps):
    """z = mu + exp(logvar / 2) * eps (eps ~ N(0, I) drawn by the caller)."""
    return mu + np.exp(0.5 * logvar) * eps


def reparameterize_grad(dz, logvar, eps):
    """Given dL/dz, return (dL/dmu, dL/dlogvar) through z = mu + exp(logvar/2) eps."""
    return dz.copy(), dz * eps * 0.5 * np.exp(0.5 * logvar)
