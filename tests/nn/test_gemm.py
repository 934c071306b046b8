"""The compiled float32 GEMM (``_ext/gemm.h``) against float64 products, and the
layers on it against the layers on ``np.matmul``."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from vaeas_np._ext import gemm
from vaeas_np.nn import MLP, layers
from vaeas_np.nn.optim import Adam

pytestmark = pytest.mark.skipif(not gemm.available(), reason="no AVX-512F GEMM in this build")


def reference(A, B, C0, bias, relu, accumulate):
    out = A.astype(np.float64) @ B.astype(np.float64)
    if accumulate:
        out += C0
    if bias is not None:
        out += bias
    return np.maximum(out, 0) if relu else out


def check_close(C, ref, A, B):
    # float32 sums of K products: error below K * eps * sum |a||b| per element
    scale = np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64) + 1.0
    assert (np.abs(C - ref) <= 4 * (A.shape[1] + 2) * 6e-8 * scale).all()


@settings(deadline=None, max_examples=60)
@given(M=st.integers(1, 70), K=st.integers(0, 90), N=st.sampled_from([1, 5, 16, 17, 31, 32, 33,
       63, 64, 65, 100, 255, 256, 257, 300]), transposed_a=st.booleans(), bias=st.booleans(),
       relu=st.booleans(), accumulate=st.booleans(), n_threads=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_sgemm_matches_float64(M, K, N, transposed_a, bias, relu, accumulate, n_threads, seed):
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((K, M), dtype=np.float32).T if transposed_a
         else rng.standard_normal((M, K), dtype=np.float32))
    B = rng.standard_normal((K, N), dtype=np.float32)
    C = rng.standard_normal((M, N), dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32) if bias else None
    ref = reference(A, B, C.astype(np.float64), b, relu, accumulate)
    gemm.sgemm(A, B, C, b, relu, accumulate, n_threads)
    check_close(C, ref, A, B)
    if relu:
        assert (C >= 0).all()


@pytest.mark.parametrize("shape", [(128, 500, 500), (500, 128, 784), (500, 128, 80),
                                   (40, 500, 128), (1, 500, 500), (300, 7, 1000)])
def test_sgemm_threads_give_the_same_bits(shape):
    """Each element is summed over k in order by one thread, whatever the split."""
    M, K, N = shape
    rng = np.random.default_rng(1)
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32)
    outs = []
    for nt in (1, 2, 3, 4):
        C = np.empty((M, N), np.float32)
        gemm.sgemm(A, B, C, b, True, False, nt)
        outs.append(C)
    for C in outs[1:]:
        np.testing.assert_array_equal(C, outs[0])
    check_close(outs[0], reference(A, B, None, b, True, False), A, B)


@pytest.mark.parametrize("N", [784, 300, 290, 273, 100, 80])
def test_sgemm_tail_kernels_give_the_same_bits(N):
    """The last strip's narrow kernel (16, 32 or 48 columns) sums each element as the wide
    one does: the tail columns of a wide product equal the same columns computed on their
    own (then by other kernels), and the full-width columns equal a product that has no
    tail."""
    rng = np.random.default_rng(N)
    M, K = 45, 130
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32)
    C = np.empty((M, N), np.float32)
    gemm.sgemm(A, B, C, b, True, False, 2)
    strip = 64 if N >= 256 else 32
    n0 = N // strip * strip
    for lo, hi in ((n0, N), (0, n0), (n0 - 16, N)):
        part = np.empty((M, hi - lo), np.float32)
        gemm.sgemm(A, np.ascontiguousarray(B[:, lo:hi]), part, b[lo:hi].copy(), True, False, 2)
        np.testing.assert_array_equal(part, C[:, lo:hi])


def test_sgemm_checks_its_arguments():
    A, B = np.ones((4, 3), np.float32), np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match="shapes do not match"):
        gemm.sgemm(A, B, np.empty((4, 4), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        gemm.sgemm(A, np.ones((2, 5), np.float32), np.empty((4, 5), np.float32))
    with pytest.raises(ValueError, match="bias must have"):
        gemm.sgemm(A, B, np.empty((4, 5), np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="n_threads"):
        gemm.sgemm(A, B, np.empty((4, 5), np.float32), n_threads=0)
    with pytest.raises(ValueError):                     # B must be C-contiguous
        gemm.sgemm(A, np.ones((5, 3), np.float32).T, np.empty((4, 5), np.float32))
    with pytest.raises((ValueError, TypeError)):        # float32 only
        gemm.sgemm(A.astype(np.float64), B, np.empty((4, 5), np.float32))


def mlp_pair(sizes, act, sparse=False):
    nets = []
    for _ in range(2):
        net = MLP(sizes, act, "identity", dtype=np.float32, sparse_input=sparse)
        net.initialize(np.random.default_rng(0))
        nets.append(net)
    return nets


@settings(deadline=None, max_examples=60)
@given(M=st.integers(1, 140), K=st.integers(0, 60), N=st.sampled_from([1, 15, 16, 17, 33, 64,
       65, 255, 256, 257, 300]), transposed_a=st.booleans(), n_threads=st.integers(1, 3),
       step=st.integers(1, 4), scale=st.sampled_from([1.0, -1.0 / 128]),
       seed=st.integers(0, 2**32 - 1))
@example(M=130, K=128, N=300, transposed_a=True, n_threads=2, step=3, scale=-1.0 / 128,
         seed=1)                              # rows split between the threads (M >= 64)
@example(M=63, K=20, N=257, transposed_a=False, n_threads=3, step=1, scale=1.0, seed=2)
def test_sgemm_adam_equals_sgemm_then_adam_step(M, K, N, transposed_a, n_threads, step, scale,
                                                seed):
    """Adam applied in the GEMM's epilogue: the same bits as writing the gradient with
    sgemm and passing it to the fused Adam pass (one update routine, adam.h), moments
    below the smallest normal float flushed alike."""
    from vaeas_np._ext import optim
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((K, M), dtype=np.float32).T if transposed_a
         else rng.standard_normal((M, K), dtype=np.float32))
    B = rng.standard_normal((K, N), dtype=np.float32)
    P = rng.standard_normal((M, N), dtype=np.float32)
    m = rng.standard_normal((M, N), dtype=np.float32) * 1e-2
    v = rng.random((M, N), dtype=np.float32) * 1e-4
    m.reshape(-1)[::5] = 1e-39                      # decays into subnormals: flushed
    v.reshape(-1)[::7] = 0
    args = (1e-3, 0.9, 0.999, 1e-8, step)
    P1, m1, v1, m0 = P.copy(), m.copy(), v.copy(), m.copy()
    G = np.empty((M, N), np.float32)
    gemm.sgemm(A, B, G, None, False, False, 1)
    optim.adam_step(P1.reshape(-1), G.reshape(-1), m1.reshape(-1), v1.reshape(-1), *args,
                    1, scale)
    gemm.sgemm_adam(A, B, P, m, v, *args, scale, n_threads)
    for got, want in ((P, P1), (m, m1), (v, v1)):
        np.testing.assert_array_equal(got, want)
    assert (m != m0).any()                                  # the moments were updated


def test_sgemm_adam_checks_its_arguments():
    A, B = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
    P, m, v = (np.zeros((3, 5), np.float32) for _ in range(3))
    args = (1e-3, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match="P must be"):
        gemm.sgemm_adam(A, B, np.zeros((5, 3), np.float32), m, v, *args, 1)
    with pytest.raises(ValueError, match="m and v"):
        gemm.sgemm_adam(A, B, P, m, np.zeros((3, 4), np.float32), *args, 1)
    with pytest.raises(ValueError, match="step counts from 1"):
        gemm.sgemm_adam(A, B, P, m, v, *args, 0)
    with pytest.raises(ValueError, match="n_threads"):
        gemm.sgemm_adam(A, B, P, m, v, *args, 1, 1.0, 0)
    opt = Adam(np.zeros(20, np.float32))
    with pytest.raises(RuntimeError, match="advance"):
        opt.step_slice_gemm(0, A, B)
    opt.advance()
    with pytest.raises(ValueError, match="does not fit"):
        opt.step_slice_gemm(10, A, B)


def test_mlp_training_step_applies_adam_in_the_gemm(monkeypatch):
    """On the training path every dense layer's W takes its step in the weight-gradient
    GEMM (not through the gradient scratch); the sparse first layer keeps the scratch."""
    calls = []
    real = Adam.step_slice_gemm
    monkeypatch.setattr(layers, "FUSED_BACKWARD", False)    # the layer-by-layer calls

    def counting(self, start, a, b, *args, **kw):
        calls.append((start, a.shape[0], b.shape[1]))
        return real(self, start, a, b, *args, **kw)
    monkeypatch.setattr(Adam, "step_slice_gemm", counting)
    net = MLP((784, 500, 500, 80), "relu", "identity", np.float32, sparse_input=True)
    net.initialize(np.random.default_rng(0))
    opt = Adam(net.params)
    rng = np.random.default_rng(1)
    x = (rng.random((128, 784)) < 0.13).astype(np.float32)
    net.forward(x)
    before = net.params.copy()
    net.backward(rng.standard_normal((128, 80), dtype=np.float32), need_input_grad=False,
                 optimizer=opt)
    assert sorted(calls) == sorted([(net._offsets[2], 500, 80), (net._offsets[1], 500, 500)])
    for i, layer in enumerate(net.layers):      # every layer's W and b moved
        k = layer.n_in * layer.n_out
        w0 = before[net._offsets[i]:net._offsets[i] + k].reshape(layer.W.shape)
        b0 = before[net._offsets[i] + k:net._offsets[i] + layer.n_params]
        assert (layer.W != w0).mean() > 0.5 and (layer.b != b0).mean() > 0.5


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("sizes,batch", [((784, 500, 500, 80), 128), ((40, 500, 500, 784), 128),
                                         ((30, 300, 20, 7), 33), ((5, 260, 3), 300)])
def test_mlp_on_own_gemm_matches_numpy_path(monkeypatch, sizes, batch, act):
    """Forward, input gradient and parameter gradients of a float32 MLP on the compiled
    GEMM (bias and ReLU in its epilogue, weight gradients from x^T in place, input
    gradients transposed) against the same network on np.matmul, and both against
    float64."""
    rng = np.random.default_rng(2)
    x = rng.random((batch, sizes[0])).astype(np.float32)
    dy = rng.normal(size=(batch, sizes[-1])).astype(np.float32)
    out = {}
    for own in (True, False):
        monkeypatch.setattr(layers, "OWN_GEMM", own)
        net = mlp_pair(sizes, act)[0]
        y = net.forward(x).copy()
        dx = net.backward(dy.copy()).copy()
        out[own] = (y, dx, net.grads.copy())
    net64 = mlp_pair(sizes, act)[0].astype(np.float64)
    y64 = net64.forward(x.astype(np.float64)).copy()
    dx64 = net64.backward(dy.astype(np.float64)).copy()
    for got, ref in zip(out[True], (y64, dx64, net64.grads)):
        np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4 * np.abs(ref).max())
    for a, b in zip(out[True], out[False]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * np.abs(b).max())


def test_mlp_training_steps_on_own_gemm_track_numpy_path(monkeypatch):
    """Ten Adam steps of the MNIST decoder's shapes inside the backward (the training
    path: transposed gradients kept masked in place, no zeroed scratch) stay within
    float32 rounding of the same steps on np.matmul."""
    sizes = (40, 500, 500, 784)
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(128, 40)).astype(np.float32) for _ in range(10)]
    dys = [rng.normal(size=(128, 784)).astype(np.float32) * 0.01 for _ in range(10)]
    params = {}
    for own in (True, False):
        monkeypatch.setattr(layers, "OWN_GEMM", own)
        net = mlp_pair(sizes, "relu")[0]
        opt = Adam(net.params, lr=1e-3)
        for x, dy in zip(xs, dys):
            net.forward(x)
            net.backward(dy.copy(), need_input_grad=True, optimizer=opt)
        params[own] = net.params.copy()
    start = mlp_pair(sizes, "relu")[0].params
    moved = np.linalg.norm(params[False] - start)
    assert moved > 0.1                                        # the steps did move them
    # Adam divides by sqrt(v): a gradient near 0 rounded to the other sign moves its
    # weight by lr either way, so compare the whole update, not each element
    apart = np.linalg.norm(params[True] - params[False])
    assert apart < 1e-3 * moved, (apart, moved)


def test_switched_off_by_environment():
    code = "from vaeas_np.nn import layers; print(layers.OWN_GEMM)"
    for value, expect in (("0", "False"), ("1", "True")):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "VAEAS_NP_OWN_GEMM": value})
        assert r.stdout.strip() == expect, r.stderr


def product(A, B, P0, adam, n_threads, steps=(1,), scale=1.0):
    """``A @ B`` by ``gemm.sgemm``, or (``adam``) P0's Adam steps ``steps`` with the gradient
    ``scale * A @ B`` by ``gemm.sgemm_adam``, as one array (P, m and v stacked)."""
    if not adam:
        C = np.empty((A.shape[0], B.shape[1]), np.float32)
        gemm.sgemm(A, B, C, None, False, False, n_threads)
        return C
    P, m, v = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for step in steps:
        gemm.sgemm_adam(A, B, P, m, v, 1e-3, 0.9, 0.999, 1e-8, step, scale, n_threads)
    return np.concatenate([P, m, v])


@settings(deadline=None, max_examples=40)
@given(M=st.integers(1, 300), K=st.integers(1, 200), N=st.sampled_from([1, 16, 40, 64, 100,
       300, 784]), transposed_a=st.booleans(), n_threads=st.sampled_from([2, 3, 5, 8]),
       adam=st.booleans(), seed=st.integers(0, 2**32 - 1))
@example(M=128, K=500, N=784, transposed_a=False, n_threads=2, adam=False, seed=0)
@example(M=500, K=128, N=500, transposed_a=True, n_threads=3, adam=True, seed=1)
def test_balanced_split_gives_the_same_bits(M, K, N, transposed_a, n_threads, adam, seed):
    """Threads that finish their share take units left in the others' (in whatever order
    the race gives): the same bits as one thread, and as the fixed equal shares."""
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((K, M), dtype=np.float32).T if transposed_a
         else rng.standard_normal((M, K), dtype=np.float32))
    B = rng.standard_normal((K, N), dtype=np.float32)
    P0 = rng.standard_normal((M, N), dtype=np.float32)
    outs = []
    try:
        for balanced, nt in ((1, 1), (1, n_threads), (0, n_threads), (1, n_threads)):
            gemm._set_balanced(balanced)
            outs.append(product(A, B, P0, adam, nt))
    finally:
        gemm._set_balanced(1)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    if not adam:
        check_close(outs[0], reference(A, B, None, None, False, False), A, B)


@settings(deadline=None, max_examples=40)
@given(M=st.integers(1, 200), K=st.integers(1, 300), N=st.sampled_from([1, 40, 128, 200, 256,
       300, 512]), n_threads=st.integers(1, 3), adam=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
@example(M=500, K=128, N=500, n_threads=2, adam=True, seed=0)
@example(M=512, K=256, N=512, n_threads=3, adam=True, seed=1)
@example(M=130, K=257, N=512, n_threads=2, adam=True, seed=2)   # K over the pack limit
@example(M=300, K=16, N=1000, n_threads=1, adam=False, seed=3)
def test_packed_transposed_a_gives_the_same_bits(M, K, N, n_threads, adam, seed):
    """A transposed A (a weight gradient's x^T) is copied panel by panel into rows before
    the product where the GEMM cuts C into row panels: the same values summed in the
    same order, so the same bits as reading A in place, and close to float64."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, M), dtype=np.float32).T
    B = rng.standard_normal((K, N), dtype=np.float32)
    P0 = rng.standard_normal((M, N), dtype=np.float32)
    outs, packed = [], []
    try:
        for on in (0, 1):
            gemm._set_pack(on)
            before = gemm._packed_panels()
            outs.append(product(A, B, P0, adam, n_threads, steps=(1, 2), scale=0.5))
            packed.append(gemm._packed_panels() - before)
    finally:
        gemm._set_pack(1)
    assert packed[0] == 0
    # row panels (Adam's from 64 rows, else when A is the larger operand), K within the
    # buffer, at least 4 strips of 64 (N >= 128) or 32 columns, A read across its rows:
    # then panels were packed
    wide = N >= 128
    strips = -(-N // (64 if wide else 32))
    # (K = 1: the array A is also contiguous, and its buffer says so)
    if ((adam and M >= 64) or M > N) and 1 < K <= 256 and strips >= 4:
        assert packed[1] > 0
    np.testing.assert_array_equal(outs[1], outs[0])
    if not adam:
        check_close(outs[1], reference(A, B, None, None, False, False), A, B)


def test_packing_in_the_fused_backward_gives_the_same_bits():
    """The compiled backward's copy of the GEMM packs too (its weight gradients): the
    same parameters after training steps with and without packing."""
    from vaeas_np._ext import backprop
    if not backprop.available():
        pytest.skip("no fused backward in this build")
    rng = np.random.default_rng(5)
    xs = [rng.normal(size=(128, 64)).astype(np.float32) for _ in range(3)]
    dys = [rng.normal(size=(128, 512)).astype(np.float32) * 0.01 for _ in range(3)]
    params, packed = [], []
    try:
        for on in (0, 1):
            backprop._set_pack(on)
            gemm._set_pack(on)
            before = backprop._packed_panels()
            net = MLP((64, 512, 300, 512), "relu", "identity", np.float32)
            net.params[:] = np.random.default_rng(6).normal(
                size=net.params.size).astype(np.float32) * 0.05
            opt = Adam(net.params, lr=1e-3)
            for x, dy in zip(xs, dys):
                net.forward(x)
                net.backward(dy.copy(), need_input_grad=True, optimizer=opt)
            params.append(np.concatenate([net.params, opt.m, opt.v]))
            packed.append(backprop._packed_panels() - before)
    finally:
        backprop._set_pack(1)
        gemm._set_pack(1)
    assert packed[0] == 0 and packed[1] > 0
    np.testing.assert_array_equal(params[1], params[0])


@settings(deadline=None, max_examples=30)
@given(M=st.integers(1, 150), K=st.integers(1, 80), N=st.sampled_from([1000, 1024, 2048]),
       transposed_a=st.booleans(), n_threads=st.integers(1, 3), adam=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
@example(M=130, K=64, N=1024, transposed_a=True, n_threads=2, adam=True, seed=0)
@example(M=200, K=50, N=2048, transposed_a=False, n_threads=3, adam=False, seed=1)
def test_packed_b_strips_give_the_same_bits(M, K, N, transposed_a, n_threads, adam, seed):
    """Where B's rows are a multiple of 4 KB apart (N = 1024, 2048) each strip is copied
    into consecutive rows before its blocks read it: the same bits as reading B in
    place, and close to float64 (N = 1000: nothing packed)."""
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((K, M), dtype=np.float32).T if transposed_a
         else rng.standard_normal((M, K), dtype=np.float32))
    B = rng.standard_normal((K, N), dtype=np.float32)
    P0 = rng.standard_normal((M, N), dtype=np.float32)
    outs, packed = [], []
    try:
        for on in (0, 1):
            gemm._set_pack_b(on)
            before = gemm._packed_b_strips()
            outs.append(product(A, B, P0, adam, n_threads))
            packed.append(gemm._packed_b_strips() - before)
    finally:
        gemm._set_pack_b(1)
    assert packed[0] == 0
    assert (packed[1] > 0) == (N % 1024 == 0)
    np.testing.assert_array_equal(outs[1], outs[0])
    if not adam:
        check_close(outs[1], reference(A, B, None, None, False, False), A, B)
