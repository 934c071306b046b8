"""Labels, the balanced binary tree of the hierarchical softmax, and leaf placement.

Tree shape (depends on V only)
------------------------------
The V leaf *slots* 0..V-1 are split by recursive halving: an internal node owns
the slot range ``[lo, hi)`` (``n = hi - lo >= 2``); its left child owns
``[lo, mid)`` with ``mid = lo + ceil(n / 2)``, its right child ``[mid, hi)``; a
range of one slot is a leaf.  Hence every internal node has two children, there
are exactly V - 1 internal nodes and the depth is ``ceil(log2 V)``.

Internal nodes are numbered in *preorder* (root 0, left child ``n + 1``, right
child ``n + (mid - lo)``), so the internal nodes of a subtree are a contiguous
id range.  Row ``n`` of the node matrix belongs to node ``n`` whatever labels
sit in the leaves.

Leaf placement (``order``)
--------------------------
``order[s]`` is the label sitting at leaf slot ``s`` (a permutation of
0..V-1).  The per-*label* flat arrays used by the kernels (fastText style)
are

- ``paths[e, j]``  id of the j-th internal node on label e's root-to-leaf path
  (``j < lengths[e]``; padded with 0 beyond),
- ``codes[e, j]``  1 if the path goes *left* at that node, else 0 (padded 0),
- ``lengths[e]``   number of internal nodes on the path (1..depth),

with ``P(left | h) = sigmoid(w_n . h + b_n)``, so
``log s(e | h) = sum_j log sigmoid((2 codes[e,j] - 1) (w_n . h + b_n))``.
"""
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInputError, InvalidParameterError
from .._validation import check_positive_int


def _check_V(n_labels):
    if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)):
        raise InvalidParameterError(f"n_labels must be an integer >= 2, got {n_labels!r}.")
    if n_labels < 2:
        raise InvalidParameterError(f"n_labels must be >= 2 (a tree needs two leaves), got {n_labels}.")
    return int(n_labels)


def assign_labels(n_examples, n_labels, seed):
    """Seeded labels of the training examples: ``e_i = pi(i) mod V``.

    ``pi`` is ``np.random.default_rng(seed).permutation(n_examples)``.
    Returns int64 (N,).  When N >= V every label is used (each N // V or
    N // V + 1 times).
    """
    n_labels = _check_V(n_labels)
    n_examples = check_positive_int(n_examples, "n_examples")
    pi = np.random.default_rng(seed).permutation(n_examples)
    return (pi % n_labels).astype(np.int64)


def random_order(n_labels, seed):
    """The paper's literal placement: a seeded random permutation of the labels (V,) int64."""
    n_labels = _check_V(n_labels)
    return np.random.default_rng(seed).permutation(n_labels).astype(np.int64)


def check_order(order, n_labels):
    """Validate a leaf order: an int64 (V,) permutation of 0..V-1 (returned as a copy)."""
    o = np.asarray(order)
    if o.shape != (n_labels,) or not np.issubdtype(o.dtype, np.integer):
        raise InvalidInputError(f"order must be an integer array of shape ({n_labels},), got "
                                f"{o.dtype} {o.shape}.")
    o = o.astype(np.int64)
    seen = np.zeros(n_labels, dtype=bool)
    if o.min() < 0 or o.max() >= n_labels:
        raise InvalidInputError("order must be a permutation of 0..V-1 (value out of range).")
    seen[o] = True
    if not seen.all():
        raise InvalidInputError("order must be a permutation of 0..V-1 (repeated labels).")
    return o


@dataclass
class Tree:
    """Balanced binary tree over V leaves, stored as flat arrays (see module doc).

    Per internal node (V-1,): ``lo``, ``hi``, ``mid`` (slot ranges of the node and
    of its left subtree ``[lo, mid)``), ``parent`` (-1 at the root), ``is_left``
    (node is its parent's left child), ``node_depth`` (root 0), ``left`` and
    ``right`` (child ids; a leaf child is encoded ``-(slot + 1)``).
    ``levels[d]``: ids of the internal nodes at depth d, sorted by ``lo``.
    Per leaf slot (V,) / (V, depth): ``slot_paths``, ``slot_codes``,
    ``slot_lengths``.  Per label: ``paths``, ``codes``, ``lengths``;
    ``order`` (label at each slot) and ``slot_of`` (slot of each label).
    """
    n_leaves: int
    depth: int
    lo: np.ndarray
    hi: np.ndarray
    mid: np.ndarray
    parent: np.ndarray
    is_left: np.ndarray
    node_depth: np.ndarray
    left: np.ndarray
    right: np.ndarray
    levels: list
    slot_paths: np.ndarray
    slot_codes: np.ndarray
    slot_lengths: np.ndarray
    order: np.ndarray = field(default=None)
    slot_of: np.ndarray = field(default=None)
    paths: np.ndarray = field(default=None)
    codes: np.ndarray = field(default=None)
    lengths: np.ndarray = field(default=None)

    @property
    def n_nodes(self):
        """Number of internal nodes, V - 1."""
        return self.n_leaves - 1

    @classmethod
    def build(cls, n_labels, order=None):
        """Build the tree over V = ``n_labels`` leaves; ``order`` defaults to identity."""
        V = _check_V(n_labels)
        D = (V - 1).bit_length()  # == ceil(log2 V) for V >= 2
        R = V - 1
        lo_a, hi_a, mid_a = (np.empty(R, np.int64) for _ in range(3))
        parent = np.full(R, -1, np.int64)
        is_left = np.zeros(R, bool)
        ndepth = np.empty(R, np.int64)
        left, right = np.empty(R, np.int64), np.empty(R, np.int64)
        slot_paths = np.zeros((V, D), np.int64)
        slot_codes = np.zeros((V, D), np.int8)
        slot_len = np.zeros(V, np.int64)
        levels = []
        ids, lo, hi = np.array([0]), np.array([0]), np.array([V])
        par, isl = np.array([-1]), np.array([False])
        for d in range(D):
            n = hi - lo
            mid = lo + (n + 1) // 2
            lo_a[ids], hi_a[ids], mid_a[ids] = lo, hi, mid
            parent[ids], is_left[ids], ndepth[ids] = par, isl, d
            levels.append(ids)
            # every slot in [lo, hi) passes through this node at depth d
            slots = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())
            owner = np.repeat(np.arange(len(ids)), n)
            slot_paths[slots, d] = ids[owner]
            slot_codes[slots, d] = slots < mid[owner]
            slot_len[slots] += 1
            nl, nr = mid - lo, hi - mid
            left[ids] = np.where(nl >= 2, ids + 1, -(lo + 1))
            right[ids] = np.where(nr >= 2, ids + nl, -(mid + 1))
            # next level, sorted by lo: interleave (left, right) of each node
            c_ids = np.stack([ids + 1, ids + nl], 1).ravel()
            c_lo = np.stack([lo, mid], 1).ravel()
            c_hi = np.stack([mid, hi], 1).ravel()
            c_par = np.repeat(ids, 2)
            c_isl = np.tile([True, False], len(ids))
            keep = (c_hi - c_lo) >= 2
            ids, lo, hi, par, isl = c_ids[keep], c_lo[keep], c_hi[keep], c_par[keep], c_isl[keep]
        assert len(ids) == 0
        tree = cls(V, D, lo_a, hi_a, mid_a, parent, is_left, ndepth, left, right, levels,
                   slot_paths, slot_codes, slot_len)
        tree.set_order(np.arange(V, dtype=np.int64) if order is None else order)
        return tree

    def set_order(self, order):
        """Place label ``order[s]`` at leaf slot ``s``; recompute the per-label arrays.

        The shape of the tree (and therefore which node row is which node) does
        not change.
        """
        order = check_order(order, self.n_leaves)
        self.order = order
        self.slot_of = np.empty_like(order)
        self.slot_of[order] = np.arange(self.n_leaves)
        self.paths = np.ascontiguousarray(self.slot_paths[self.slot_of])
        self.codes = np.ascontiguousarray(self.slot_codes[self.slot_of])
        self.lengths = np.ascontiguousarray(self.slot_lengths[self.slot_of])
        return self

    # ---- evaluation helpers on node scores S (B, V-1), S[:, n] = w_n . h + b_n ----

    def log_reach(self, S):
        """log P(reach node n | h) for every internal node: (B, V-1) float64."""
        S = np.asarray(S, dtype=np.float64)
        out = np.empty_like(S)
        out[:, 0] = 0.0
        for ids in self.levels[1:]:
            p = self.parent[ids]
            sign = np.where(self.is_left[ids], 1.0, -1.0)
            out[:, ids] = out[:, p] + log_sigmoid(sign * S[:, p])
        return out

    def slot_log_prob(self, S, log_reach=None):
        """log P(leaf slot s | h): (B, V) float64 (columns indexed by slot, not label)."""
        lr = self.log_reach(S) if log_reach is None else log_reach
        s = np.arange(self.n_leaves)
        last = self.slot_lengths - 1
        p = self.slot_paths[s, last]
        sign = np.where(self.slot_codes[s, last] == 1, 1.0, -1.0)
        return lr[:, p] + log_sigmoid(sign * np.asarray(S, np.float64)[:, p])

    def label_log_prob(self, S):
        """log s(e | h) for every label e: (B, V) float64 (columns indexed by label)."""
        return self.slot_log_prob(S)[:, self.slot_of]

    def entropy(self, S):
        """Entropy of the leaf distribution, sum_n P(reach n) H_b(sigmoid(S_n)): (B,)."""
        S = np.asarray(S, np.float64)
        reach = np.exp(self.log_reach(S))
        return (reach * binary_entropy_logit(S)).sum(1)


def log_sigmoid(x):
    """Stable log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))."""
    x = np.asarray(x)
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def binary_entropy_logit(x):
    """Entropy (nats) of Bernoulli(sigmoid(x)), stable for large |x|."""
    p = np.exp(log_sigmoid(x))
    return -(p * log_sigmoid(x) + (1.0 - p) * log_sigmoid(-x))


def label_centroids(points, labels, n_labels):
    """Mean of ``points`` (N, d) per label: (V, d) float64 and counts (V,)."""
    points = np.asarray(points, np.float64)
    labels = np.asarray(labels)
    if points.ndim != 2 or labels.shape != (points.shape[0],):
        raise InvalidInputError(f"points must be (N, d) and labels (N,), got {points.shape} "
                                f"and {labels.shape}.")
    if not np.all(np.isfinite(points)):
        raise InvalidInputError("points contain NaN or inf.")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_labels):
        raise InvalidInputError(f"labels must lie in [0, {n_labels}).")
    counts = np.bincount(labels, minlength=n_labels).astype(np.float64)
    sums = np.zeros((n_labels, points.shape[1]))
    np.add.at(sums, labels, points)
    return sums / np.maximum(counts, 1)[:, None], counts


KD_SPLITS = ("pca", "axis")     # kd_order's split directions


def kd_order(points, labels, n_labels, split="axis", power_iterations=8):
    """Leaf order from a balanced recursive median split (k-d order) of label centroids.

    ``points`` (N, d): e.g. the posterior means of the training examples;
    ``labels`` (N,): their labels.  Each label is represented by the mean of
    its examples' points (labels with no example get the mean of all
    centroids: they may go anywhere).  Following the tree's own halving, the
    labels owned by a node's slot range ``[lo, hi)`` are split along the
    dimension with the largest variance among them (``split="axis"``) or along their
    first principal direction (``split="pca"``, by ``power_iterations`` steps of the
    power method started from that dimension); the ``ceil(n / 2)`` smallest go to the
    left subtree.  Returns ``order`` (V,) int64.
    """
    if split not in KD_SPLITS:
        raise InvalidParameterError(f"split must be one of {KD_SPLITS}, got {split!r}")
    V = _check_V(n_labels)
    cent, counts = label_centroids(points, labels, V)
    if (counts > 0).any():
        cent[counts == 0] = cent[counts > 0].mean(0)
    cent -= cent.mean(0)
    tree = Tree.build(V)
    order = np.arange(V, dtype=np.int64)
    for ids in tree.levels:
        lo, hi = tree.lo[ids], tree.hi[ids]
        n = hi - lo
        starts = np.cumsum(n) - n                # each node's first row in X
        slots = np.repeat(lo - starts, n) + np.arange(n.sum())
        seg = np.repeat(np.arange(len(ids)), n)
        X = cent[order[slots]]
        mean = np.add.reduceat(X, starts, axis=0) / n[:, None]
        var = np.add.reduceat((X - mean[seg]) ** 2, starts, axis=0)
        dim = np.argmax(var, axis=1)
        if split == "axis":
            key = X[np.arange(len(slots)), dim[seg]]
        else:
            Xc = X - mean[seg]
            v = np.zeros_like(mean)
            v[np.arange(len(ids)), dim] = 1.0
            for _ in range(int(power_iterations)):
                proj = np.einsum("nd,nd->n", Xc, v[seg])
                v = np.add.reduceat(Xc * proj[:, None], starts, axis=0)
                norm = np.sqrt((v * v).sum(1, keepdims=True))
                v = np.where(norm > 0, v / np.maximum(norm, 1e-300), 0.0)
            key = np.einsum("nd,nd->n", Xc, v[seg])
        perm = np.lexsort((key, seg))
        order[slots] = order[slots][perm]
    return order
