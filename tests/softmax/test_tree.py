"""Tree shape, label assignment and leaf placement."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vaeas_np.errors import InvalidInputError, InvalidParameterError
from vaeas_np.softmax.tree import Tree, assign_labels, kd_order, random_order

Vs = st.integers(2, 3000)


@settings(deadline=None, max_examples=60)
@given(V=Vs)
def test_tree_shape(V):
    t = Tree.build(V)
    assert t.depth == math.ceil(math.log2(V))
    assert t.n_nodes == V - 1 and len(t.left) == V - 1
    children = np.concatenate([t.left, t.right])
    # every internal node but the root is a child exactly once; every leaf slot exactly once
    assert sorted(children[children >= 0]) == list(range(1, V - 1))
    assert sorted(-children[children < 0] - 1) == list(range(V))
    # two children each, slot ranges halve with the left side taking ceil(n/2)
    n = t.hi - t.lo
    assert (n >= 2).all() and (t.mid - t.lo == (n + 1) // 2).all()
    assert t.slot_lengths.max() == t.depth and t.slot_lengths.min() >= t.depth - 1
    # per-slot paths follow the ranges: slot s goes left at node p iff s < mid[p]
    for s in np.linspace(0, V - 1, 7).astype(int):
        L = t.slot_lengths[s]
        p, c = t.slot_paths[s, :L], t.slot_codes[s, :L]
        assert p[0] == 0
        assert ((t.lo[p] <= s) & (s < t.hi[p])).all()
        assert (c == (s < t.mid[p])).all()
        assert (t.parent[p[1:]] == p[:-1]).all()


@settings(deadline=None, max_examples=15)
@given(V=st.integers(2, 500), seed=st.integers(0, 2**31))
def test_set_order_moves_labels(V, seed):
    order = random_order(V, seed)
    t = Tree.build(V, order)
    for s in range(0, V, max(1, V // 10)):
        e = order[s]
        assert t.slot_of[e] == s
        assert (t.paths[e] == t.slot_paths[s]).all() and (t.codes[e] == t.slot_codes[s]).all()
        assert t.lengths[e] == t.slot_lengths[s]


def test_assign_labels():
    e = assign_labels(1000, 300, seed=5)
    assert e.dtype == np.int64 and e.shape == (1000,)
    counts = np.bincount(e, minlength=300)
    assert counts.min() == 3 and counts.max() == 4
    assert (e == assign_labels(1000, 300, seed=5)).all()
    assert (e != assign_labels(1000, 300, seed=6)).any()
    pi = np.random.default_rng(5).permutation(1000)
    assert (e == pi % 300).all()
    assert sorted(assign_labels(50, 50, 0)) == list(range(50))


def test_bad_arguments():
    with pytest.raises(InvalidParameterError):
        Tree.build(1)
    with pytest.raises(InvalidParameterError):
        assign_labels(10, 1, 0)
    with pytest.raises(InvalidInputError):
        Tree.build(4, [0, 1, 1, 2])
    with pytest.raises(InvalidInputError):
        Tree.build(4, [0, 1, 2])
    with pytest.raises(InvalidInputError):
        kd_order(np.zeros((3, 2)), np.array([0, 1, 5]), 4)


def _subtree_labels(t, node):
    return set(t.order[t.lo[node]:t.hi[node]])


def test_kd_order_two_clusters_split_at_root():
    rng = np.random.default_rng(0)
    V = 101
    N = 3 * V
    labels = assign_labels(N, V, seed=1)
    side = labels < 51                       # 51 labels on one side = ceil(101/2)
    pts = rng.normal(size=(N, 5))
    pts[:, 3] += np.where(side, -20.0, 20.0)
    t = Tree.build(V, kd_order(pts, labels, V))
    left = _subtree_labels(t, t.left[0])
    assert left == set(range(51))


def test_kd_order_groups_nearby_points():
    """Four well-separated clusters of labels each fill one grandchild subtree."""
    rng = np.random.default_rng(1)
    V = 64
    centers = np.array([[0, 0], [0, 50], [50, 0], [50, 50]], float)
    cluster = np.arange(V) % 4
    labels = np.repeat(np.arange(V), 3)
    pts = centers[cluster[labels]] + rng.normal(size=(len(labels), 2))
    t = Tree.build(V, kd_order(pts, labels, V))
    for n in (t.left[t.left[0]], t.right[t.left[0]], t.left[t.right[0]], t.right[t.right[0]]):
        assert len({cluster[e] for e in _subtree_labels(t, n)}) == 1


def test_kd_order_is_permutation_with_missing_labels():
    rng = np.random.default_rng(2)
    V = 37
    labels = rng.integers(0, 20, 50)         # labels 20..36 have no example
    order = kd_order(rng.normal(size=(50, 3)), labels, V)
    assert sorted(order) == list(range(V))


def test_kd_order_pca_splits_along_the_principal_direction():
    """Labels spread along a diagonal: the principal-direction split halves them along
    the diagonal at every node, the axis-aligned split cannot."""
    rng = np.random.default_rng(3)
    V = 256
    t_along = rng.uniform(-10, 10, V)
    across = rng.uniform(-3, 3, V)
    pts = np.c_[t_along + across, t_along - across] / np.sqrt(2)
    labels = np.arange(V)
    for split, exact in (("pca", True), ("axis", False)):
        order = kd_order(pts, labels, V, split=split)
        assert sorted(order) == list(range(V))
        tree = Tree.build(V, order)
        left = np.array(sorted(_subtree_labels(tree, tree.left[0])))
        right = np.array(sorted(_subtree_labels(tree, tree.right[0])))
        separated = t_along[left].max() < t_along[right].min() \
            or t_along[right].max() < t_along[left].min()
        assert separated == exact
    with pytest.raises(InvalidParameterError, match="split"):
        kd_order(pts, labels, V, split="median")
