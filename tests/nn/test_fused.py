"""Fused bias/ReLU kernels against their NumPy references, 1 and 2 threads."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from vaeas_np._ext import fused
from vaeas_np.nn.activations import relu, relu_derivative


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(B=st.integers(1, 300), D=st.integers(1, 600), relu_on=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_bias_act_matches_numpy(n_threads, dtype, B, D, relu_on, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(B, D)).astype(dtype)
    b = rng.normal(size=D).astype(dtype)
    expected = y + b
    if relu_on:
        relu(expected)
    fused.bias_act(y, b, relu_on, n_threads)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("n_threads", [1, 2])
@given(B=st.integers(1, 300), D=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_relu_backward_matches_numpy(n_threads, B, D, seed):
    rng = np.random.default_rng(seed)
    y = np.maximum(rng.normal(size=(B, D)), 0).astype(np.float32)
    delta = rng.normal(size=(B, D)).astype(np.float32)
    expected = relu_derivative(y, delta.copy())
    fused.relu_backward(y, delta, n_threads)
    np.testing.assert_array_equal(delta, expected)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(n=st.integers(1, 600), B=st.integers(1, 300), masked=st.booleans(),
       simd=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_transpose_relu_backward_matches_numpy(n_threads, dtype, n, B, masked, simd, seed):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(n, B)).astype(dtype)
    y = np.maximum(rng.normal(size=(B, n)), 0).astype(dtype) if masked else None
    expected = src.T.copy()
    if masked:
        relu_derivative(y, expected)
    dst = np.full((B, n), np.nan, dtype)
    fused.transpose_relu_backward(src, dst, y, n_threads, simd)
    np.testing.assert_array_equal(dst, expected)


def test_transpose_relu_backward_tiles_and_tails():
    """Every mix of full 16 x 16 tiles and ragged edges, SIMD against element by element."""
    rng = np.random.default_rng(0)
    for n in (15, 16, 17, 32, 33, 500):
        for B in (15, 16, 17, 128, 129):
            src = rng.normal(size=(n, B)).astype(np.float32)
            y = rng.normal(size=(B, n)).astype(np.float32)
            a, b = np.empty((B, n), np.float32), np.empty((B, n), np.float32)
            fused.transpose_relu_backward(src, a, y, 2, True)
            fused.transpose_relu_backward(src, b, y, 1, False)
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, np.where(y > 0, src.T, 0))


def test_fused_shape_errors():
    with pytest.raises(ValueError, match="elements"):
        fused.bias_act(np.zeros((2, 3)), np.zeros(4), True, 1)
    with pytest.raises(ValueError, match="same shape"):
        fused.relu_backward(np.zeros((2, 3)), np.zeros((3, 2)), 1)
    with pytest.raises(ValueError, match=r"dst must have shape \(3, 2\)"):
        fused.transpose_relu_backward(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"y must have shape \(3, 2\)"):
        fused.transpose_relu_backward(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(B=st.integers(1, 140), d=st.integers(1, 60), beta=st.floats(0, 4),
       scale=st.sampled_from([1e-3, 1.0, 30.0]), seed=st.integers(0, 2**32 - 1))
def test_latent_forward_backward_match_numpy(dtype, B, d, beta, scale, seed):
    """The VAE's latent layer in one compiled pass each way: z, var, dL/dmu and
    dL/dlogvar are the NumPy statements' bits (no fused multiply-add), kl_i is summed in
    double (close to the reference's float64 sum)."""
    from vaeas_np.models.vae import latent_backward_reference, latent_forward_reference
    rng = np.random.default_rng(seed)
    enc = (rng.normal(size=(B, 2 * d)) * scale).astype(dtype)
    enc[:, d:] = np.clip(enc[:, d:], -20, 20)
    std = np.exp(enc[:, d:] * dtype(0.5))
    eps = rng.normal(size=(B, d)).astype(dtype)
    dz = rng.normal(size=(B, d)).astype(dtype)
    z, var, kl_i = (np.full((B, d), np.nan, dtype), np.full((B, d), np.nan, dtype),
                    np.full(B, np.nan, dtype))
    fused.latent_forward(enc, std, eps, z, var, kl_i)
    z_ref, var_ref, kl_ref = latent_forward_reference(enc, std, eps)
    np.testing.assert_array_equal(z, z_ref)
    np.testing.assert_array_equal(var, var_ref)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(kl_i, kl_ref, rtol=tol,
                               atol=tol * np.abs(enc).sum(axis=1).max() ** 2 + tol * d)
    denc = np.full((B, 2 * d), np.nan, dtype)
    fused.latent_backward(enc, std, eps, var, dz, denc, beta / B, 0.5 * beta / B)
    np.testing.assert_array_equal(denc, latent_backward_reference(enc, std, eps, var, dz,
                                                                  beta, B))


def test_latent_kernels_reject_bad_shapes():
    enc = np.zeros((4, 6), np.float32)
    ok = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="z must be"):
        fused.latent_forward(enc, ok, ok, np.zeros((4, 2), np.float32), ok, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="kl_i must be"):
        fused.latent_forward(enc, ok, ok, ok.copy(), ok.copy(), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="even number of columns"):
        fused.latent_forward(np.zeros((4, 5), np.float32), ok, ok, ok.copy(), ok.copy(),
                             np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="denc must be"):
        fused.latent_backward(enc, ok, ok, ok, ok, np.zeros((4, 8), np.float32), 1.0, 0.5)
