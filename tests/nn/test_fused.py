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


def test_fused_shape_errors():
    with pytest.raises(ValueError, match="elements"):
        fused.bias_act(np.zeros((2, 3)), np.zeros(4), True, 1)
    with pytest.raises(ValueError, match="same shape"):
        fused.relu_backward(np.zeros((2, 3)), np.zeros((3, 2)), 1)
