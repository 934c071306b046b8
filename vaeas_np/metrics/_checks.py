"""Argument checks shared by the metrics (each error says what to do)."""
import numpy as np

from ..errors import InvalidInputError


def check_data(X, name="X"):
    """A finite 2-D float array (n, D) with n >= 1."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise InvalidInputError(f"{name} must be a non-empty 2-D array (n_examples, n_features), "
                                f"got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise InvalidInputError(f"{name} must be numeric, got dtype {X.dtype}.")
    if not np.all(np.isfinite(X)):
        raise InvalidInputError(f"{name} contains NaN or inf; clean the data first.")
    return X


def check_posterior(mu, logvar):
    """mu, logvar: finite float64 arrays of the same shape (n, d), n >= 1."""
    mu = check_data(mu, "mu").astype(np.float64, copy=False)
    logvar = check_data(logvar, "logvar").astype(np.float64, copy=False)
    if mu.shape != logvar.shape:
        raise InvalidInputError(f"mu and logvar must have the same shape, got {mu.shape} "
                                f"and {logvar.shape}.")
    return mu, logvar


