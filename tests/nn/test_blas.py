"""numpy's OpenBLAS called with beta = 1 (C += A^T B), the fused Adam that zeroes the
gradient it reads, and the MLP backward that combines the two."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from vaeas_np.nn import MLP, _blas, layers
from vaeas_np.nn.optim import Adam
from vaeas_np._ext import blas as blas_ext, optim as optim_ext

needs_blas = pytest.mark.skipif(not _blas.available(np.float32),
                                reason="numpy's BLAS is not its bundled OpenBLAS")


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(K=st.integers(1, 300), M=st.integers(2, 300), N=st.integers(2, 300),
       seed=st.integers(0, 2**32 - 1))
def test_add_at_b_equals_matmul(dtype, K, M, N, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, M)).astype(dtype)
    B = rng.normal(size=(K, N)).astype(dtype)
    C = np.zeros((M, N), dtype)
    _blas.add_at_b(A, B, C)
    np.testing.assert_array_equal(C, np.matmul(A.T, B))       # the same GEMM call
    C0 = rng.normal(size=(M, N)).astype(dtype)
    C = C0.copy()
    _blas.add_at_b(A, B, C)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C, C0 + A.T.astype(np.float64) @ B, rtol=tol,
                               atol=tol * np.sqrt(K))


def test_add_at_b_checks_shapes():
    with pytest.raises(ValueError, match="C must be"):
        _blas.add_at_b(np.zeros((3, 4), np.float32), np.zeros((3, 5), np.float32),
                       np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        _blas.add_at_b(np.zeros((3, 4)), np.zeros((2, 5)), np.zeros((4, 5)))


def test_no_gemm_set_is_an_error(monkeypatch):
    monkeypatch.setattr(_blas, "_state", False)
    assert not _blas.available(np.float32)
    blas_ext.set_gemm(0, 0)
    try:
        with pytest.raises(RuntimeError, match="no float32 GEMM"):
            blas_ext.add_at_b(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32),
                              np.zeros((2, 2), np.float32))
    finally:
        monkeypatch.setattr(_blas, "_state", None)
        _blas.available(np.float32)                             # set the addresses again


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("VAEAS_NP_DIRECT_GEMM", "0")
    monkeypatch.setattr(_blas, "_state", None)
    assert not _blas.available(np.float32)
    monkeypatch.setattr(_blas, "_state", None)
    monkeypatch.delenv("VAEAS_NP_DIRECT_GEMM")
    assert _blas.available(np.float32) == (_blas._numpy_openblas() is not None)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(n=st.integers(1, 300_000), seed=st.integers(0, 2**32 - 1))
def test_adam_zero_grad_same_step_and_zeroes(n_threads, dtype, n, seed):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=n).astype(dtype)
    g = rng.normal(size=n).astype(dtype)
    m, v = (rng.normal(size=n) * 0.1).astype(dtype), rng.random(n).astype(dtype)
    p2, g2, m2, v2 = p.copy(), g.copy(), m.copy(), v.copy()
    optim_ext.adam_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 3, n_threads, 0.5, False)
    optim_ext.adam_step(p2, g2, m2, v2, 1e-3, 0.9, 0.999, 1e-8, 3, n_threads, 0.5, True)
    for a, b in ((p, p2), (m, m2), (v, v2)):
        np.testing.assert_array_equal(a, b)
    assert not g2.any()
    assert g.any()


@pytest.mark.parametrize("own_gemm", [False, True])
def test_mlp_scratch_recovers_after_an_interrupted_backward(monkeypatch, own_gemm):
    """A backward stopped between a layer's gradient and its Adam slice leaves the
    accumulation scratch dirty; the next backward zeroes it (numpy's BLAS adds into
    it) or writes over it (the compiled GEMM) and steps correctly."""
    if own_gemm and not layers.OWN_GEMM:
        pytest.skip("no compiled GEMM in this build")
    monkeypatch.setattr(layers, "OWN_GEMM", own_gemm)
    monkeypatch.setattr(layers, "FUSED_BACKWARD", False)    # the layer-by-layer calls
    sizes = (30, 20, 10)
    nets = []
    for _ in range(2):
        net = MLP(sizes, dtype=np.float32)
        net.initialize(np.random.default_rng(0))
        nets.append((net, Adam(net.params, lr=1e-2)))
    rng = np.random.default_rng(1)
    x = rng.random((8, 30)).astype(np.float32)
    dy = rng.normal(size=(8, 10)).astype(np.float32)
    (a, opt_a), (b, opt_b) = nets
    real, real_gemm = Adam.step_slice, Adam.step_slice_gemm

    def fail(self, *args, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(Adam, "step_slice", fail)
    monkeypatch.setattr(Adam, "step_slice_gemm", fail)   # the top layer's W on the own GEMM
    b.forward(x)
    with pytest.raises(KeyboardInterrupt):
        b.backward(dy.copy(), optimizer=opt_b)
    monkeypatch.setattr(Adam, "step_slice", real)
    monkeypatch.setattr(Adam, "step_slice_gemm", real_gemm)
    if _blas.available(np.float32) and not own_gemm:
        assert b._grad_scratch.any() and not b._grad_scratch_zero
    opt_b.step_count = 0                                # the failed step never happened
    a.forward(x)
    a.backward(dy.copy())
    opt_a.step(a.grads)
    b.forward(x)
    b.backward(dy.copy(), optimizer=opt_b)
    np.testing.assert_array_equal(a.params, b.params)
    assert b._grad_scratch.any() if own_gemm else not b._grad_scratch.any()
