"""Log-density of an equal-weight diagonal Gaussian mixture (the aggregate posterior)."""
import numpy as np

from .._threads import get_num_threads
from ._checks import check_data, check_posterior
from ._ext import mixture
from ..errors import InvalidInputError


def gmm_logdensity(Z, mu, logvar, n_threads=None, *, block_components=256, block_points=64):
    """``out[m] = log (1/N) sum_n N(Z[m]; mu[n], diag exp(logvar[n]))``, float64 (M,).

    Z: (M, d) points; mu, logvar: (N, d).  O(M N d) time, O(N d) extra memory
    (never an M x N matrix), parallel over points with ``n_threads`` (None:
    library default).  All-float32 inputs compute the squared distances in
    float32 (faster); the log-sum-exp is float64 in any case.
    """
    Z = check_data(Z, "Z")
    check_posterior(mu, logvar)
    mu, logvar = np.asarray(mu), np.asarray(logvar)
    if Z.shape[1] != mu.shape[1]:
        raise InvalidInputError(f"Z has {Z.shape[1]} dims but the components have {mu.shape[1]}.")
    return mixture.gmm_logdensity(Z, mu, logvar, get_num_threads(n_threads),
                                  block_components, block_points)
