"""Fused Adam and sparse-row Adam against the textbook formula."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vaeas_np._ext import optim as kernels
from vaeas_np.nn.optim import Adam, adam_reference, sparse_adam_reference


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(n=st.integers(1, 200_000), steps=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_adam_matches_reference(n_threads, dtype, n, steps, seed):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=n).astype(dtype)
    p_ref = p.astype(np.float64)
    opt = Adam(p, lr=1e-2)
    m, v = np.zeros(n), np.zeros(n)
    for t in range(1, steps + 1):
        g = rng.normal(size=n).astype(dtype)
        opt.step(g, n_threads)
        adam_reference(p_ref, g.astype(np.float64), m, v, 1e-2, 0.9, 0.999, 1e-8, t)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(p, p_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(opt.m, m, rtol=tol, atol=tol)


def test_adam_first_step_is_lr_times_sign():
    # textbook property: the first bias-corrected step has size lr (for |g| >> eps)
    p = np.zeros(5)
    Adam(p, lr=0.1).step(np.array([3.0, -2.0, 0.5, -1e3, 7.0]))
    np.testing.assert_allclose(p, -0.1 * np.sign([3.0, -2.0, 0.5, -1e3, 7.0]), rtol=1e-6)


@pytest.mark.parametrize("n_threads", [1, 2])
@given(R=st.integers(1, 300), h=st.integers(1, 40), steps=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_sparse_adam_matches_reference_and_dense(n_threads, R, h, steps, seed):
    rng = np.random.default_rng(seed)
    P = rng.normal(size=(R, h))
    m, v = np.zeros_like(P), np.zeros_like(P)
    P_ref, m_ref, v_ref = P.copy(), m.copy(), v.copy()
    always = rng.choice(R, size=max(1, R // 3), replace=False)   # touched every step
    Pd, md, vd = P[always].copy(), np.zeros((len(always), h)), np.zeros((len(always), h))
    untouched_before = None
    for t in range(1, steps + 1):
        extra = rng.choice(R, size=rng.integers(0, R + 1), replace=False)
        rows = np.unique(np.concatenate([always, extra])).astype(np.int64)
        g = rng.normal(size=(len(rows), h))
        others = np.setdiff1d(np.arange(R), rows)
        untouched_before = (P[others].copy(), m[others].copy())
        kernels.sparse_adam_rows(P, rows, g, m, v, 1e-2, 0.9, 0.999, 1e-8, t, n_threads)
        sparse_adam_reference(P_ref, rows, g, m_ref, v_ref, 1e-2, 0.9, 0.999, 1e-8, t)
        # rows not in the step: parameters and moments untouched
        np.testing.assert_array_equal(P[others], untouched_before[0])
        np.testing.assert_array_equal(m[others], untouched_before[1])
        # rows in every step follow dense Adam exactly
        g_always = g[np.searchsorted(rows, np.sort(always))]
        order = np.argsort(always)
        Pd_sorted, md_s, vd_s = Pd[order], md[order], vd[order]
        adam_reference(Pd_sorted, g_always, md_s, vd_s, 1e-2, 0.9, 0.999, 1e-8, t)
        Pd[order], md[order], vd[order] = Pd_sorted, md_s, vd_s
    np.testing.assert_allclose(P, P_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(P[always], Pd, rtol=1e-12, atol=1e-12)


def test_sparse_adam_rejects_bad_rows():
    P = np.zeros((3, 2))
    with pytest.raises(IndexError, match="outside"):
        kernels.sparse_adam_rows(P, np.array([5], np.int64), np.zeros((1, 2)), P.copy(),
                                 P.copy(), 1e-3, 0.9, 0.999, 1e-8, 1, 1)


def test_adam_scale_equals_scaled_gradient():
    rng = np.random.default_rng(0)
    p1 = rng.normal(size=100_000)
    p2 = p1.copy()
    g = rng.normal(size=p1.size)
    a, b = Adam(p1, lr=1e-2), Adam(p2, lr=1e-2)
    for _ in range(3):
        a.step(g, 2, scale=-0.25)
        b.step(-0.25 * g, 2)
    np.testing.assert_allclose(p1, p2, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_flushes_subnormal_moments(dtype):
    """Zero gradients decay the moments geometrically; below the smallest normal
    number they are flushed to zero (subnormal arithmetic is ~100x slower)."""
    tiny = np.finfo(dtype).tiny
    p = np.ones(70_000, dtype)
    opt = Adam(p)
    opt.m[:] = tiny * 1.05            # one step of 0.9 decay takes it below tiny
    opt.v[:] = tiny * 1.0005
    opt.m[0], opt.v[0] = 1e-3, 1e-6   # normal values keep decaying normally
    opt.step(np.zeros_like(p), 2)
    assert np.all(opt.m[1:] == 0) and np.all(opt.v[1:] == 0)
    np.testing.assert_allclose(opt.m[0], 0.9e-3, rtol=1e-6)
    np.testing.assert_allclose(opt.v[0], 0.999e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(sizes=st.lists(st.integers(1, 40_000), min_size=1, max_size=5),
       steps=st.integers(1, 3), n_threads=st.sampled_from([1, 2]),
       scale=st.sampled_from([1.0, -0.25]), seed=st.integers(0, 2**32 - 1))
@settings(deadline=None, max_examples=20)
def test_adam_step_slices_equal_one_step(dtype, sizes, steps, n_threads, scale, seed):
    # advance() then step_slice over consecutive slices: the same numbers, bit for bit,
    # as one step() on the whole vector (Adam is elementwise)
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    p0 = rng.normal(size=n).astype(dtype)
    whole, sliced = Adam(p0.copy(), lr=1e-2), Adam(p0.copy(), lr=1e-2)
    for _ in range(steps):
        g = rng.normal(size=n).astype(dtype)
        whole.step(g, n_threads, scale)
        sliced.advance()
        o = 0
        for k in reversed(sizes):                      # any order: a backward goes top-down
            o_k = n - o - k
            sliced.step_slice(o_k, np.ascontiguousarray(g[o_k:o_k + k]), n_threads, scale)
            o += k
    for a, b in ((whole.params, sliced.params), (whole.m, sliced.m), (whole.v, sliced.v)):
        np.testing.assert_array_equal(a, b)
    assert whole.step_count == sliced.step_count == steps


def test_adam_step_slice_is_checked():
    opt = Adam(np.zeros(10))
    with pytest.raises(RuntimeError, match="advance"):
        opt.step_slice(0, np.ones(3))
    opt.advance()
    with pytest.raises(ValueError, match="does not fit"):
        opt.step_slice(8, np.ones(3))
    with pytest.raises(ValueError, match="does not fit"):
        opt.step_slice(-1, np.ones(3))
    opt.step_slice(7, np.ones(3))
    assert (opt.params[:7] == 0).all() and (opt.params[7:] < 0).all()
