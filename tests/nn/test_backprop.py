"""The one-call training backward (``_ext/backprop.h``) against MLP.backward's
layer-by-layer path: the same bits in the parameters, Adam's moments and dL/dx."""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from vaeas_np._ext import backprop
from vaeas_np.nn import MLP, layers
from vaeas_np.nn.optim import Adam

pytestmark = pytest.mark.skipif(not layers.FUSED_BACKWARD,
                                reason="no compiled GEMM / fused backward in this build")


def train(sizes, act, out_act, sparse, batch, steps, need_input_grad, scale, n_threads, fused,
          seed, monkeypatch, batches=None):
    monkeypatch.setattr(layers, "FUSED_BACKWARD", fused)
    net = MLP(sizes, act, out_act, np.float32, sparse_input=sparse)
    net.initialize(np.random.default_rng(seed))
    net.n_threads = n_threads
    opt = Adam(net.params)
    rng = np.random.default_rng(seed + 1)
    dxs = []
    for s in range(steps):
        b = batch if batches is None else batches[s]
        x = rng.random((b, sizes[0]), dtype=np.float32)
        if sparse:
            x = (x < 0.13).astype(np.float32)
        net.forward(x)
        dy = rng.standard_normal((b, sizes[-1]), dtype=np.float32)
        dx = net.backward(dy, need_input_grad=need_input_grad, optimizer=opt, scale=scale)
        dxs.append(None if dx is None else dx.copy())
    return net, opt, dxs


def check_same(a, b):
    (net_a, opt_a, dx_a), (net_b, opt_b, dx_b) = a, b
    np.testing.assert_array_equal(net_a.params, net_b.params)
    np.testing.assert_array_equal(opt_a.m, opt_b.m)
    np.testing.assert_array_equal(opt_a.v, opt_b.v)
    for p, q in zip(dx_a, dx_b):
        assert (p is None) == (q is None)
        if p is not None:
            np.testing.assert_array_equal(p, q)


@settings(deadline=None, max_examples=40)
@given(sizes=st.lists(st.sampled_from([1, 3, 16, 17, 40, 64, 65, 130, 300]), min_size=2,
                      max_size=5),
       act=st.sampled_from(["relu", "identity"]), out_act=st.sampled_from(["relu", "identity"]),
       sparse=st.booleans(), batch=st.integers(1, 140), need_input_grad=st.booleans(),
       scale=st.sampled_from([1.0, 0.25]), n_threads=st.integers(1, 3),
       seed=st.integers(0, 2**31))
@example(sizes=[784, 500, 500, 80], act="relu", out_act="identity", sparse=True, batch=128,
         need_input_grad=False, scale=1.0, n_threads=2, seed=0)       # the MNIST encoder
@example(sizes=[40, 500, 500, 500, 784], act="relu", out_act="identity", sparse=False,
         batch=128, need_input_grad=True, scale=1.0, n_threads=2, seed=1)   # decoder-like
@example(sizes=[40, 500, 500], act="relu", out_act="relu", sparse=False, batch=128,
         need_input_grad=True, scale=0.5, n_threads=2, seed=2)       # the classifier
def test_fused_backward_gives_the_same_bits(sizes, act, out_act, sparse, batch,
                                            need_input_grad, scale, n_threads, seed):
    with pytest.MonkeyPatch.context() as mp:
        args = (sizes, act, out_act, sparse, batch, 2, need_input_grad, scale, n_threads)
        fused = train(*args, True, seed, mp)
        plain = train(*args, False, seed, mp)
    check_same(fused, plain)


def test_fused_backward_is_used_and_survives_new_buffers(monkeypatch):
    """The plan is built once per batch size and taken on the training path; when the
    MLP's work buffers for that batch size are replaced (many batch sizes in between),
    a new plan is built, and the bits still match."""
    sizes, batches = (30, 64, 64, 20), [16, 16] + list(range(1, 11)) + [16, 16]
    fused = train(sizes, "relu", "identity", False, None, len(batches), True, 1.0, 2, True, 3,
                  monkeypatch, batches)
    assert len(fused[0]._plans) >= 1
    plain = train(sizes, "relu", "identity", False, None, len(batches), True, 1.0, 2, False,
                  3, monkeypatch, batches)
    check_same(fused, plain)


def test_fused_backward_falls_back_for_other_inputs(monkeypatch):
    """A non-contiguous input to the bottom layer takes the layer-by-layer path (the
    same numbers); tanh layers never get a plan."""
    net = MLP((12, 20, 5), "relu", "identity", np.float32)
    net.initialize(np.random.default_rng(0))
    opt = Adam(net.params)
    x = np.random.default_rng(1).random((8, 24), dtype=np.float32)[:, ::2]
    net.forward(x)
    before = net.params.copy()
    net.backward(np.ones((8, 5), np.float32), optimizer=opt)
    assert (net.params != before).any()
    tanh = MLP((12, 20, 5), "tanh", "identity", np.float32)
    tanh.initialize(np.random.default_rng(0))
    assert tanh._backward_plan(8, True, Adam(tanh.params)) is None


def test_backward_plan_checks_its_arguments():
    f = lambda *s: np.zeros(s, np.float32)      # noqa: E731
    plan = backprop.BackwardPlan(1, 4)
    good = dict(x=f(4, 3), W=f(3, 2), mW=f(3, 2), vW=f(3, 2), b=f(2), mb=f(2), vb=f(2),
                delta=f(4, 2), delta_t=f(2, 4), delta_t_ready=False, gb=f(2), dx_t=f(3, 4),
                dx=f(4, 3), y_below=None, keep_t=False)
    plan.set_layer(0, **good)
    with pytest.raises(ValueError, match="do not match"):
        plan.set_layer(0, **{**good, "x": f(5, 3)})
    with pytest.raises(ValueError, match="go together"):
        plan.set_layer(0, **{**good, "dx": None})
    with pytest.raises(ValueError, match="y_below"):
        plan.set_layer(0, **{**good, "y_below": f(4, 2)})
    with pytest.raises(IndexError):
        plan.set_layer(1, **good)
    with pytest.raises(ValueError, match="top_delta"):
        plan.run(f(4, 3), f(4, 3), 1e-3, 0.9, 0.999, 1e-8, 1, 1.0, 1)
    with pytest.raises(ValueError, match="n_threads"):
        plan.run(f(4, 2), f(4, 3), 1e-3, 0.9, 0.999, 1e-8, 1, 1.0, 0)
    with pytest.raises(ValueError, match="at least one"):
        backprop.BackwardPlan(0, 4)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_trained_mlp_copies_and_the_copy_trains_on_its_own_arrays(how):
    """The plans point into the MLP's arrays: a copy must not carry them over (they
    cannot be pickled, and would update the original's parameters)."""
    import copy
    import pickle
    net = MLP((12, 32, 32, 6), "relu", "identity", np.float32)
    net.initialize(np.random.default_rng(0))
    opt = Adam(net.params)
    rng = np.random.default_rng(1)
    x, dy = rng.random((16, 12), dtype=np.float32), rng.standard_normal((16, 6), np.float32)
    net.forward(x)
    net.backward(dy.copy(), optimizer=opt)
    assert net._plans
    clone, clone_opt = (copy.deepcopy((net, opt)) if how == "deepcopy"
                        else pickle.loads(pickle.dumps((net, opt))))
    before = net.params.copy()
    clone.forward(x)
    clone.backward(dy.copy(), optimizer=clone_opt)
    np.testing.assert_array_equal(net.params, before)       # the original did not move
    net.forward(x)
    net.backward(dy.copy(), optimizer=opt)
    np.testing.assert_array_equal(clone.params, net.params)  # the copy took the same step
    np.testing.assert_array_equal(clone_opt.m, opt.m)
    for layer in clone.layers:                  # W and b are views of the copy's params
        assert np.shares_memory(layer.W, clone.params) and np.shares_memory(layer.b, clone.params)
    assert clone_opt.params is clone.params
    np.testing.assert_array_equal(clone.forward(x), net.forward(x))
