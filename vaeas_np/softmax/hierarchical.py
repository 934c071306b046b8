"""Hierarchical (binary-tree) softmax output layer with sparse, lazy Adam.

    log s(e | h) = sum_{j < L_e} log sigmoid(sign_j (w_{n_j} . h + b_{n_j}))

over the path of label e in a balanced tree (:mod:`vaeas_np.softmax.tree`).
Parameters: one matrix ``Wb`` (V-1, h+1), row n = (w_n, b_n) (bias last).
Cost per example O(h log V); a backward touches only the nodes on the
batch's paths and :meth:`step` updates only those rows (and their moments).

Training protocol (SPEC section 3)::

    logp = layer.forward(H, labels)            # (B,)  log s(e_i | h_i)
    dH = layer.backward(1.0)                   # d(sum_i log s_i)/dH, (B, h)
    layer.step(scale=-1.0 / B, lr=1e-3)        # classifier minimises SC = -mean log s
    dH *= (alpha - beta) / B                   # encoder's share of the gradient
"""
import numpy as np

from ._common import OutputLayerBase, _hs_ext, _optim_ext
from ..errors import InvalidParameterError
from .tree import Tree


class HierarchicalSoftmax(OutputLayerBase):
    """Binary-tree softmax over ``n_labels`` labels of ``n_in``-dimensional inputs.

    Parameters
    ----------
    n_in : int            h, width of the classifier's last hidden layer.
    n_labels : int        V >= 2.
    order : (V,) int, optional   label at each leaf slot (default: identity);
                          see :func:`~vaeas_np.softmax.tree.kd_order` / ``random_order``.
    dtype : float32 | float64.
    seed, rng :           randomness of the initialisation (``rng`` wins).
    init_std : float      node weights ~ N(0, init_std^2), biases 0.  The default 0
                          (all-zero rows, as word2vec / fastText) starts every split at
                          1/2, so s(.|h) is uniform (exactly 1/V for V a power of 2)
                          and I_hat starts at ~0; the rows get gradients from the first
                          batch (g (h, 1) with g = code - 1/2), dH is 0 at first.
    n_threads : int or None   threads of the kernels (None -> library default).
    adam_kernel : "fused" | "shared"   which sparse Adam kernel :meth:`step` uses
                          (same update; see :meth:`step`).

    Attributes after :meth:`backward`: ``touched_rows`` (k,) int64 distinct node ids
    (first-seen order), ``grad_rows`` (k, h+1) gradient of sum_b dlogp_b logp_b for
    those rows (unscaled).
    """

    def __init__(self, n_in, n_labels, order=None, dtype=np.float32, seed=None, rng=None,
                 init_std=0.0, n_threads=None, adam_kernel="fused"):
        self._init_common(n_in, n_labels, dtype, n_threads, seed, rng)
        if adam_kernel not in ("fused", "shared"):
            raise InvalidParameterError(f"adam_kernel must be 'fused' or 'shared', got "
                                        f"{adam_kernel!r}.")
        self.adam_kernel = adam_kernel
        self.tree = Tree.build(self.n_labels, order)
        R, h = self.n_labels - 1, self.n_in
        self.Wb = np.zeros((R, h + 1), self.dtype)
        if init_std:
            self.Wb[:, :h] = self.rng.normal(0.0, init_std, (R, h))
        self.m = np.zeros_like(self.Wb)
        self.v = np.zeros_like(self.Wb)
        # Write the zeros now.  np.zeros maps pages that are touched only when first
        # written, and the lazy Adam writes a few rows at a time: the first epoch
        # would take the page faults (and the kernel's zeroing) of 220 MB of moments
        # at V = 55,000 in passing (2.6 % of a fresh VAE-AS step's perf samples).
        # The node table too when it starts at zero (init_std=0, the default): the
        # forward reads it first (the kernel maps its shared zero page) and the first
        # Adam write then faults again (2 % of the samples of 1,000 fresh steps).
        self.m.fill(0)
        self.v.fill(0)
        if not init_std:
            self.Wb.fill(0)
        self._node_slot = np.full(R, -1, np.int64)
        self._k = 0
        self.row_lr = None          # per-node learning-rate factors (set_row_learning_rates)
        self._fwd_grad = False      # the last forward also formed g and dH (dlogp = 1)
        self._rows_formed = False   # grad_rows holds the last backward's node rows
        self._scratch = None

    # ---- buffers ----

    def _alloc(self, B):
        D, h = self.tree.depth, self.n_in
        kmax = min(B * D, self.n_labels - 1)
        self._sig = np.empty((B, D), self.dtype)
        self._g = np.empty((B, D), self.dtype)
        self._touched = np.empty(kmax, np.int64)
        self._offsets = np.empty(kmax + 1, np.int64)
        self._cursor = np.empty(kmax, np.int64)
        self._occ = np.empty(B * D, np.int64)
        self._k_out = np.zeros(1, np.int64)     # k of the grouping done in the forward
        self._grad_rows = np.empty((kmax, h + 1), self.dtype)
        self._scaled = np.empty((kmax, h + 1), self.dtype)

    def _scratch_rows(self, n):
        """(n, h+1) per-thread scratch of the fused node-rows + Adam kernel."""
        if self._scratch is None or self._scratch.shape[0] < n:
            self._scratch = np.empty((n, self.n_in + 1), self.dtype)
        return self._scratch

    # ---- training path ----

    def forward(self, H, labels, with_grad=False):
        """log s(labels[b] | H[b]) for each row: (B,) in the layer's dtype.

        Keeps references to ``H`` and ``labels`` for :meth:`backward` and
        :meth:`step` (do not modify them in between).  The returned array is an
        internal buffer overwritten by the next forward: copy it to keep it.
        ``with_grad=True`` (training, when ``backward(1.0)`` follows) also forms the
        per-example gradients while each example's path rows are still in cache;
        backward then only groups the occurrences by node (the same numbers either way).
        """
        H, labels = self._check_input(H, labels)
        B = H.shape[0]
        self._ensure_capacity(B)
        t = self.tree
        logp = self._logp_buf[:B]
        if with_grad:       # ... and one thread groups the occurrences by node meanwhile
            _hs_ext.forward(H, self.Wb, labels, t.paths, t.codes, t.lengths, logp,
                            self._sig[:B], self.threads, self._g[:B], self._dH_buf[:B],
                            self._node_slot, self._touched, self._offsets, self._cursor,
                            self._occ, self._k_out)
        else:
            _hs_ext.forward(H, self.Wb, labels, t.paths, t.codes, t.lengths, logp,
                            self._sig[:B], self.threads)
        self._H, self._labels, self._B = H, labels, B
        self._have_grad = False
        self._fwd_grad = with_grad        # g, dH and the grouping for dlogp = 1
        return logp

    def backward(self, dlogp=1.0, need_dH=True):
        """Gradients of ``sum_b dlogp[b] * logp[b]`` (dlogp scalar or (B,)).

        Returns dH (B, h) (an internal buffer; ``None`` if ``need_dH`` is
        False) and sets ``touched_rows`` / ``grad_rows``.  No scaling is
        applied: the caller scales dH, and :meth:`step` scales the rows.
        """
        d = self._dlogp(dlogp)
        B, t = self._B, self.tree
        dH = self._dH_buf[:B]
        # forward's gradients serve once (the caller may overwrite dH in place)
        have = self._fwd_grad and np.ndim(dlogp) == 0 and float(dlogp) == 1.0
        self._fwd_grad = False
        if have:            # the forward left g, dH and the grouping: nothing left to do
            self._k = int(self._k_out[0])
        else:
            self._k = _hs_ext.backward(
                self._H, self.Wb, self._labels, t.paths, t.codes, t.lengths, self._sig[:B],
                d, self._g[:B], dH, self._node_slot, self._touched, self._offsets,
                self._cursor, self._occ, self._grad_rows, need_dH, self.threads, False,
                False)
        self._have_grad = True
        self._rows_formed = False       # formed on demand (grad_rows) or fused into step
        return dH if need_dH else None

    @property
    def touched_rows(self):
        """(k,) int64 distinct ids of the nodes on the last batch's paths."""
        return self._touched[:self._k]

    @property
    def grad_rows(self):
        """(k, h+1) gradient rows of ``touched_rows`` from the last backward.

        Formed on first access (training never asks: :meth:`step` forms each row
        and updates its node in one pass)."""
        if not self._rows_formed and self._k:
            _hs_ext.node_rows(self._H, self._g[:self._B], self._occ, self._offsets, self._k,
                              self._grad_rows, self.threads)
        self._rows_formed = True
        return self._grad_rows[:self._k]

    def step(self, scale, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        """Lazy Adam on the touched rows with gradient ``scale * grad_rows``.

        Use ``scale = -1 / B`` after ``backward(1.0)`` to descend SC = -mean log s.
        Untouched rows keep their values and moments; the bias correction uses
        the global step counter ``t`` (as PyTorch's SparseAdam).  The update is
        the textbook Adam of ``vaeas_np._ext.optim.sparse_adam_rows``; by default
        (``adam_kernel="fused"``) it runs as ``_ext.hsoftmax.sparse_adam_scaled``,
        which folds in ``scale`` and computes in the layer's dtype so that it
        vectorises (about 3x faster in float32), or, when :attr:`grad_rows` has not
        been read since the backward, as ``_ext.hsoftmax.node_rows_adam``, which
        also forms each gradient row just before updating its node (the same
        numbers, without writing the rows out and reading them back);
        ``adam_kernel="shared"`` uses ``optim.sparse_adam_rows`` on a scaled copy
        of the rows.  ``H`` from the forward must still be unchanged.
        """
        self._check_step(lr, beta1, beta2, eps)
        self.t += 1
        if self.adam_kernel == "shared":
            if self.row_lr is not None:
                raise InvalidParameterError("per-node learning rates (row_lr) need "
                                            "adam_kernel='fused'")
            k = self._k
            g = np.multiply(self.grad_rows, self.dtype.type(scale), out=self._scaled[:k])
            _optim_ext.sparse_adam_rows(self.Wb, self._touched[:k], g, self.m, self.v,
                                        lr, beta1, beta2, eps, self.t, self.threads)
        elif self._rows_formed:
            _hs_ext.sparse_adam_scaled(self.Wb, self.touched_rows, self._grad_rows, scale,
                                       self.m, self.v, lr, beta1, beta2, eps, self.t,
                                       self.threads, self.row_lr)
        else:               # each gradient row formed in cache and applied at once
            nt = self.threads
            _hs_ext.node_rows_adam(self._H, self._g[:self._B], self._occ, self._offsets,
                                   self.touched_rows, self.Wb, self.m, self.v,
                                   self._scratch_rows(nt), scale, lr, beta1, beta2, eps,
                                   self.t, nt, self.row_lr)
        self._have_grad = False

    def set_row_learning_rates(self, factors):
        """Per-node learning-rate factors: node n is updated with ``lr * factors[n]``
        (``factors`` (V-1,) positive and finite; None: all 1).  See
        :meth:`subtree_sizes` for choosing them by depth."""
        if factors is None:
            self.row_lr = None
            return
        f = np.asarray(factors, dtype=np.float64)
        if f.shape != (self.n_labels - 1,) or not np.all(np.isfinite(f)) or np.any(f <= 0):
            raise InvalidParameterError(f"row learning-rate factors must be {self.n_labels - 1} "
                                        "positive finite numbers, one per internal node")
        self.row_lr = f.astype(self.dtype)

    def subtree_sizes(self):
        """(V-1,) number of leaves below each internal node (2 at the bottom)."""
        return self.tree.hi - self.tree.lo

    # ---- leaf placement ----

    def set_order(self, order):
        """Move label ``order[s]`` to leaf slot ``s``.

        The tree's shape is fixed, so node row n stays node n with its values and
        Adam moments; only which labels lie below each node changes.  After a
        rebuild the rows no longer match their new subtrees (expect a drop of the
        MI estimate; rebuild early and rarely) - see :meth:`warm_start`.
        """
        self.tree.set_order(order)

    def warm_start(self, H, labels, gain=1.0):
        """Re-initialise every node row from the split of its subtree's data.

        ``H`` (N, h), ``labels`` (N,): classifier inputs of (a sample of) the
        training set.  With c_L, c_R the mean of H over the labels in the left and
        right subtrees of node n: w_n = gain (c_L - c_R) / ||c_L - c_R||^2 * 4 and
        b_n = -w_n . (c_L + c_R) / 2 (the perpendicular bisector, logit +-2*gain at
        the centroids).  Adam moments of all rows are reset.  Labels without
        examples count as absent.
        """
        H, labels = self._check_input(H, labels)
        V, h, t = self.n_labels, self.n_in, self.tree
        cnt = np.bincount(t.slot_of[labels], minlength=V).astype(np.float64)
        sums = np.zeros((V, h))
        np.add.at(sums, t.slot_of[labels], H.astype(np.float64))
        csum = np.vstack([np.zeros((1, h)), np.cumsum(sums, 0)])
        ccnt = np.concatenate([[0.0], np.cumsum(cnt)])
        for a in range(0, len(t.lo), 4096):     # blocks of nodes: small temporaries
            lo, mid, hi = t.lo[a:a + 4096], t.mid[a:a + 4096], t.hi[a:a + 4096]
            nl = np.maximum(ccnt[mid] - ccnt[lo], 1)[:, None]
            nr = np.maximum(ccnt[hi] - ccnt[mid], 1)[:, None]
            cl = (csum[mid] - csum[lo]) / nl
            cr = (csum[hi] - csum[mid]) / nr
            diff = cl - cr
            w = 4.0 * gain * diff / np.maximum((diff * diff).sum(1, keepdims=True), 1e-12)
            self.Wb[a:a + 4096, :h] = w
            self.Wb[a:a + 4096, h] = -(w * (cl + cr) / 2).sum(1)
        self.m[...] = 0
        self.v[...] = 0

    # ---- evaluation ----

    def scores(self, H):
        """Node scores w_n . h + b_n for every node: (B, V-1) float64 (GEMM in the layer dtype)."""
        H = self._check_input(H)
        S = (H @ self.Wb[:, :-1].T).astype(np.float64)
        S += self.Wb[:, -1]
        return S

    def log_prob_all(self, H):
        """log s(e | h) for every label: (B, V) float64 (small V only: O(B V))."""
        return self.tree.label_log_prob(self.scores(H))

    def entropy(self, H, chunk_elems=1 << 21):
        """Entropy of s(. | h) per row, sum_n P(reach n) H_b(split n): (B,) float64.

        O(V h) per row, computed ``chunk_elems // V`` rows at a time.
        """
        H = self._check_input(H)
        c = self._rows_chunk(chunk_elems)
        out = np.empty(H.shape[0])
        for i in range(0, H.shape[0], c):
            out[i:i + c] = self.tree.entropy(self.scores(H[i:i + c]))
        return out

    # ---- flat parameter access (tests, checkpoints) ----

    def params(self):
        """[Wb] (views: modifying them modifies the layer)."""
        return [self.Wb]

    def grads(self):
        """[dense (V-1, h+1) gradient] of the last backward (zeros off the touched rows)."""
        G = np.zeros_like(self.Wb)
        G[self.touched_rows] = self.grad_rows
        return [G]
