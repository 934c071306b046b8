"""Diagonal Gaussian log-densities and the analytic KL to N(0, I), in float64."""
import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


def diag_gaussian_logpdf(z, mu, logvar):
    """``sum_d log N(z_d; mu_d, exp(logvar_d))`` over the last axis (broadcasting)."""
    return -0.5 * np.sum(LOG_2PI + logvar + (z - mu) ** 2 * np.exp(-logvar), axis=-1)


def std_normal_logpdf(z):
    """``sum_d log N(z_d; 0, 1)`` over the last axis."""
    return -0.5 * np.sum(LOG_2PI + z * z, axis=-1)


def kl_to_std_normal(mu, logvar):
    """Per-row ``KL(N(mu, diag exp(logvar)) || N(0, I)) = 0.5 sum_d (mu^2 + e^logvar - 1 - logvar)``."""
    return 0.5 * np.sum(mu * mu + np.exp(logvar) - 1.0 - logvar, axis=-1)
