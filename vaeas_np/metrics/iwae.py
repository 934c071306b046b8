"""Importance-weighted negative log-likelihood (Burda et al. 2015) and the negative ELBO.

For each example x, with z_1..z_k ~ q(z|x) = N(mu(x), diag exp(logvar(x)))::

    NLL_k(x) = -log (1/k) sum_j exp(w_j),
    w_j = log p(x|z_j) + log p(z_j) - log q(z_j|x),      p(z) = N(0, I),
    log p(x|z) = sum_D [x l - softplus(l)],               l = decode_logits(z).

E[NLL_k] decreases with k towards -log p(x); E[NLL_1] = negative ELBO.

Samples are reparameterised from one random stream per example (see
``_sampling``), so the value does not depend on ``batch_examples`` or
``chunk_samples``.  The decoder runs on ``batch_examples * chunk_samples``
float32 rows at a time and the per-example log-mean-exp is merged across
sample chunks by the compiled kernel.  Peak extra memory is about
``batch_examples * chunk_samples * (16 D + 40 d)`` bytes plus the model's own
activations for that many rows (defaults, D = 784, d = 40: about 58 MB),
whatever k is.
"""
import numpy as np

from .._threads import thread_limits
from ._bernoulli import bernoulli_loglik
from .._validation import check_positive_int
from ._checks import check_data
from ._gaussian import kl_to_std_normal
from ._sampling import (draw_noise, example_streams, posterior_samples, reparameterise,
                        root_entropy)
from ._ext import mixture
from .logmeanexp import LogMeanExp


def _encode(model, Xb):
    mu, logvar = model.encode(Xb)
    return np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)


def _log_weights(model, xb, mu, logvar, ivar, z32, n_threads=1):
    """w (n, s) = log p(x|z) + log p(z) - log q(z|x) at the float32 samples z32 (n, s, d)
    (z = float32(mu + sigma eps)); ``ivar = exp(-logvar)``."""
    n, s, d = z32.shape
    logits = model.decode_logits(z32.reshape(n * s, d))
    w = bernoulli_loglik(xb[:, None, :], logits.reshape(n, s, -1), n_threads)
    ratio = np.empty((n, s))
    mixture.gaussian_log_ratio(z32, mu, logvar, ivar, ratio, n_threads)
    w += ratio                              # + log p(z) - log q(z|x), one compiled pass
    return w


def iwae_nll(model, X, k=5000, *, rng=None, batch_examples=32, chunk_samples=None,
             return_per_example=False):
    """Mean importance-weighted NLL in nats over the rows of X (n, D).

    k: importance samples per example; rng: None / int seed / Generator /
    SeedSequence; batch_examples x chunk_samples: decoder rows per call
    (``chunk_samples=None``: about 4096 rows per call, large enough for efficient
    GEMMs whatever the number of examples).
    ``return_per_example=True`` returns the float64 (n,) values instead of their mean.
    """
    X = check_data(X)
    k = check_positive_int(k, "k")
    be = check_positive_int(batch_examples, "batch_examples")
    if chunk_samples is None:
        chunk_samples = max(1, 4096 // min(be, X.shape[0]))
    cs = check_positive_int(chunk_samples, "chunk_samples")
    entropy = root_entropy(rng)
    out = np.empty(X.shape[0])
    with thread_limits(getattr(model, "n_threads", None)) as nt:
        for b0 in range(0, X.shape[0], be):
            xb = X[b0:b0 + be].astype(np.float32, copy=False)
            mu, logvar = _encode(model, xb)
            streams = example_streams(entropy, b0, b0 + xb.shape[0])
            ivar, sd = np.exp(-logvar), np.exp(0.5 * logvar)
            acc = LogMeanExp(xb.shape[0], nt)
            for s0 in range(0, k, cs):
                z32 = posterior_samples(streams, mu, logvar, min(cs, k - s0), nt, sd=sd)
                acc.add(_log_weights(model, xb, mu, logvar, ivar, z32, nt))
            out[b0:b0 + xb.shape[0]] = -acc.result()
    return out if return_per_example else float(out.mean())


def negative_elbo(model, X, rng=None, *, batch_examples=1024, return_per_example=False):
    """Mean negative ELBO in nats: -log p(x|z) (one z ~ q(z|x)) + analytic KL(q(z|x) || N(0, I)).

    Uses the same per-example streams as ``iwae_nll``: with the same rng, its
    z is the first sample of ``iwae_nll``, and ``iwae_nll(k=1)`` differs from
    it only by (log q(z|x) - log p(z)) - KL, which has mean zero.
    """
    X = check_data(X)
    be = check_positive_int(batch_examples, "batch_examples")
    entropy = root_entropy(rng)
    out = np.empty(X.shape[0])
    with thread_limits(getattr(model, "n_threads", None)) as nt:
        for b0 in range(0, X.shape[0], be):
            xb = X[b0:b0 + be].astype(np.float32, copy=False)
            mu, logvar = _encode(model, xb)
            eps = draw_noise(example_streams(entropy, b0, b0 + xb.shape[0]), 1, mu.shape[1])
            z32 = reparameterise(mu, logvar, eps)[:, 0, :]
            ll = bernoulli_loglik(xb, model.decode_logits(z32), nt)
            out[b0:b0 + xb.shape[0]] = kl_to_std_normal(mu, logvar) - ll
    return out if return_per_example else float(out.mean())
