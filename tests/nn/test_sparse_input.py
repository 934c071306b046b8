"""The first layer's sparse-input kernels: against their NumPy references and a dense
GEMM (1 and 2 threads, both dtypes, shapes around the 128-column blocks and the
16-lane vectors), and an MLP that takes the sparse path against finite differences
and against the same MLP on the dense path."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tests.gradcheck import numerical_grad, rel_error
from vaeas_np._ext import sparse_input as ext
from vaeas_np.nn import MLP
from vaeas_np.nn.sparse_input import (MAX_DENSITY, SparseRows, rows_matmul_reference,
                                      rows_t_matmul_reference, to_rows_reference)


def sparse_batch(rng, B, D, density, binary, dtype):
    x = (rng.random((B, D)) < density).astype(dtype)
    if not binary:
        x *= rng.random((B, D)).astype(dtype)        # values in [0, 1), zeros kept
    return x


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(B=st.integers(0, 40), D=st.integers(0, 300), H=st.integers(0, 300),
       density=st.floats(0, 1), binary=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_kernels_match_references_and_gemm(n_threads, dtype, B, D, H, density, binary, seed):
    rng = np.random.default_rng(seed)
    x = sparse_batch(rng, B, D, density, binary, dtype)
    W = rng.standard_normal((D, H)).astype(dtype)
    delta = rng.standard_normal((B, H)).astype(dtype)
    rows = SparseRows(B, D, dtype)
    frac = rows.load(x, n_threads)
    idx, val, cnt = to_rows_reference(x)
    np.testing.assert_array_equal(rows.cnt, cnt)
    assert rows.nnz == np.count_nonzero(x) and frac == pytest.approx(rows.nnz / max(x.size, 1))
    for i in range(B):
        np.testing.assert_array_equal(rows.idx[i, :cnt[i]], idx[i, :cnt[i]])
        np.testing.assert_array_equal(rows.val[i, :cnt[i]], val[i, :cnt[i]])
    out = np.full((B, H), np.nan, dtype)                 # every element must be written
    dW = np.full((D, H), np.nan, dtype)
    rows.matmul(W, out, n_threads)
    rows.t_matmul(delta, dW, n_threads)
    x64, W64, d64 = (a.astype(np.float64) for a in (x, W, delta))
    # a sum of n products in dtype is within ~sqrt(n) eps sum|terms| of the exact one
    # (a plain rtol fails on cancellation: 0.4067 from terms of size ~10 in float32)
    eps = np.finfo(dtype).eps
    bound_out = 4 * np.sqrt(max(D, 1)) * eps * (np.abs(x64) @ np.abs(W64)) + 1e-30
    bound_dW = 4 * np.sqrt(max(B, 1)) * eps * (np.abs(x64).T @ np.abs(d64)) + 1e-30
    for got, want, bound in ((out, rows_matmul_reference(idx, val, cnt, W), bound_out),
                             (out, x64 @ W64, bound_out),
                             (dW, rows_t_matmul_reference(idx, val, cnt, delta), bound_dW),
                             (dW, x64.T @ d64, bound_dW)):
        err = np.abs(got.astype(np.float64) - want)
        assert np.all(err <= bound), f"max error / bound {np.max(err / bound):.3g}"


@given(B=st.integers(1, 30), D=st.integers(1, 200), H=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1))
def test_kernels_do_not_depend_on_the_thread_count(B, D, H, seed):
    rng = np.random.default_rng(seed)
    x = sparse_batch(rng, B, D, 0.2, False, np.float32)
    W = rng.standard_normal((D, H)).astype(np.float32)
    delta = rng.standard_normal((B, H)).astype(np.float32)
    res = []
    for nt in (1, 2):
        rows = SparseRows(B, D, np.float32)
        rows.load(x, nt)
        res.append((rows.matmul(W, np.empty((B, H), np.float32), nt),
                    rows.t_matmul(delta, np.empty((D, H), np.float32), nt)))
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)         # fixed summation order: bit for bit


@pytest.mark.parametrize("D", [1, 15, 16, 17, 31, 32, 33, 784])
def test_to_rows_special_values_and_widths(D):
    """The SIMD row compression (16 columns at a time, a masked tail): NaN, inf and
    subnormals count as nonzeros, -0.0 does not, as in the reference."""
    rng = np.random.default_rng(D)
    for dtype, simd in ((np.float32, 1), (np.float32, 0), (np.float64, 1)):
        ext._set_simd_rows(simd)                        # float32: SIMD, then the loop
        x = np.zeros((5, D), dtype)
        specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, 1.0, -2.5], dtype)
        x.flat[rng.integers(0, x.size, 3 * D)] = rng.choice(specials, 3 * D)
        x[4] = 1.0                                      # a full row
        rows = SparseRows(5, D, dtype)
        assert rows.load(x, 2) == pytest.approx(rows.nnz / x.size)
        idx, val, cnt = to_rows_reference(x)
        np.testing.assert_array_equal(rows.cnt, cnt)
        for i in range(5):
            np.testing.assert_array_equal(rows.idx[i, :cnt[i]], idx[i, :cnt[i]])
            np.testing.assert_array_equal(rows.val[i, :cnt[i]], val[i, :cnt[i]])
        # to_rows itself (SparseRows.load builds float32 rows with load_rows_cols, which
        # always compresses with SIMD where it is built; the switch acts on to_rows)
        i2, v2, c2 = np.empty((5, D), np.int32), np.empty((5, D), dtype), np.empty(5, np.int32)
        ext.to_rows(x, i2, v2, c2, 2)
        np.testing.assert_array_equal(c2, cnt)
        for i in range(5):
            np.testing.assert_array_equal(i2[i, :cnt[i]], idx[i, :cnt[i]])
            np.testing.assert_array_equal(v2[i, :cnt[i]], val[i, :cnt[i]])
    ext._set_simd_rows(1)


def test_kernels_reject_mismatched_shapes():
    rows = SparseRows(4, 10, np.float32)
    rows.load(np.zeros((4, 10), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        rows.matmul(np.zeros((11, 3), np.float32), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        rows.t_matmul(np.zeros((5, 3), np.float32), np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match="x's shape"):
        ext.to_rows(np.zeros((4, 10), np.float32), rows.idx[:, :5].copy(), rows.val,
                    rows.cnt)
    bad = rows.cnt.copy()
    bad[0] = 11                                          # more nonzeros than columns
    with pytest.raises(ValueError, match=r"cnt\[0\] = 11"):
        ext.rows_matmul(rows.idx, rows.val, bad, np.zeros((10, 3), np.float32),
                        np.zeros((4, 3), np.float32))


@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       n_in=st.integers(8, 40), batch=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_sparse_first_layer_gradients(sizes, n_in, batch, seed):
    """float64 finite differences through an MLP whose first layer takes the sparse path."""
    rng = np.random.default_rng(seed)
    sizes = [n_in, *sizes]
    net = MLP(sizes, "relu", "identity", dtype=np.float64, sparse_input=True)
    net.params[...] = rng.normal(size=net.params.shape)
    x = np.zeros((batch, n_in))
    x[:, rng.permutation(n_in)[:2]] = rng.random((batch, 2))   # <= 2 / 8 = MAX_DENSITY
    w = rng.normal(size=(batch, sizes[-1]))
    f = lambda: float((w * net.forward(x)).sum())
    net.forward(x)
    assert net._x_rows is not None                   # the sparse path was taken
    dx = net.backward(w.copy()).copy()
    assert rel_error(net.grads, numerical_grad(f, net.params)) < 1e-6
    assert rel_error(dx, numerical_grad(f, x)) < 1e-6


@pytest.mark.parametrize("density, sparse_taken", [(0.1, True), (MAX_DENSITY + 0.15, False)])
def test_mlp_sparse_path_equals_dense_path(density, sparse_taken):
    rng = np.random.default_rng(0)
    nets = [MLP((784, 500, 80), dtype=np.float64, sparse_input=s) for s in (True, False)]
    nets[0].initialize(rng)
    nets[1].params[...] = nets[0].params
    x = (rng.random((64, 784)) < density).astype(np.float64)
    dy = rng.standard_normal((64, 80))
    outs = [net.forward(x).copy() for net in nets]
    assert (nets[0]._x_rows is not None) == sparse_taken
    for net in nets:
        net.backward(dy.copy(), need_input_grad=False)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nets[0].grads, nets[1].grads, rtol=1e-12, atol=1e-12)


def _columns_reference(x):
    """(cptr, crow, cval): x's nonzeros column by column, rows ascending."""
    cols = [np.flatnonzero(x[:, j]) for j in range(x.shape[1])]
    cptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32)
    crow = np.concatenate(cols + [np.zeros(0, np.int64)]).astype(np.int32)
    cval = np.concatenate([x[c, j] for j, c in enumerate(cols)] + [np.zeros(0, x.dtype)])
    return cptr, crow, cval


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@given(B=st.integers(0, 70), D=st.integers(0, 200), density=st.floats(0, 0.4),
       seed=st.integers(0, 2**32 - 1))
def test_load_builds_the_columns_and_runs_the_side_job(n_threads, B, D, density, seed):
    """float32 load: the rows, x's columns (when they fit the buffers sized for
    MAX_DENSITY) and a NormalFill side job, whatever thread ran which; t_matmul on the
    loaded columns equals t_matmul building its own, bit for bit."""
    from vaeas_np._ext import noise
    rng = np.random.default_rng(seed)
    x = sparse_batch(rng, B, D, density, False, np.float32)
    if x.size:
        x.flat[rng.integers(0, x.size)] = np.nan             # a nonzero too
    rows = SparseRows(B, D, np.float32)
    eps, gen, twin = np.empty((B, 7), np.float32), np.random.default_rng(seed), \
        np.random.default_rng(seed)
    rows.load(x, n_threads, side=noise.NormalFill(gen, eps))
    np.testing.assert_array_equal(eps, twin.standard_normal((B, 7), dtype=np.float32))
    assert gen.bit_generator.state == twin.bit_generator.state
    nnz = np.count_nonzero(x)
    assert rows.nnz == nnz and rows.columns_ready == (nnz <= rows.crow.shape[0])
    idx, val, cnt = to_rows_reference(x)
    np.testing.assert_array_equal(rows.cnt, cnt)
    if rows.columns_ready:
        cptr, crow, cval = _columns_reference(x)
        np.testing.assert_array_equal(rows.cptr, cptr)
        np.testing.assert_array_equal(rows.crow[:nnz], crow)
        np.testing.assert_array_equal(rows.cval[:nnz], cval)
    delta = rng.standard_normal((B, 33)).astype(np.float32)
    got = rows.t_matmul(delta, np.empty((D, 33), np.float32), n_threads)
    rows.columns_ready = False                               # built again by t_matmul
    want = rows.t_matmul(delta, np.empty((D, 33), np.float32), n_threads)
    np.testing.assert_array_equal(got, want)


def test_t_matmul_rejects_columns_of_another_batch():
    rng = np.random.default_rng(1)
    rows = SparseRows(6, 20, np.float32)
    rows.load(sparse_batch(rng, 6, 20, 0.2, True, np.float32))
    rows.cptr[-1] += 1                                       # as if another batch's
    with pytest.raises(ValueError, match="load the batch again"):
        rows.t_matmul(np.zeros((6, 3), np.float32), np.zeros((20, 3), np.float32))


def test_float64_load_runs_the_side_job_first():
    from vaeas_np._ext import noise
    x = np.eye(4)
    eps, gen = np.empty(5), np.random.default_rng(3)
    rows = SparseRows(4, 4, np.float64)
    rows.load(x, 2, side=noise.NormalFill(gen, eps))
    np.testing.assert_array_equal(eps, np.random.default_rng(3).standard_normal(5))
    assert not rows.columns_ready
