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


def relu_margin(*nets):
    """Smallest |pre-activation| of any ReLU unit in the last forward of the MLPs ``nets``.

    Central differences with step h are wrong where a perturbation moves a ReLU's input
    across 0 (a kink: hypothesis found a decoder unit at 4e-7 with h = 1e-5); gradient
    tests ``assume`` a margin well above h instead.
    """
    margin = np.inf
    for net in nets:
        for i, layer in enumerate(net.layers):
            if layer.activation != "relu":
                continue
            x_in = net._x if i == 0 else net._outs[i - 1]
            pre = np.asarray(x_in, np.float64) @ layer.W + layer.b
            if pre.size:
                margin = min(margin, float(np.abs(pre).min()))
    return margin
