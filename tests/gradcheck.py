"""Central finite differences in float64, shared by the gradient tests."""
import numpy as np


def numerical_grad(f, x, h=1e-5):
    """d f / d x by central differences; ``x`` is perturbed in place and restored.

    h = 1e-5 balances truncation (O(h^2)) against float64 round-off (O(eps / h)).
    """
    g = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return g


def rel_error(a, b, floor=1e-4):
    """Norm-wise relative error ||a - b|| / max(||a||, ||b||, 1e-4).

    The floor: central differences with h = 1e-5 carry an absolute error of ~1e-10
    (round-off eps |f| / h, truncation h^2 |f'''| / 6), so for gradients of norm
    below 1e-4 (saturated sigmoids, dead ReLUs) the check is absolute:
    ||a - b|| < 1e-6 * 1e-4 = 1e-10.  Where f sums terms of magnitude |t| >> 1 that
    cancel (softplus(l) - l for large l), the round-off is eps |t| / h instead: pass
    ``floor=1e-4 * |t|``.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    denom = max(np.linalg.norm(a), np.linalg.norm(b), floor)
    return np.linalg.norm(a - b) / denom
