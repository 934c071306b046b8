"""Plain NumPy references of the compiled softmax kernels (tests compare against these).

Hierarchical softmax (``_ext/hsoftmax.pyx``), with nodes = paths[labels] and
sign = 2 codes[labels] - 1 on the first lengths[labels] entries of each row:

    score[b, j] = Wb[n, :h] . H[b] + Wb[n, h]
    logp[b]     = sum_j log_sigmoid(sign[b, j] score[b, j])
    g[b, j]     = dlogp[b] (codes[b, j] - sigmoid(score[b, j]))
    dH[b]       = sum_j g[b, j] Wb[n, :h]
    dWb[n]      = sum over (b, j) with nodes[b, j] = n of g[b, j] (H[b], 1)

Full softmax (``_ext/softmax_full.pyx``), x = logits + bias:

    logp[b] = x[b, label] - logsumexp(x[b]);   dlogits = dlogp (onehot - softmax(x))
"""
import numpy as np

from .tree import log_sigmoid


def _sigmoid(x):
    return np.exp(log_sigmoid(x))


def hs_forward(H, Wb, labels, paths, codes, lengths):
    """Returns logp (B,) and the path sigmoids sig (B, D) (0 beyond each path)."""
    h = H.shape[1]
    nodes, mask = paths[labels], np.arange(paths.shape[1]) < lengths[labels][:, None]
    W = Wb[nodes]                                         # (B, D, h+1)
    score = np.einsum("bdh,bh->bd", W[..., :h], H) + W[..., h]
    sign = 2.0 * codes[labels] - 1.0
    logp = (log_sigmoid(sign * score) * mask).sum(1)
    return logp.astype(H.dtype), (_sigmoid(score) * mask).astype(H.dtype)


def hs_backward(H, Wb, labels, paths, codes, lengths, sig, dlogp):
    """Returns dH (B, h), touched (k,) sorted distinct node ids, grad_rows (k, h+1)."""
    h = H.shape[1]
    nodes, mask = paths[labels], np.arange(paths.shape[1]) < lengths[labels][:, None]
    g = np.asarray(dlogp)[:, None] * (codes[labels] - sig) * mask    # (B, D)
    dH = np.einsum("bd,bdh->bh", g, Wb[nodes][..., :h])
    touched, inv = np.unique(nodes[mask], return_inverse=True)
    Hx = np.concatenate([H, np.ones((len(H), 1), H.dtype)], 1)
    grad_rows = np.zeros((len(touched), h + 1), H.dtype)
    np.add.at(grad_rows, inv, g[mask][:, None] * Hx[np.nonzero(mask)[0]])
    return dH.astype(H.dtype), touched, grad_rows


def sm_forward(logits, bias, labels):
    """Returns logp (B,) of the labels under softmax(logits + bias)."""
    x = logits + bias
    m = x.max(1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(1))
    return x[np.arange(len(x)), labels] - lse


def sm_backward(logits, bias, labels, dlogp):
    """Returns dlogits (B, V) = dlogp (onehot(labels) - softmax(logits + bias))."""
    x = logits + bias
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(x)), labels] = 1
    return np.asarray(dlogp)[:, None] * (onehot - p)


def sparse_adam(param, rows, grad, m, v, lr, beta1, beta2, eps, step):
    """Lazy Adam on rows ``rows`` (distinct) of param/m/v, in place (NumPy fancy indexing)."""
    m[rows] = beta1 * m[rows] + (1 - beta1) * grad
    v[rows] = beta2 * v[rows] + (1 - beta2) * grad * grad
    mhat = m[rows] / (1 - beta1 ** step)
    vhat = v[rows] / (1 - beta2 ** step)
    param[rows] -= lr * mhat / (np.sqrt(vhat) + eps)
