"""Hierarchical softmax: probabilities, kernels against NumPy, gradients, sparse Adam."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vaeas_np._ext import hsoftmax
from vaeas_np.errors import InvalidInputError, InvalidParameterError
from vaeas_np.softmax import HierarchicalSoftmax, random_order
from vaeas_np.softmax import reference as ref
from vaeas_np.softmax.tree import log_sigmoid
from tests.gradcheck import numerical_grad, rel_error


def make(V, h, dtype=np.float64, seed=0, n_threads=1, B=7):
    rng = np.random.default_rng(seed)
    L = HierarchicalSoftmax(h, V, order=random_order(V, seed), dtype=dtype, init_std=0.7,
                            seed=seed, n_threads=n_threads)
    L.Wb[:, -1] = rng.normal(size=V - 1)
    H = rng.normal(size=(B, h)).astype(dtype)
    labels = rng.integers(0, V, B)
    return L, H, labels, rng


@settings(deadline=None, max_examples=20)
@given(V=st.integers(2, 3000), h=st.integers(1, 12), seed=st.integers(0, 1000))
def test_leaf_probabilities_sum_to_one(V, h, seed):
    L, H, labels, _ = make(V, h, seed=seed, B=3)
    lp = L.log_prob_all(H)
    assert lp.shape == (3, V)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-10)
    # the kernel's logp of the given labels is the same number
    np.testing.assert_allclose(L.forward(H, labels), lp[np.arange(3), labels], atol=1e-10)


@settings(deadline=None, max_examples=20)
@given(V=st.integers(2, 3000), h=st.integers(1, 12), seed=st.integers(0, 1000))
def test_logp_is_product_along_path(V, h, seed):
    L, H, labels, _ = make(V, h, seed=seed, B=4)
    logp = L.forward(H, labels)
    t = L.tree
    for b, e in enumerate(labels):
        p = 1.0
        node = 0
        # walk down from the root using the tree's child arrays, towards e's leaf slot
        s = t.slot_of[e]
        while node >= 0:
            pl = 1.0 / (1.0 + np.exp(-(L.Wb[node, :h] @ H[b] + L.Wb[node, h])))
            go_left = s < t.mid[node]
            p *= pl if go_left else 1.0 - pl
            node = t.left[node] if go_left else t.right[node]
        assert -node - 1 == s
        np.testing.assert_allclose(logp[b], np.log(p), rtol=1e-9, atol=1e-12)


@settings(deadline=None, max_examples=15)
@given(V=st.integers(2, 2000), h=st.integers(1, 10), seed=st.integers(0, 1000))
def test_entropy_equals_enumerated(V, h, seed):
    L, H, _, _ = make(V, h, seed=seed, B=5)
    lp = L.log_prob_all(H)
    expected = -(np.exp(lp) * lp).sum(1)
    np.testing.assert_allclose(L.entropy(H), expected, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(L.entropy(H, chunk_elems=1), expected, rtol=1e-9, atol=1e-11)


def test_uniform_at_zero_init():
    L = HierarchicalSoftmax(3, 8, dtype=np.float64)
    H = np.ones((2, 3))
    np.testing.assert_allclose(L.forward(H, [0, 7]), -np.log(8))
    np.testing.assert_allclose(L.entropy(H), np.log(8))


def test_log_sigmoid_is_exact_for_large_scores():
    L = HierarchicalSoftmax(1, 2, dtype=np.float64)
    L.Wb[0] = [1.0, 0.0]
    H = np.array([[-800.0], [800.0], [-30.0]])
    lp = L.forward(H, np.array([0, 1, 0]))      # label 0 = left = sigmoid(score)
    np.testing.assert_allclose(lp, [-800.0, -800.0, log_sigmoid(-30.0)], rtol=1e-15)


@pytest.mark.parametrize("V", [2, 3, 11, 16])
def test_finite_differences(V):
    h, B = 4, 6
    L, H, labels, rng = make(V, h, B=B, seed=V)
    c = rng.normal(size=B)

    def f():
        return float(c @ L.forward(H, labels))

    f()
    dH = L.backward(c).copy()
    (G,) = L.grads()
    assert rel_error(numerical_grad(f, H), dH) <= 1e-6
    assert rel_error(numerical_grad(f, L.Wb), G) <= 1e-6
    # scalar dlogp broadcasts
    L.forward(H, labels)
    np.testing.assert_allclose(L.backward(1.0), L.backward(np.ones(B)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("V", [2, 5, 64, 1000])
def test_kernels_equal_reference(dtype, n_threads, V):
    h, B = 17, 33
    L, H, labels, rng = make(V, h, dtype=dtype, n_threads=n_threads, B=B, seed=3)
    t = L.tree
    dl = rng.normal(size=B).astype(dtype)
    logp = L.forward(H, labels).copy()
    dH = L.backward(dl).copy()
    r_logp, r_sig = ref.hs_forward(H, L.Wb, labels, t.paths, t.codes, t.lengths)
    r_dH, r_rows, r_grad = ref.hs_backward(H, L.Wb, labels, t.paths, t.codes, t.lengths,
                                           r_sig, dl)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logp, r_logp, **tol)
    np.testing.assert_allclose(dH, r_dH, **tol)
    rows = L.touched_rows
    assert len(set(rows.tolist())) == len(rows)
    o = np.argsort(rows)
    assert (rows[o] == r_rows).all()
    np.testing.assert_allclose(L.grad_rows[o], r_grad, **tol)
    # the node map is restored for the next batch
    assert (L._node_slot == -1).all()


def test_threads_give_identical_results():
    out = []
    for n in (1, 2):
        L, H, labels, _ = make(300, 9, dtype=np.float32, n_threads=n, B=50, seed=9)
        lp = L.forward(H, labels).copy()
        dH = L.backward(0.5).copy()
        out.append((lp, dH, L.touched_rows.copy(), L.grad_rows.copy()))
    for a, b in zip(*out):
        assert (a == b).all()


def test_sparse_step_touches_only_path_rows():
    V, h, B = 500, 6, 10
    L, H, labels, rng = make(V, h, dtype=np.float32, B=B, seed=4)
    L.m[:] = rng.random(L.m.shape)
    L.v[:] = rng.random(L.v.shape)
    before = [a.copy() for a in (L.Wb, L.m, L.v)]
    L.forward(H, labels)
    L.backward(1.0)
    rows, grad = L.touched_rows.copy(), L.grad_rows.copy()
    on_paths = np.unique(np.concatenate([L.tree.paths[e, :L.tree.lengths[e]] for e in labels]))
    assert (np.sort(rows) == on_paths).all()
    L.step(-1.0 / B, lr=1e-2)
    off = np.setdiff1d(np.arange(V - 1), rows)
    for a, b in zip((L.Wb, L.m, L.v), before):
        assert (a[off] == b[off]).all()
        assert (a[rows] != b[rows]).any()
    # the touched rows follow the NumPy lazy Adam on grad * scale
    Wb, m, v = before
    ref.sparse_adam(Wb, rows, grad * np.float32(-1.0 / B), m, v, 1e-2, 0.9, 0.999, 1e-8, 1)
    np.testing.assert_allclose(L.Wb, Wb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(L.m, m, rtol=1e-5, atol=1e-7)


def test_training_increases_logp_and_set_order_keeps_rows():
    V, h, B = 32, 8, 64
    rng = np.random.default_rng(0)
    H = rng.normal(size=(B, h)).astype(np.float32)
    labels = np.arange(B) % V
    L = HierarchicalSoftmax(h, V, seed=0, n_threads=2)
    first = L.forward(H, labels).mean()
    for _ in range(200):
        L.forward(H, labels)
        L.backward(1.0)
        L.step(-1.0 / B, lr=1e-2)
    assert L.forward(H, labels).mean() > first + 1.0
    Wb = L.Wb.copy()
    L.set_order(random_order(V, 1))
    assert (L.Wb == Wb).all()
    np.testing.assert_allclose(np.exp(L.log_prob_all(H)).sum(1), 1.0, rtol=1e-6)


def test_warm_start_separates_clusters():
    rng = np.random.default_rng(0)
    V, h = 8, 4
    labels = np.repeat(np.arange(V), 20)
    centers = rng.normal(scale=10.0, size=(V, h))
    H = centers[labels] + rng.normal(size=(len(labels), h))
    L = HierarchicalSoftmax(h, V, dtype=np.float64)
    L.warm_start(H, labels, gain=2.0)
    assert L.forward(H, labels).mean() > -np.log(V) + 1.0


def test_errors_and_step_protocol():
    L = HierarchicalSoftmax(3, 5)
    with pytest.raises(RuntimeError):
        L.backward(1.0)
    with pytest.raises(InvalidInputError):
        L.forward(np.zeros((2, 4)), [0, 1])
    with pytest.raises(InvalidInputError):
        L.forward(np.zeros((2, 3)), [0, 5])
    L.forward(np.zeros((2, 3)), [0, 1])
    with pytest.raises(RuntimeError):
        L.step(-0.5, 1e-3)
    with pytest.raises(InvalidInputError):
        L.backward(np.ones(3))
    with pytest.raises(IndexError):
        hsoftmax.forward(np.zeros((1, 3), np.float32), L.Wb, np.array([7]), L.tree.paths,
                         L.tree.codes, L.tree.lengths, np.zeros(1, np.float32),
                         np.zeros((1, L.tree.depth), np.float32))


def test_batch_size_changes_reuse_buffers():
    L, H, labels, _ = make(40, 5, B=20)
    full = L.forward(H, labels).copy()
    sig = L._sig
    np.testing.assert_allclose(L.forward(H[:7], labels[:7]), full[:7])
    assert L._sig is sig
    L.backward(1.0)
    L.step(-1 / 7, 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fused_adam_equals_shared_optim_kernel(dtype, n_threads):
    from vaeas_np._ext import optim
    rng = np.random.default_rng(0)
    R, n, k = 50, 13, 20
    P = rng.normal(size=(R, n)).astype(dtype)
    m = (0.1 * rng.normal(size=(R, n))).astype(dtype)
    v = rng.random((R, n)).astype(dtype)
    rows = rng.choice(R, k, replace=False).astype(np.int64)
    g = rng.normal(size=(k + 3, n)).astype(dtype)       # extra rows are ignored
    a = [x.copy() for x in (P, m, v)]
    b = [x.copy() for x in (P, m, v)]
    hsoftmax.sparse_adam_scaled(a[0], rows, g, -0.25, a[1], a[2], 1e-2, 0.9, 0.99, 1e-8, 7,
                                n_threads)
    optim.sparse_adam_rows(b[0], rows, np.ascontiguousarray(g[:k] * dtype(-0.25)), b[1], b[2],
                           1e-2, 0.9, 0.99, 1e-8, 7, n_threads)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_per_row_learning_rates(n_threads):
    from vaeas_np.nn.optim import sparse_adam_reference
    L, H, labels, _ = make(200, 6, B=12, seed=5, n_threads=n_threads)
    f = np.where(L.subtree_sizes() <= 4, 3.0, 1.0)
    L.set_row_learning_rates(f)
    L.m[:] = 0.01
    L.v[:] = 0.02
    P, m, v = L.Wb.copy(), L.m.copy(), L.v.copy()
    L.forward(H, labels)
    L.backward(1.0)
    rows, g = L.touched_rows.copy(), L.grad_rows.copy() * (-1 / 12)
    L.step(-1 / 12, 1e-2)
    assert (f[rows] == 3).any() and (f[rows] == 1).any()
    for r, gr in zip(rows, g):       # each row: the textbook update at lr * f[r]
        p1, m1, v1 = P[r:r + 1].copy(), m[r:r + 1].copy(), v[r:r + 1].copy()
        sparse_adam_reference(p1, np.array([0]), gr[None], m1, v1, 1e-2 * f[r], 0.9, 0.999,
                              1e-8, 1)
        np.testing.assert_allclose(L.Wb[r], p1[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(L.m[r], m1[0], rtol=1e-12, atol=1e-14)
    assert (L.subtree_sizes().min(), L.subtree_sizes().max()) == (2, 200)


def test_per_row_learning_rates_are_checked():
    L, _, _, _ = make(20, 3)
    for bad in (np.ones(18), np.r_[np.ones(18), 0.0], np.r_[np.ones(18), np.nan]):
        with pytest.raises(InvalidParameterError, match="positive finite"):
            L.set_row_learning_rates(bad)
    L.set_row_learning_rates(np.ones(19))
    L.adam_kernel = "shared"
    H = np.ones((2, 3))
    L.forward(H, np.array([0, 1]))
    L.backward(1.0)
    with pytest.raises(InvalidParameterError, match="fused"):
        L.step(-0.5, 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_layer_adam_kernels_agree(dtype, n_threads):
    # "fused": _ext.hsoftmax.sparse_adam_scaled; "shared": the optimiser's
    # sparse_adam_rows on a scaled copy of grad_rows
    out = []
    for kernel in ("fused", "shared"):
        L, H, labels, _ = make(300, 37, B=40, seed=2, dtype=dtype, n_threads=n_threads)
        L.adam_kernel = kernel
        for _ in range(3):
            L.forward(H, labels)
            L.backward(1.0)
            L.step(-1 / 40, 1e-2)
        out.append([a.copy() for a in (L.Wb, L.m, L.v)])
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, **tol)
    assert np.abs(out[0][0]).max() > 0          # the rows did move


@settings(deadline=None, max_examples=15)
@given(V=st.integers(2, 3000), h=st.integers(1, 40), B=st.integers(1, 40),
       n_threads=st.sampled_from([1, 2]), seed=st.integers(0, 1000))
def test_kernels_equal_reference_hypothesis(V, h, B, n_threads, seed):
    L, H, labels, rng = make(V, h, B=B, seed=seed, n_threads=n_threads)
    t = L.tree
    dl = rng.normal(size=B)
    logp = L.forward(H, labels).copy()
    dH = L.backward(dl)
    r_logp, r_sig = ref.hs_forward(H, L.Wb, labels, t.paths, t.codes, t.lengths)
    r_dH, r_rows, r_grad = ref.hs_backward(H, L.Wb, labels, t.paths, t.codes, t.lengths,
                                           r_sig, dl)
    np.testing.assert_allclose(logp, r_logp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dH, r_dH, rtol=1e-12, atol=1e-12)
    o = np.argsort(L.touched_rows)
    assert (L.touched_rows[o] == r_rows).all()
    np.testing.assert_allclose(L.grad_rows[o], r_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("h", [1, 31, 32, 33, 64, 95, 500])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_float32_kernels_equal_reference_across_widths(h, n_threads):
    """float32 forward: the row dot's 32 lanes, its tail and the SIMD path loop
    (widths below, at and above multiples of 32; paths of 11-12 nodes)."""
    V, B = 3000, 64
    L, H, labels, rng = make(V, h, dtype=np.float32, n_threads=n_threads, B=B, seed=h)
    L.Wb[...] = rng.normal(scale=2.0 / np.sqrt(h), size=L.Wb.shape)   # scores of all signs and sizes
    t = L.tree
    logp = L.forward(H, labels).copy()
    sig = L._sig[:B].copy()
    r_logp, r_sig = ref.hs_forward(H.astype(np.float64), L.Wb.astype(np.float64), labels,
                                   t.paths, t.codes, t.lengths)
    np.testing.assert_allclose(logp, r_logp, rtol=3e-5, atol=3e-5)
    for b in range(B):
        n = t.lengths[labels[b]]
        np.testing.assert_allclose(sig[b, :n], r_sig[b, :n], rtol=3e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_forward_with_grad_equals_separate_backward(dtype, n_threads):
    """forward(with_grad=True) forms the per-example gradients in the forward pass:
    backward(1.0) then gives the same dH and node rows bit for bit; they serve once
    (a second backward, or one with dlogp != 1, recomputes)."""
    V, h, B = 700, 37, 29
    L, H, labels, rng = make(V, h, dtype=dtype, n_threads=n_threads, B=B, seed=5)
    L.forward(H, labels)
    dH = L.backward(1.0).copy()
    rows, grad = L.touched_rows.copy(), L.grad_rows[:len(L.touched_rows)].copy()
    logp = L.forward(H, labels, with_grad=True).copy()
    np.testing.assert_array_equal(logp, L.forward(H, labels))
    L.forward(H, labels, with_grad=True)
    fused = L.backward(1.0)
    np.testing.assert_array_equal(fused, dH)
    np.testing.assert_array_equal(L.touched_rows, rows)
    np.testing.assert_array_equal(L.grad_rows[:len(rows)], grad)
    fused *= 0                                   # a caller may reuse dH in place
    np.testing.assert_array_equal(L.backward(1.0), dH)
    dl = rng.normal(size=B).astype(dtype)
    L.forward(H, labels, with_grad=True)
    want = dl[:, None] * dH
    np.testing.assert_allclose(L.backward(dl), want, rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


@settings(deadline=None, max_examples=25)
@given(V=st.integers(2, 3000), h=st.integers(1, 40), B=st.integers(1, 140),
       n_threads=st.integers(1, 4), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 1000))
def test_grouping_in_the_forward_equals_the_backward_s(V, h, B, n_threads, dtype, seed):
    """forward(with_grad=True) groups the occurrences by node on one thread while the
    others start on the examples (shared out dynamically): the same grouping, the same
    g, dH and logp as the static forward and the backward's own grouping."""
    L, H, labels, _ = make(V, h, B=B, seed=seed, n_threads=n_threads, dtype=dtype)
    logp = L.forward(H, labels, with_grad=True).copy()
    dH = L.backward(1.0).copy()                 # the forward's grouping, nothing recomputed
    k = L._k
    got = (L.touched_rows.copy(), L._offsets[:k + 1].copy(), L._occ[:L._offsets[k]].copy(),
           L._g[:B].copy())
    assert (L._node_slot == -1).all()
    np.testing.assert_array_equal(logp, L.forward(H, labels))        # the static forward
    np.testing.assert_array_equal(L.backward(np.ones(B, dtype)), dH)  # kernel's grouping
    assert L._k == k
    want = (L.touched_rows, L._offsets[:k + 1], L._occ[:L._offsets[k]], L._g[:B])
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert (L._node_slot == -1).all()
    assert len(set(got[0].tolist())) == k and got[1][-1] == L.tree.lengths[labels].sum()


def test_forward_grouping_checks_its_buffers():
    L, H, labels, _ = make(50, 4, B=9, seed=1)
    L.forward(H, labels, with_grad=True)
    t, B = L.tree, 9
    args = (H, L.Wb, labels, t.paths, t.codes, t.lengths, L._logp_buf[:B], L._sig[:B], 1,
            L._g[:B], L._dH_buf[:B])
    with pytest.raises(ValueError, match="needs node_slot"):
        hsoftmax.forward(*args, k_out=L._k_out)
    with pytest.raises(ValueError, match="buffers hold 2 rows"):
        hsoftmax.forward(*args, L._node_slot, L._touched[:2], L._offsets, L._cursor, L._occ,
                         L._k_out)
    with pytest.raises(ValueError, match="needs g and dH"):
        hsoftmax.forward(*args[:9], k_out=L._k_out)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_backward_takes_the_forward_s_grouping(n_threads):
    """hsoftmax.backward(grouped_k=k) skips its own grouping: the node rows it forms
    from the forward's grouping equal those of a backward that groups."""
    L, H, labels, _ = make(300, 6, B=20, seed=2, n_threads=n_threads)
    t, B = L.tree, 20
    L.forward(H, labels)
    L.backward(1.0)
    want = L.touched_rows.copy(), L.grad_rows.copy()
    L.forward(H, labels, with_grad=True)
    k = int(L._k_out[0])
    rows = np.full_like(L._grad_rows, np.nan)
    got_k = hsoftmax.backward(H, L.Wb, labels, t.paths, t.codes, t.lengths, L._sig[:B],
                              np.ones(B), L._g[:B], L._dH_buf[:B], L._node_slot, L._touched,
                              L._offsets, L._cursor, L._occ, rows, True, n_threads, True,
                              True, k)
    assert got_k == k == len(want[0])
    np.testing.assert_array_equal(L._touched[:k], want[0])
    np.testing.assert_array_equal(rows[:k], want[1])


def _grouping(L, H, labels, dtype):
    """Runs forward and a backward that stops before the node rows; returns what
    the row kernels take: (H, g, occ, offsets, rows)."""
    L.forward(H, labels)
    L.backward(1.0)
    B = H.shape[0]
    return (L._H, L._g[:B], L._occ, L._offsets, L.touched_rows.copy())


@settings(deadline=None, max_examples=25)
@given(V=st.integers(2, 3000), h=st.integers(1, 40), B=st.integers(1, 40),
       n_threads=st.sampled_from([1, 2]), per_row=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 1000))
def test_fused_node_rows_adam_equals_rows_then_adam(V, h, B, n_threads, per_row, dtype, seed):
    # node_rows_adam forms each row in scratch and updates at once: the same numbers,
    # bit for bit, as node_rows followed by sparse_adam_scaled
    L, H, labels, rng = make(V, h, B=B, seed=seed, n_threads=n_threads, dtype=dtype)
    H, g, occ, offsets, rows = _grouping(L, H, labels, dtype)
    k = len(rows)
    grad = np.empty((k, h + 1), dtype)
    hsoftmax.node_rows(H, g, occ, offsets, k, grad, n_threads)
    t = L.tree                                              # the rows against NumPy's
    _, r_sig = ref.hs_forward(H.astype(np.float64), L.Wb.astype(np.float64), labels,
                              t.paths, t.codes, t.lengths)
    _, r_rows, r_grad = ref.hs_backward(H.astype(np.float64), L.Wb.astype(np.float64), labels,
                                        t.paths, t.codes, t.lengths, r_sig, np.ones(B))
    o = np.argsort(rows)
    assert (rows[o] == r_rows).all()
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad[o], r_grad, **tol)
    f = rng.uniform(0.5, 3.0, V - 1).astype(dtype) if per_row else None
    P = rng.normal(size=L.Wb.shape).astype(dtype)
    m = (0.1 * rng.normal(size=L.Wb.shape)).astype(dtype)
    v = rng.uniform(0, 0.1, L.Wb.shape).astype(dtype)
    a = [x.copy() for x in (P, m, v)]
    b = [x.copy() for x in (P, m, v)]
    hsoftmax.sparse_adam_scaled(a[0], rows, grad, -1.0 / B, a[1], a[2], 1e-2, 0.9, 0.999,
                                1e-8, 3, n_threads, f)
    scratch = np.full((n_threads, h + 1), np.nan, dtype)    # garbage in scratch is fine
    hsoftmax.node_rows_adam(H, g, occ, offsets, rows, b[0], b[1], b[2], scratch, -1.0 / B,
                            1e-2, 0.9, 0.999, 1e-8, 3, n_threads, f)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    untouched = np.setdiff1d(np.arange(V - 1), rows)
    np.testing.assert_array_equal(b[0][untouched], P[untouched])
    c = [x.astype(np.float64) for x in (P, m, v)]           # and against NumPy's Adam
    lr_rows = 1e-2 * (f[rows].astype(np.float64) if per_row else np.ones(k))
    for i, r in enumerate(rows):
        ref.sparse_adam(c[0], rows[i:i + 1], grad[i:i + 1].astype(np.float64) * (-1.0 / B),
                        c[1], c[2], lr_rows[i], 0.9, 0.999, 1e-8, 3)
    for x, y in zip(b, c):
        np.testing.assert_allclose(x, y, **tol)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_layer_step_fused_equals_formed_rows(n_threads):
    # training never reads grad_rows, so step() takes the fused kernel; reading
    # grad_rows first makes it take sparse_adam_scaled: the same parameters either way
    out = []
    for read_rows in (False, True):
        L, H, labels, _ = make(500, 33, B=50, seed=4, dtype=np.float32, n_threads=n_threads)
        for it in range(4):
            L.forward(H, labels, with_grad=True)
            L.backward(1.0)
            if read_rows:
                L.grad_rows
            assert L._rows_formed == read_rows
            L.step(-1 / 50, 1e-2)
            labels = (labels * 7 + 3) % 500
        out.append([x.copy() for x in (L.Wb, L.m, L.v)])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    assert np.abs(out[0][0]).max() > 0


def test_row_kernels_reject_bad_grouping():
    L, H, labels, _ = make(50, 4, B=6, dtype=np.float64)
    H, g, occ, offsets, rows = _grouping(L, H, labels, np.float64)
    k, h = len(rows), 4
    grad = np.empty((k, h + 1))
    with pytest.raises(ValueError, match="grad_rows"):
        hsoftmax.node_rows(H, g, occ, offsets, k, np.empty((k - 1, h + 1)))
    with pytest.raises(ValueError, match="offsets must hold"):
        hsoftmax.node_rows(H, g, occ, offsets[:k], k, grad)
    bad = offsets.copy()
    bad[1], bad[2] = bad[2], bad[1] - 1
    with pytest.raises(ValueError, match="non-decreasing"):
        hsoftmax.node_rows(H, g, occ, bad, k, grad)
    bad_occ = occ.copy()
    bad_occ[0] = 6 * g.shape[1]
    with pytest.raises(ValueError, match="outside"):
        hsoftmax.node_rows(H, g, bad_occ, offsets, k, grad)
    with pytest.raises(ValueError, match="g must be"):
        hsoftmax.node_rows(H[:5], g, occ, offsets, k, grad)
    P, m, v = L.Wb.copy(), L.m.copy(), L.v.copy()
    args = (1e-2, 0.9, 0.999, 1e-8, 1)
    with pytest.raises(ValueError, match="scratch"):
        hsoftmax.node_rows_adam(H, g, occ, offsets, rows, P, m, v, np.empty((1, h + 1)),
                                -0.5, *args, 2)
    with pytest.raises(IndexError, match="row id"):
        hsoftmax.node_rows_adam(H, g, occ, offsets, rows + 100, P, m, v,
                                np.empty((1, h + 1)), -0.5, *args)
    with pytest.raises(ValueError, match="param, m and v"):
        hsoftmax.node_rows_adam(H, g, occ, offsets, rows, P, m[:-1], v,
                                np.empty((1, h + 1)), -0.5, *args)
    np.testing.assert_array_equal(P, L.Wb)          # nothing was written
