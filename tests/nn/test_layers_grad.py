"""Backward passes of every activation, layer, MLP and loss against float64
central differences, over hypothesis-drawn shapes and values."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from tests.gradcheck import numerical_grad, rel_error, relu_margin
from vaeas_np.nn import MLP, ACTIVATIONS, DERIVATIVES
from vaeas_np.nn import layers, losses

TOL = 1e-6
activations = st.sampled_from(sorted(ACTIVATIONS))


@given(name=activations, seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6))
def test_activation_derivative(name, seed, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * 2
    x[np.abs(x) < 1e-3] += 0.01                 # keep away from relu's kink
    w = rng.normal(size=x.shape)                # f(x) = sum w * act(x)
    f = lambda: float((w * ACTIVATIONS[name](x.copy())).sum())
    y = ACTIVATIONS[name](x.copy())
    analytic = DERIVATIVES[name](y, w.copy())
    assert rel_error(analytic, numerical_grad(f, x)) < TOL


@pytest.fixture(params=[False, True], ids=["dx", "dx_transposed"])
def transposed(request, monkeypatch):
    """Run with every layer's input gradient computed as dx = delta W^T, or as its
    transpose W delta^T put back in rows (the path MNIST-sized layers take)."""
    if request.param:
        monkeypatch.setattr(layers, "TRANSPOSED_MIN_INPUTS", 1)
    else:
        monkeypatch.setattr(layers, "TRANSPOSED_MAX_BATCH", 0)
    return request.param


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4), act=activations,
       out_act=activations, batch=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_mlp_backward(transposed, sizes, act, out_act, batch, seed):
    rng = np.random.default_rng(seed)
    net = MLP(sizes, act, out_act, dtype=np.float64)
    net.params[...] = rng.normal(size=net.params.shape)
    x = rng.normal(size=(batch, sizes[0]))
    w = rng.normal(size=(batch, sizes[-1]))
    f = lambda: float((w * net.forward(x)).sum())
    net.forward(x)
    assume(relu_margin(net) > 1e-3)                 # central differences fail at a kink
    dx = net.backward(w.copy()).copy()
    assert rel_error(net.grads, numerical_grad(f, net.params)) < TOL
    assert rel_error(dx, numerical_grad(f, x)) < TOL


@given(batch=st.integers(1, 5), dim=st.integers(1, 6), scale=st.floats(0.1, 20),
       seed=st.integers(0, 2**32 - 1))
def test_bernoulli_nll_grad(batch, dim, scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, dim)) * scale
    x = (rng.random((batch, dim)) < 0.5).astype(np.float64)
    f = lambda: float(losses.bernoulli_nll(logits, x).sum())
    # f = sum softplus(l) - x l cancels terms of size |l| (found by hypothesis: l = 17.9,
    # x = 1, gradient 1.6e-8): the differences' round-off is eps |l| / h, so the floor
    # of the relative error scales with the largest |l|
    floor = 1e-4 * max(1.0, float(np.abs(logits).max()))
    assert rel_error(losses.bernoulli_nll_grad(logits, x), numerical_grad(f, logits),
                     floor=floor) < TOL


def test_bernoulli_nll_stable_for_extreme_logits():
    logits = np.array([[1e4, -1e4, 800.0, -800.0, 0.0]])
    x = np.array([[1.0, 0.0, 0.0, 1.0, 1.0]])
    nll = losses.bernoulli_nll(logits, x)
    assert np.isfinite(nll).all()
    np.testing.assert_allclose(nll, [800.0 + 800.0 + np.log(2)])
    assert np.isfinite(losses.bernoulli_nll_grad(logits, x)).all()


@given(batch=st.integers(1, 5), dim=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_gaussian_kl_and_reparameterisation_grads(batch, dim, seed):
    rng = np.random.default_rng(seed)
    mu, logvar = rng.normal(size=(batch, dim)), rng.normal(size=(batch, dim))
    eps, w = rng.normal(size=(batch, dim)), rng.normal(size=(batch, dim))
    f = lambda: float(losses.gaussian_kl(mu, logvar).sum())
    gmu, glv = losses.gaussian_kl_grad(mu, logvar)
    assert rel_error(gmu, numerical_grad(f, mu)) < TOL
    assert rel_error(glv, numerical_grad(f, logvar)) < TOL
    g = lambda: float((w * losses.reparameterize(mu, logvar, eps)).sum())
    dmu, dlv = losses.reparameterize_grad(w, logvar, eps)
    assert rel_error(dmu, numerical_grad(g, mu)) < TOL
    assert rel_error(dlv, numerical_grad(g, logvar)) < TOL


def test_gaussian_kl_matches_closed_form():
    mu, logvar = np.array([[0.0, 1.0]]), np.array([[0.0, np.log(4.0)]])
    # KL(N(1, 4) || N(0, 1)) = 0.5 (1 + 4 - 1 - log 4); the first dim contributes 0
    np.testing.assert_allclose(losses.gaussian_kl(mu, logvar), [0.5 * (4 - np.log(4.0))])


# n >= 3: with two features the output is +-1 whatever x, and the true gradient is
# only eps's tiny effect, below finite differences' resolution
@given(batch=st.integers(1, 5), n=st.integers(3, 7), seed=st.integers(0, 2**32 - 1))
def test_layer_norm_backward(batch, n, seed):
    from vaeas_np.nn.layers import LayerNorm
    rng = np.random.default_rng(seed)
    norm = LayerNorm(n, np.float64)
    x, w = rng.normal(size=(batch, n)) * 3, rng.normal(size=(batch, n))
    f = lambda: float((w * norm.forward(x)).sum())
    norm.forward(x)
    assert rel_error(norm.backward(w), numerical_grad(f, x)) < 1e-6


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 30), min_size=2, max_size=5),
       act=st.sampled_from(["relu", "tanh"]), batch=st.integers(1, 20),
       dtype=st.sampled_from([np.float32, np.float64]), sparse=st.booleans(),
       need_dx=st.booleans(), scale=st.sampled_from([1.0, -1.0 / 7]),
       seed=st.integers(0, 2**32 - 1))
def test_backward_with_optimizer_equals_backward_then_step(transposed, sizes, act, batch, dtype,
                                                           sparse, need_dx, scale, seed):
    """MLP.backward(optimizer=...) takes the Adam step layer by layer during the backward:
    the same parameters, moments and input gradient, bit for bit, as backward() then
    optimizer.step(grads), and ``grads`` is left alone."""
    from vaeas_np.nn.optim import Adam
    rng = np.random.default_rng(seed)
    nets = []
    for _ in range(2):
        net = MLP(sizes, act, "identity", dtype=dtype, sparse_input=sparse)
        net.initialize(np.random.default_rng(seed))
        nets.append((net, Adam(net.params, lr=1e-2)))
    x = (rng.random((batch, sizes[0])) < 0.2).astype(dtype)   # sparse enough for SparseRows
    dy = rng.normal(size=(batch, sizes[-1])).astype(dtype)
    p_init = nets[0][0].params.copy()
    for step in range(2):
        (a, opt_a), (b, opt_b) = nets
        a.forward(x)
        dx_a = a.backward(dy.copy(), need_input_grad=need_dx)
        dx_a = None if dx_a is None else dx_a.copy()
        opt_a.step(a.grads, scale=scale)
        b.forward(x)
        b.grads[...] = 7.0
        dx_b = b.backward(dy.copy(), need_input_grad=need_dx, optimizer=opt_b, scale=scale)
        assert (b.grads == 7.0).all()                       # not written
        if need_dx:
            np.testing.assert_array_equal(dx_a, dx_b)      # from the forward's weights
        else:
            assert dx_b is None
        for u, w in ((a.params, b.params), (opt_a.m, opt_b.m), (opt_a.v, opt_b.v)):
            np.testing.assert_array_equal(u, w)
        assert opt_a.step_count == opt_b.step_count == step + 1
    assert not np.array_equal(b.params, p_init)            # the step did move them


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_input_grads_at_mnist_sizes(dtype):
    """The MNIST encoder's shapes take the transposed path (batch 128, 500 inputs); its
    gradients equal those of dx = delta W^T up to the GEMMs' rounding."""
    assert layers.transposed_input_grad(128, 500, dtype)
    # z's gradient: transposed only on the compiled GEMM (float32)
    assert layers.transposed_input_grad(128, 40, dtype) == (
        layers.OWN_GEMM and dtype == np.float32)
    assert not layers.transposed_input_grad(4096, 500, dtype)     # large batches
    rng = np.random.default_rng(0)
    net = MLP((784, 500, 500, 80), dtype=dtype)
    net.initialize(rng)
    x = rng.random((128, 784)).astype(dtype)
    dy = rng.normal(size=(128, 80)).astype(dtype)
    out = []
    for max_batch in (layers.TRANSPOSED_MAX_BATCH, 0):
        layers_max, layers.TRANSPOSED_MAX_BATCH = layers.TRANSPOSED_MAX_BATCH, max_batch
        try:
            net.forward(x)
            out.append((net.backward(dy.copy()).copy(), net.grads.copy()))
        finally:
            layers.TRANSPOSED_MAX_BATCH = layers_max
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
