"""Per-example metrics: reconstruction term, analytic KL, active units."""
import numpy as np

from .._threads import thread_limits
from ._bernoulli import bernoulli_loglik
from .._validation import check_positive_int
from ._checks import check_data, check_posterior
from ._gaussian import kl_to_std_normal
from ._sampling import draw_noise, example_streams, reparameterise, root_entropy
from ..errors import InvalidParameterError


def reconstruction(model, X, rng=None, *, batch_examples=1024, return_per_example=False):
    """Mean of -log p(x|z) over the rows of X (n, D), one z ~ q(z|x) each (nats).

    A one-sample estimate of -E_q log p(x|z) (the paper's NLL_train on the
    training set).  Same z as ``negative_elbo`` and ``iwae_nll`` for the same rng.
    """
    X = check_data(X)
    be = check_positive_int(batch_examples, "batch_examples")
    entropy = root_entropy(rng)
    out = np.empty(X.shape[0])
    with thread_limits(getattr(model, "n_threads", None)) as nt:
        for b0 in range(0, X.shape[0], be):
            xb = X[b0:b0 + be].astype(np.float32, copy=False)
            mu, logvar = model.encode(xb)
            mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
            eps = draw_noise(example_streams(entropy, b0, b0 + xb.shape[0]), 1, mu.shape[1])
            z32 = reparameterise(mu, logvar, eps)[:, 0, :]
            out[b0:b0 + xb.shape[0]] = -bernoulli_loglik(xb, model.decode_logits(z32), nt)
    return out if return_per_example else float(out.mean())


def kl_divergence(mu, logvar, return_per_example=False):
    """Mean over rows of KL(N(mu, diag exp(logvar)) || N(0, I)), summed over dims (nats).

    KL = 0.5 sum_d (mu_d^2 + exp(logvar_d) - 1 - logvar_d); mu, logvar (n, d).
    """
    mu, logvar = check_posterior(mu, logvar)
    kl = kl_to_std_normal(mu, logvar)
    return kl if return_per_example else float(kl.mean())


def active_units(mu, threshold=0.01):
    """Number of latent dims d with Cov_x(E_q[z_d]) >= threshold (Burda et al. 2015).

    mu: (n, d) posterior means over a data set.  The activity of dim d is the
    variance over examples of mu[:, d], with ddof=0 (population variance,
    divide by n).
    """
    mu = check_data(mu, "mu").astype(np.float64, copy=False)
    if not np.isfinite(threshold) or threshold < 0:
        raise InvalidParameterError(f"threshold must be a finite number >= 0, got {threshold!r}.")
    return int(np.count_nonzero(mu.var(axis=0, ddof=0) >= threshold))
