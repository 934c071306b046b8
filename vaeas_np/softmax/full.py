"""Full softmax output layer: s(e | h) = softmax(h W + b)_e, with dense Adam.

Same interface as :class:`~vaeas_np.softmax.hierarchical.HierarchicalSoftmax`.
The GEMMs write into preallocated outputs; in float32 the forward (h W) and the
weight gradient (h^T dlogits) run on the compiled GEMM (``_ext/gemm.h``, as the
layers do; ``VAEAS_NP_OWN_GEMM=0`` keeps ``np.matmul``) and the input gradient
(dlogits W^T, whose W^T is not contiguous) on NumPy's BLAS.  The row-wise
log-sum-exp and the in-place softmax gradient are compiled
(``_ext/softmax_full.pyx``).  Cost per example O(h V).
"""
import numpy as np

from .._ext import gemm as _gemm
from ..nn.layers import own_gemm
from ._common import OutputLayerBase, _hs_ext, _sm_ext


class FullSoftmax(OutputLayerBase):
    """Softmax over ``n_labels`` labels: parameters ``W`` (h, V) and ``b`` (V,).

    ``init_std``: W ~ N(0, init_std^2); the default 0 starts at the uniform
    distribution (b = 0 always).  Other arguments as HierarchicalSoftmax.
    Attributes after :meth:`backward`: ``grad_W`` (h, V), ``grad_b`` (V,):
    gradients of sum_b dlogp_b logp_b (unscaled).
    """

    def __init__(self, n_in, n_labels, dtype=np.float32, seed=None, rng=None, init_std=0.0,
                 n_threads=None):
        self._init_common(n_in, n_labels, dtype, n_threads, seed, rng)
        h, V = self.n_in, self.n_labels
        self.W = np.zeros((h, V), self.dtype)
        if init_std:
            self.W[...] = self.rng.normal(0.0, init_std, (h, V))
        self.b = np.zeros(V, self.dtype)
        self.grad_W = np.zeros_like(self.W)
        self.grad_b = np.zeros_like(self.b)
        self._mW, self._vW = np.zeros_like(self.W), np.zeros_like(self.W)
        self._mb, self._vb = np.zeros_like(self.b), np.zeros_like(self.b)
        self._all_rows = np.arange(self.n_in, dtype=np.int64)
        self._fresh = False

    def _alloc(self, B):
        self._logits = np.empty((B, self.n_labels), self.dtype)
        self._zinv = np.empty(B, self.dtype)

    def forward(self, H, labels, with_grad=False):
        """log s(labels[b] | H[b]): (B,) (an internal buffer; copy to keep).
        (``with_grad`` is accepted for the hierarchical layer's interface; unused.)

        Keeps a reference to ``H`` for backward; the (B, V) logits buffer then
        holds exp(x - max x) per row, which backward turns into dlogits in place.
        """
        H, labels = self._check_input(H, labels)
        B = H.shape[0]
        self._ensure_capacity(B)
        logits, logp = self._logits[:B], self._logp_buf[:B]
        if own_gemm(self.W, logits):
            _gemm.sgemm(H, self.W, logits, n_threads=self.threads)
        else:
            np.matmul(H, self.W, out=logits)
        _sm_ext.forward(logits, self.b, labels, logp, self._zinv[:B], self.threads)
        self._H, self._labels, self._B = H, labels, B
        self._fresh = True
        self._have_grad = False
        return logp

    def backward(self, dlogp=1.0, need_dH=True):
        """Gradients of ``sum_b dlogp[b] * logp[b]``: returns dH (B, h), sets grad_W, grad_b.

        Once per forward (the logits buffer is consumed in place).
        """
        d = self._dlogp(dlogp)
        if not self._fresh:
            raise RuntimeError("FullSoftmax.backward() may run once per forward().")
        B = self._B
        dlogits = self._logits[:B]
        _sm_ext.backward(dlogits, self._zinv[:B], self._labels, d, self.threads)
        self._fresh = False
        if own_gemm(dlogits, self.grad_W):
            _gemm.sgemm(self._H.T, dlogits, self.grad_W, n_threads=self.threads)
        else:
            np.matmul(self._H.T, dlogits, out=self.grad_W)
        np.sum(dlogits, axis=0, out=self.grad_b)
        self._have_grad = True
        if not need_dH:
            return None
        return np.matmul(dlogits, self.W.T, out=self._dH_buf[:B])

    def step(self, scale, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        """Adam on W and b with gradient ``scale * grad`` (``scale = -1/B`` for SC).

        Textbook Adam (as ``vaeas_np._ext.optim.adam_step``), run by the fused
        kernel ``_ext.hsoftmax.sparse_adam_scaled`` over all rows.
        """
        self._check_step(lr, beta1, beta2, eps)
        self.t += 1
        for p, g, m, v in ((self.W, self.grad_W, self._mW, self._vW),
                           (self.b[None], self.grad_b[None], self._mb[None], self._vb[None])):
            # dense Adam = the fused row kernel over all rows (W: h rows of V)
            _hs_ext.sparse_adam_scaled(p, self._all_rows[:len(p)], g, scale, m, v, lr, beta1,
                                       beta2, eps, self.t, self.threads)
        self._have_grad = False

    # ---- evaluation ----

    def log_prob_all(self, H):
        """log s(e | h) for every label: (B, V) float64."""
        H = self._check_input(H)
        x = (H @ self.W).astype(np.float64)
        x += self.b
        m = x.max(1, keepdims=True)
        return x - (m + np.log(np.exp(x - m).sum(1, keepdims=True)))

    def entropy(self, H, chunk_elems=1 << 21):
        """Entropy of s(. | h) per row: (B,) float64, ``chunk_elems // V`` rows at a time."""
        H = self._check_input(H)
        c = self._rows_chunk(chunk_elems)
        out = np.empty(H.shape[0])
        for i in range(0, H.shape[0], c):
            lp = self.log_prob_all(H[i:i + c])
            out[i:i + c] = -(np.exp(lp) * lp).sum(1)
        return out

    def params(self):
        """[W, b] (views)."""
        return [self.W, self.b]

    def grads(self):
        """[grad_W, grad_b] of the last backward."""
        return [self.grad_W, self.grad_b]
