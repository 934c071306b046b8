"""Full softmax: kernels against NumPy, gradients, Adam, evaluation helpers."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vaeas_np._ext import softmax_full
from vaeas_np.softmax import FullSoftmax
from vaeas_np.softmax import reference as ref
from tests.gradcheck import numerical_grad, rel_error


def make(V, h, dtype=np.float64, seed=0, n_threads=1, B=7):
    rng = np.random.default_rng(seed)
    F = FullSoftmax(h, V, dtype=dtype, init_std=0.7, seed=seed, n_threads=n_threads)
    F.b[:] = rng.normal(size=V)
    H = rng.normal(size=(B, h)).astype(dtype)
    return F, H, rng.integers(0, V, B), rng


@settings(deadline=None, max_examples=15)
@given(V=st.integers(2, 3000), h=st.integers(1, 12), seed=st.integers(0, 1000))
def test_probabilities_sum_to_one_and_entropy(V, h, seed):
    F, H, labels, _ = make(V, h, seed=seed, B=3)
    lp = F.log_prob_all(H)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(F.forward(H, labels), lp[np.arange(3), labels], atol=1e-10)
    np.testing.assert_allclose(F.entropy(H, chunk_elems=1), -(np.exp(lp) * lp).sum(1),
                               rtol=1e-10)


@pytest.mark.parametrize("V", [2, 3, 10])
def test_finite_differences(V):
    h, B = 4, 5
    F, H, labels, rng = make(V, h, B=B, seed=V)
    c = rng.normal(size=B)

    def f():
        return float(c @ F.forward(H, labels))

    f()
    dH = F.backward(c).copy()
    gW, gb = (g.copy() for g in F.grads())
    assert rel_error(numerical_grad(f, H), dH) <= 1e-6
    assert rel_error(numerical_grad(f, F.W), gW) <= 1e-6
    assert rel_error(numerical_grad(f, F.b), gb) <= 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernels_equal_reference(dtype, n_threads):
    B, V = 19, 257
    rng = np.random.default_rng(1)
    logits = (3 * rng.normal(size=(B, V))).astype(dtype)
    bias = rng.normal(size=V).astype(dtype)
    labels = rng.integers(0, V, B)
    dl = rng.normal(size=B).astype(dtype)
    buf = logits.copy()
    logp, zinv = np.empty(B, dtype), np.empty(B, dtype)
    softmax_full.forward(buf, bias, labels, logp, zinv, n_threads)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(logp, ref.sm_forward(logits, bias, labels), **tol)
    softmax_full.backward(buf, zinv, labels, dl, n_threads)
    np.testing.assert_allclose(buf, ref.sm_backward(logits, bias, labels, dl), **tol)


def test_extreme_logits_are_stable():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    buf, logp, zinv = logits.copy(), np.empty(1), np.empty(1)
    softmax_full.forward(buf, np.zeros(3), np.array([2]), logp, zinv, 1)
    assert logp[0] == -2000.0


def test_step_is_adam_and_learns():
    V, h, B = 10, 6, 40
    F, H, labels, _ = make(V, h, dtype=np.float32, B=B, n_threads=2)
    first = F.forward(H, labels).mean()
    F.backward(1.0)
    W0, gW = F.W.copy(), F.grad_W.copy()
    F.step(-1.0 / B, lr=1e-2)
    # first Adam step moves each weight by lr * sign(gradient of the loss)
    np.testing.assert_allclose(F.W, W0 - 1e-2 * np.sign(-gW / B), atol=1e-5)
    for _ in range(100):
        F.forward(H, labels)
        F.backward(1.0)
        F.step(-1.0 / B, lr=1e-2)
    assert F.forward(H, labels).mean() > first + 0.5


def test_backward_once_per_forward():
    F, H, labels, _ = make(4, 3)
    F.forward(H, labels)
    F.backward(1.0)
    with pytest.raises(RuntimeError):
        F.backward(1.0)


def test_float32_exp_of_the_softmax_kernel_is_within_2_ulp():
    """The vectorised float32 exp (Cephes form) against double exp, over [-87, 0]."""
    from vaeas_np._ext import softmax_full
    x = np.concatenate([np.linspace(-87.0, 0.0, 400_001), -np.logspace(-8, 1.9, 1000),
                        [0.0, -1e-30]]).astype(np.float32)
    out = np.empty_like(x)
    softmax_full.expf_nonpos(x, out)
    exact = np.exp(x.astype(np.float64))
    rel = np.abs(out - exact) / exact
    assert rel.max() < 2.5e-7, rel.max()            # 2 ulp of float32 is 2.4e-7
    below = np.array([-88.0, -100.0, -1e30], np.float32)
    softmax_full.expf_nonpos(below, out[:3])
    assert np.all(out[:3] >= 0) and np.all(out[:3] < 1.3e-38)


def test_float32_kernel_propagates_nan_to_the_row():
    """A NaN logit anywhere in a row makes that row's log-probability NaN (so that
    training reports divergence), not a silently finite value."""
    from vaeas_np._ext import softmax_full
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 50)).astype(np.float32)
    logits[1, 7] = np.nan                       # not the label of row 1
    labels = np.array([0, 3, 5], np.int64)
    logp, zinv = np.empty(3, np.float32), np.empty(3, np.float32)
    softmax_full.forward(logits, np.zeros(50, np.float32), labels, logp, zinv, 1)
    assert np.isnan(logp[1]) and np.isfinite(logp[[0, 2]]).all()


@pytest.mark.parametrize("own", [True, False])
def test_float32_layer_matches_float64(monkeypatch, own):
    """The float32 layer (its forward and weight gradient on the compiled GEMM, or on
    np.matmul with the GEMM switched off) against the same layer in float64."""
    import vaeas_np.nn.layers as layers
    monkeypatch.setattr(layers, "OWN_GEMM", own and layers.OWN_GEMM)
    V, h, B = 1000, 37, 21
    F32, H32, labels, rng = make(V, h, dtype=np.float32, B=B, n_threads=2, seed=4)
    F64 = FullSoftmax(h, V, dtype=np.float64, n_threads=2)
    F64.W[...], F64.b[...] = F32.W, F32.b
    c = rng.normal(size=B)
    lp32, lp64 = F32.forward(H32, labels).copy(), F64.forward(H32.astype(np.float64), labels)
    np.testing.assert_allclose(lp32, lp64, rtol=1e-5, atol=1e-4)
    dH32, dH64 = F32.backward(c.astype(np.float32)).copy(), F64.backward(c)
    np.testing.assert_allclose(dH32, dH64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(F32.grad_W, F64.grad_W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(F32.grad_b, F64.grad_b, rtol=1e-4, atol=1e-5)
