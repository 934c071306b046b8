"""Dense layers and MLP stacks with hand-written backprop.

All parameters of an :class:`MLP` live in one flat vector ``params`` (and their
gradients in ``grads``); each layer's ``W`` and ``b`` are views into it, so an
optimizer is one fused pass over one array and a finite-difference test is
one loop.  Forward keeps each layer's output for backward; work buffers are
allocated once per batch size and reused, so the training path allocates
nothing per step.
"""
import numpy as np

from .._ext import backprop as _backprop
from .._ext import fused as _fused
from .._ext import gemm as _gemm
from .._threads import env_switched_off
from . import _blas
from ..errors import InvalidParameterError
from .activations import ACTIVATIONS, DERIVATIVES
from .sparse_input import MAX_DENSITY, SparseRows

#: initialisation per activation: He (Kaiming) normal for ReLU, Glorot uniform otherwise
INIT = {"relu": "he", "identity": "glorot", "tanh": "glorot", "sigmoid": "glorot"}


#: A layer's input gradient is computed as its transpose, dx^T = W delta^T, then put
#: back in rows by the compiled core (with the next layer's ReLU derivative in the
#: same pass), when the batch is at most this and the layer has at least
#: ``TRANSPOSED_MIN_INPUTS`` inputs.  OpenBLAS runs that GEMM faster than
#: dx = delta W^T at these shapes: 2 threads, batch 128, 500 x 500: 0.375 against
#: 0.423 ms; 784 x 500: 0.553 against 0.641 ms; 500 x 80: 0.075 against 0.146 ms;
#: but slower with few inputs (40 x 500: 0.096 against 0.052 ms; 100 x 500) or large
#: batches (512 x 500 x 500: 1.86 against 1.47 ms).
TRANSPOSED_MAX_BATCH = 256
TRANSPOSED_MIN_INPUTS = 256


#: float32 layers run their forward (with the bias and ReLU in the GEMM's epilogue), their
#: weight gradients and their (transposed) input gradients on the compiled GEMM
#: (``_ext/gemm.h``) where it is built (AVX-512F); ``VAEAS_NP_OWN_GEMM=0`` in the
#: environment keeps ``np.matmul``.  Same
#: function, rounded differently (each element summed over k in order, one rounding
#: per multiply-add).
OWN_GEMM = _gemm.available() and not env_switched_off("VAEAS_NP_OWN_GEMM")

#: A float32 MLP's training backward on the compiled GEMM runs as one compiled call
#: (``_ext/backprop.h``: every layer's backward and Adam step in one OpenMP region, no
#: Python between them) for the layers where :meth:`MLP.backward` would take that path
#: anyway; the same bits.  ``VAEAS_NP_FUSED_BACKWARD=0`` in the environment (or
#: :func:`set_fused_backward`) keeps the layer-by-layer calls.
FUSED_BACKWARD = False


def set_fused_backward(on):
    """Switch the one-call backward (:data:`FUSED_BACKWARD`) on or off at run time (for
    A/B measurements and tests); it stays off where it is not built."""
    global FUSED_BACKWARD
    FUSED_BACKWARD = bool(on) and OWN_GEMM and _backprop.available()


set_fused_backward(not env_switched_off("VAEAS_NP_FUSED_BACKWARD"))


_F32 = np.dtype(np.float32)


def own_gemm(b, c):
    """True when the compiled GEMM takes these arrays as its B and C operands
    (float32, 2-d, C-contiguous; its A may have any strides)."""
    return (OWN_GEMM and b.dtype == _F32 and c.dtype == _F32 and b.ndim == 2 and c.ndim == 2
            and b.flags.c_contiguous and c.flags.c_contiguous)


def transposed_input_grad(batch, n_in, dtype):
    """True when :meth:`MLP.backward` computes a layer's input gradient transposed
    (with the compiled GEMM: every layer's, at these batch sizes)."""
    dtype = np.dtype(dtype)
    return (batch <= TRANSPOSED_MAX_BATCH and dtype in (np.float32, np.float64)
            and (n_in >= TRANSPOSED_MIN_INPUTS or (OWN_GEMM and dtype == np.float32)))


class Dense:
    """``y = act(x @ W + b)`` with ``W`` of shape (n_in, n_out).

    ``W``, ``b``, ``grad_W``, ``grad_b`` are views set by the owner (:class:`MLP`).
    """

    def __init__(self, n_in, n_out, activation="identity"):
        if activation not in ACTIVATIONS:
            raise InvalidParameterError(
                f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.n_in, self.n_out, self.activation = n_in, n_out, activation
        self._act = ACTIVATIONS[activation]
        self._dact = DERIVATIVES[activation]

    @property
    def n_params(self):
        return self.n_in * self.n_out + self.n_out

    def bind(self, params, grads):
        """Make W, b (and their gradients) views of flat slices of length ``n_params``."""
        k = self.n_in * self.n_out
        self.W = params[:k].reshape(self.n_in, self.n_out)
        self.b = params[k:]
        self.grad_W = grads[:k].reshape(self.n_in, self.n_out)
        self.grad_b = grads[k:]

    def initialize(self, rng, scheme=None):
        scheme = scheme or INIT[self.activation]
        if scheme == "he":
            self.W[...] = rng.standard_normal(self.W.shape) * np.sqrt(2.0 / self.n_in)
        elif scheme == "glorot":
            limit = np.sqrt(6.0 / (self.n_in + self.n_out))
            self.W[...] = rng.uniform(-limit, limit, self.W.shape)
        else:
            raise InvalidParameterError(f"unknown initialisation {scheme!r}")
        self.b[...] = 0

    def forward(self, x, out, n_threads=1, x_rows=None):
        """out = act(x @ W + b); returns ``out`` (kept by the caller for backward).

        ``x_rows``: the same ``x`` as :class:`SparseRows` (then x @ W reads only the
        rows of W that x uses).
        """
        if x_rows is not None:
            x_rows.matmul(self.W, out, n_threads)
        elif x.ndim == 2 and x.dtype == np.float32 and own_gemm(self.W, out):
            # x @ W + b (and ReLU) in one pass of the compiled GEMM
            relu = self.activation == "relu"
            _gemm.sgemm(x, self.W, out, self.b, relu, False, n_threads)
            return out if self.activation in ("relu", "identity") else self._act(out)
        else:
            np.matmul(x, self.W, out=out)
        if out.flags.c_contiguous:
            # bias (and ReLU) fused in one pass of the compiled core
            _fused.bias_act(out, self.b, self.activation == "relu", n_threads)
            return out if self.activation in ("relu", "identity") else self._act(out)
        out += self.b
        return self._act(out)

    def backward(self, x, y, delta, dx=None, n_threads=1, x_rows=None, grad_W=None,
                 grad_b=None, dx_t=None, pre_activation=False, grad_W_zeroed=False,
                 delta_t=None, delta_t_ready=False, weight_step=None):
        """Backprop through the layer.

        x: the layer's input, y: its output (from forward), delta: dL/dy (modified
        in place into dL/d(pre-activation)), or already dL/d(pre-activation) when
        ``pre_activation``.  Writes grad_W, grad_b (or the buffers ``grad_W``,
        ``grad_b`` when given); returns dL/dx in ``dx`` when given, or its
        transpose (n_in, B) in ``dx_t`` when that is given instead.
        ``x_rows``: as in :meth:`forward`.  ``grad_W_zeroed``: ``grad_W`` holds zeros,
        so the weight gradient may be accumulated into it (``C += A^T B`` through
        numpy's OpenBLAS, which skips the zeroing pass of ``np.matmul``).
        ``delta_t``: an (n_out, B) buffer for dL/d(pre-activation) transposed, which
        the compiled GEMM needs for ``dx_t = W delta^T``; it already holds it when
        ``delta_t_ready``, else it is written here.
        ``weight_step``: ``f(a, b)`` that applies the optimizer's step to W with the
        gradient ``a @ b`` (:meth:`~vaeas_np.nn.optim.Adam.step_slice_gemm`), called
        with ``(x^T, dL/da)`` after the input gradient has used W; grad_W is then not
        written.  Only where :meth:`fuses_weight_step` says so.
        """
        grad_W = self.grad_W if grad_W is None else grad_W
        grad_b = self.grad_b if grad_b is None else grad_b
        if pre_activation:
            pass
        elif self.activation == "relu" and delta.flags.c_contiguous and y.flags.c_contiguous:
            _fused.relu_backward(y, delta, n_threads)  # dL/da = dL/dy * 1[a > 0]
        else:
            self._dact(y, delta)                  # dL/da = dL/dy * act'(a)
        if weight_step is not None:
            pass                                  # applied below, after dL/dx
        elif x_rows is not None:
            x_rows.t_matmul(delta, grad_W, n_threads)
        elif x.dtype == np.float32 and own_gemm(delta, grad_W):
            _gemm.sgemm(x.T, delta, grad_W, None, False, False, n_threads)  # x^T dL/da
        elif (grad_W_zeroed and self.n_in > 1 and self.n_out > 1
              and x.dtype == delta.dtype == grad_W.dtype
              and x.flags.c_contiguous and delta.flags.c_contiguous
              and grad_W.flags.c_contiguous and _blas.available(grad_W.dtype)):
            # dL/dW = 0 + x^T dL/da: the same GEMM call as np.matmul's, so the same
            # bits (numpy uses gemv, not gemm, for a single row or column)
            _blas.add_at_b(x, delta, grad_W)
        else:
            np.matmul(x.T, delta, out=grad_W)     # dL/dW = x^T dL/da
        np.add.reduce(delta, axis=0, out=grad_b)  # dL/db = sum_batch dL/da (np.sum's call)
        if dx_t is not None:                      # (dL/dx)^T = W (dL/da)^T
            if delta_t is not None and own_gemm(delta_t, dx_t):
                if not delta_t_ready:
                    _fused.transpose_relu_backward(delta, delta_t, None, n_threads)
                _gemm.sgemm(self.W, delta_t, dx_t, None, False, False, n_threads)
            else:
                np.matmul(self.W, delta.T, out=dx_t)
            dx = dx_t
        elif dx is not None:
            np.matmul(delta, self.W.T, out=dx)    # dL/dx = dL/da W^T
        if weight_step is not None:
            weight_step(x.T, delta)               # W moves only now
        return dx

    def fuses_weight_step(self, x, delta, x_rows=None):
        """True when :meth:`backward` can take ``weight_step`` for these arrays: float32
        on the compiled GEMM, a dense input (x^T any strides), dL/dy C-contiguous."""
        return (x_rows is None and x.ndim == 2 and x.dtype == np.float32
                and own_gemm(delta, self.W))


class MLP:
    """A stack of Dense layers: ``sizes = (n_in, h1, ..., n_out)``.

    Hidden layers use ``activation``; the last layer ``output_activation``.
    ``sparse_input``: when a batch's input is mostly zeros (at most
    :data:`~vaeas_np.nn.sparse_input.MAX_DENSITY` nonzeros, e.g. binarised
    images), the first layer's forward and weight gradient skip the zeros
    (:class:`~vaeas_np.nn.sparse_input.SparseRows`); the same function, rounded
    differently.
    """

    def __init__(self, sizes, activation="relu", output_activation="identity",
                 dtype=np.float32, sparse_input=False):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise InvalidParameterError(f"layer sizes must be >= 1, got {sizes}")
        self.sizes, self.dtype = sizes, np.dtype(dtype)
        acts = [activation] * (len(sizes) - 2) + [output_activation]
        self.layers = [Dense(a, b, act) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
        n = sum(layer.n_params for layer in self.layers)
        self.params = np.zeros(n, dtype=self.dtype)
        self.grads = np.zeros(n, dtype=self.dtype)
        self._bind()
        self._buffers = {}
        self.sparse_input = bool(sparse_input)
        self._rows = {}             # batch size -> SparseRows work buffers
        self._x_rows = None
        self._transposed_flags = {}     # (batch, need_input_grad) -> per layer, see backward
        self._plans = {}                # (batch, need_input_grad, optimizer) -> compiled backward
        self.n_threads = 1          # threads of the fused kernels (the owner sets it)

    def __getstate__(self):
        """Copies and pickles leave out the compiled backward plans (pointers into this
        MLP's own arrays); the copy builds its own on first use."""
        state = self.__dict__.copy()
        state["_plans"] = {}
        return state

    def __setstate__(self, state):
        """A copy's layers get their W and b as views of the copy's ``params`` again
        (copying and pickling turn views into separate arrays)."""
        self.__dict__.update(state)
        self._bind()

    def _bind(self):
        o = 0
        self._offsets = []
        for layer in self.layers:
            k = layer.n_params
            layer.bind(self.params[o:o + k], self.grads[o:o + k])
            self._offsets.append(o)
            o += k
        self._grad_scratch = None
        self._grad_scratch_zero = False
        self._dx_t_scratch = None

    def initialize(self, rng):
        for layer in self.layers:
            layer.initialize(rng)

    def _buffers_for(self, batch):
        buf = self._buffers.get(batch)
        if buf is None:
            outs = [np.empty((batch, s), self.dtype) for s in self.sizes[1:]]
            deltas = [np.empty((batch, s), self.dtype) for s in self.sizes[:-1]]
            buf = self._buffers[batch] = (outs, deltas)
            if len(self._buffers) > 8:  # evaluation with many batch sizes: keep it bounded
                self._buffers.pop(next(iter(self._buffers)))
        return buf

    def _sparse_rows(self, x, side=None):
        """``x`` as SparseRows when the sparse path applies to it, else None (``side``
        runs in either case: see :meth:`forward`)."""
        if not (self.sparse_input and x.dtype == self.dtype and x.flags.c_contiguous):
            if side is not None:
                side()
            return None
        rows = self._rows.get(x.shape[0])
        if rows is None:
            rows = self._rows[x.shape[0]] = SparseRows(x.shape[0], x.shape[1], self.dtype)
            if len(self._rows) > 2:     # training and one evaluation batch size
                self._rows.pop(next(iter(self._rows)))
        return rows if rows.load(x, self.n_threads, side) <= MAX_DENSITY else None

    def forward(self, x, side=None):
        """Returns the output (an internal buffer, valid until the next forward).

        ``side``: a :class:`vaeas_np._ext.noise.NormalFill` (a draw from a generator into
        an array) to run during the forward, on one thread of the sparse first layer's
        input loading while the others build the rows (the training step's noise: it
        then leaves the serial path), or first where that does not run; the numbers
        are those of the generator's own call either way.
        """
        outs = self._buffers_for(x.shape[0])[0]
        self._x = x
        self._x_rows = self._sparse_rows(x, side)
        h = x
        for i, (layer, out) in enumerate(zip(self.layers, outs)):
            h = layer.forward(h, out, self.n_threads, self._x_rows if i == 0 else None)
        self._outs = outs
        return h

    def backward(self, dy, need_input_grad=True, optimizer=None, scale=1.0):
        """dy: dL/d(output) (modified in place). Writes ``grads``; returns dL/dx.

        With ``optimizer`` (an :class:`~vaeas_np.nn.optim.Adam` over ``params``) the
        step is taken during the backward instead: each layer's gradient goes to
        one scratch buffer the size of the largest layer and is applied
        (``optimizer.step_slice(..., scale=scale)``) as soon as the layer has also
        passed its input gradient down, so every layer's input gradient still uses
        the weights of the forward.  ``grads`` is not written.  The parameters come
        out the same as from ``backward`` then ``optimizer.step(grads, scale=scale)``;
        the step no longer writes and re-reads a gradient the size of the network
        (8 MB for the MNIST VAE), which made the MNIST training steps 1-2 % faster
        (bench/RESULTS.md, seventh round).  Adam zeroes that scratch as it reads it,
        so the next layer's weight gradient is accumulated into zeros through numpy's
        OpenBLAS (:mod:`vaeas_np.nn._blas`), skipping the zeroing pass of a beta = 0
        GEMM.  On the compiled GEMM (float32, AVX-512) a dense layer's W does not pass
        through the scratch at all: its step is applied in the weight-gradient GEMM's
        epilogue (:meth:`~vaeas_np.nn.optim.Adam.step_slice_gemm`, the same bits),
        after the layer's input gradient has used the forward's W.

        Layers with many inputs, at training batch sizes (:func:`transposed_input_grad`),
        compute their input gradient as its transpose, dx^T = W delta^T, which OpenBLAS
        runs faster; the compiled core puts it back in rows and applies the ReLU
        derivative of the layer below in the same pass (eighth round in RESULTS).
        """
        _, deltas = self._buffers_for(dy.shape[0])
        outs = self._outs
        delta = dy
        own = OWN_GEMM and self.dtype == np.float32
        # the compiled GEMM writes weight gradients over whatever the scratch holds;
        # numpy's OpenBLAS adds them into zeros that Adam leaves behind
        zeroed = not own
        if optimizer is not None:
            optimizer.advance()
            if self._grad_scratch is None:
                self._grad_scratch = np.zeros(max(l.n_params for l in self.layers),
                                              self.dtype)
                self._grad_scratch_zero = True
            if zeroed and not self._grad_scratch_zero:  # a backward stopped half-way
                self._grad_scratch.fill(0)
                self._grad_scratch_zero = True
        batch = dy.shape[0]
        masked = False          # delta is already dL/d(pre-activation)
        delta_t = None          # ... and also in delta_t, transposed (the compiled GEMM's)
        slot = 0                # which of the two transposed scratch buffers dx_t takes
        top = len(self.layers) - 1
        planned = (self._backward_plan(batch, need_input_grad, optimizer)
                   if optimizer is not None and own and FUSED_BACKWARD else None)
        if planned is not None:
            plan, (lo, below_masked, keep_t, plan_slot) = planned
            x_bottom = self._x if lo == 0 else outs[lo - 1]
            if (x_bottom.dtype == np.float32 and x_bottom.ndim == 2
                    and x_bottom.flags.c_contiguous and dy.dtype == np.float32
                    and dy.flags.c_contiguous and dy.shape == outs[top].shape):
                if self.layers[top].activation == "relu":   # as Dense.backward does
                    _fused.relu_backward(outs[top], dy, self.n_threads)
                plan.run(dy, x_bottom, optimizer.lr, optimizer.beta1, optimizer.beta2,
                         optimizer.eps, optimizer.step_count, scale, self.n_threads)
                # the loop goes on below the plan's layers, in the state they left
                masked, slot = below_masked, plan_slot
                delta = deltas[lo] if lo > 0 or need_input_grad else None
                delta_t = self._dx_t_for(batch, self.layers[lo].n_in, 1 - slot) \
                    if keep_t else None
                top = lo - 1
        for i in range(top, -1, -1):
            layer = self.layers[i]
            x_in = self._x if i == 0 else outs[i - 1]
            dx = deltas[i] if (i > 0 or need_input_grad) else None
            dx_t = dt = None
            if self._transposed(i, batch, need_input_grad):
                dx_t = self._dx_t_for(batch, layer.n_in, slot)
                if own:     # the top layer's delta is transposed into the other buffer
                    dt = delta_t if delta_t is not None else \
                        self._dx_t_for(batch, layer.n_out, 1 - slot)
            x_rows = self._x_rows if i == 0 else None
            gW = gb = step_W = None
            if optimizer is not None:
                g = self._grad_scratch[:layer.n_params]
                k = layer.n_in * layer.n_out
                gW, gb = g[:k].reshape(layer.n_in, layer.n_out), g[k:]
                self._grad_scratch_zero = False     # until Adam has read (and zeroed) g
                if own and layer.fuses_weight_step(x_in, delta, x_rows):
                    # W's step in the weight-gradient GEMM's epilogue; the bias's below
                    def step_W(a, b, start=self._offsets[i]):
                        optimizer.step_slice_gemm(start, a, b, self.n_threads, scale)
            layer.backward(x_in, outs[i], delta, None if dx_t is not None else dx,
                           self.n_threads, x_rows, gW, gb,
                           dx_t=dx_t, pre_activation=masked,
                           grad_W_zeroed=zeroed and gW is not None,
                           delta_t=dt, delta_t_ready=delta_t is not None,
                           weight_step=step_W)
            if optimizer is not None:
                # Adam zeroes the scratch as it reads it: the next layer's weight
                # gradient is accumulated into zeros (no zeroing pass in the GEMM)
                if step_W is None:
                    optimizer.step_slice(self._offsets[i], g, self.n_threads, scale,
                                         zero_grads=zeroed)
                else:
                    optimizer.step_slice(self._offsets[i] + k, gb, self.n_threads, scale,
                                         zero_grads=zeroed)
                self._grad_scratch_zero = zeroed
            masked = False
            delta_t = None
            if dx_t is not None:
                # back in rows; the ReLU derivative of the layer below in the same pass;
                # kept transposed (masked in place) when the layer below needs it so
                below = self.layers[i - 1].activation if i > 0 else None
                keep = (own and below in ("relu", "identity")
                        and self._transposed(i - 1, batch, need_input_grad))
                _fused.transpose_relu_backward(dx_t, dx, outs[i - 1] if below == "relu" else None,
                                               self.n_threads, True, dx_t if keep else None)
                masked = below == "relu"
                if keep:
                    delta_t, slot = dx_t, 1 - slot
            delta = dx
        return delta

    def _backward_plan(self, batch, need_input_grad, optimizer):
        """``(plan, state)``: the compiled backward (``_ext/backprop.pyx``) of the top
        layers that :meth:`backward` would run on the compiled GEMM with Adam in the
        epilogue, for this batch size, and the loop's state after them (lowest layer
        done, whether ``deltas[lo]`` is already masked, whether the masked dx^T was kept,
        the transposed-scratch slot); None when not even the top layer qualifies.
        Built once per (batch, need_input_grad, optimizer) and kept."""
        key = (batch, need_input_grad, id(optimizer))
        cached = self._plans.get(key)
        if (cached is not None and cached[0] is optimizer and cached[2] is self._dx_t_scratch
                and cached[3] is self._buffers.get(batch)):
            return cached[1]
        if (self.dtype != np.float32 or optimizer.params is not self.params
                or any(l.activation not in ("relu", "identity") for l in self.layers)):
            return None
        outs, deltas = self._buffers_for(batch)
        layers, slot, delta_t_ready = [], 0, False
        keep = False
        lo = len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == 0 and self.sparse_input:        # the sparse first layer: Python's path
                break
            transposed = self._transposed(i, batch, need_input_grad)
            if not transposed and not (i == 0 and not need_input_grad):
                break
            if layer.n_out == 1:    # np.add.reduce sums a single column pairwise, not in order
                break
            o, k = self._offsets[i], layer.n_in * layer.n_out
            m, v = optimizer.m[o:o + layer.n_params], optimizer.v[o:o + layer.n_params]
            dx_t = self._dx_t_for(batch, layer.n_in, slot) if transposed else None
            dt = self._dx_t_for(batch, layer.n_out, 1 - slot)
            below = self.layers[i - 1].activation if i > 0 else None
            keep = bool(transposed and below in ("relu", "identity")
                        and self._transposed(i - 1, batch, need_input_grad))
            layers.append(dict(
                x=outs[i - 1] if i > 0 else np.zeros((batch, layer.n_in), np.float32),
                W=layer.W, mW=m[:k].reshape(layer.W.shape), vW=v[:k].reshape(layer.W.shape),
                b=layer.b, mb=m[k:], vb=v[k:],
                delta=outs[i] if i == len(self.layers) - 1 else deltas[i + 1],
                delta_t=dt, delta_t_ready=delta_t_ready,
                gb=np.empty(layer.n_out, np.float32), dx_t=dx_t,
                dx=deltas[i] if transposed else None,
                y_below=outs[i - 1] if below == "relu" and transposed else None,
                keep_t=keep))
            lo = i
            delta_t_ready = keep
            if keep:
                slot = 1 - slot
        if not layers:
            return None
        plan = _backprop.BackwardPlan(len(layers), batch)
        for l, kw in enumerate(layers):
            plan.set_layer(l, **kw)
        below_lo = self.layers[lo - 1].activation if lo > 0 else None
        planned = (plan, (lo, below_lo == "relu", keep, slot))
        if len(self._plans) > 4:
            self._plans.clear()
        self._plans[key] = (optimizer, planned, self._dx_t_scratch, self._buffers[batch])
        return planned

    def _transposed(self, i, batch, need_input_grad):
        """True when layer i's input gradient is computed transposed (see backward)."""
        if i < 0:
            return False
        key = (batch, need_input_grad)
        flags = self._transposed_flags.get(key)
        if flags is None:
            if len(self._transposed_flags) > 8:
                self._transposed_flags.clear()
            flags = self._transposed_flags[key] = [
                (j > 0 or need_input_grad)
                and transposed_input_grad(batch, layer.n_in, self.dtype)
                for j, layer in enumerate(self.layers)]
        return flags[i]

    def _dx_t_for(self, batch, n, slot=0):
        """An (n, batch) scratch (two of them: ``slot`` 0 or 1) for a transposed gradient."""
        need = batch * max(self.sizes)
        if self._dx_t_scratch is None or self._dx_t_scratch[0].size < need:
            self._dx_t_scratch = (np.empty(need, self.dtype), np.empty(need, self.dtype))
        return self._dx_t_scratch[slot][:batch * n].reshape(n, batch)

    def astype(self, dtype):
        """A copy of this MLP with parameters cast to ``dtype``."""
        act = self.layers[0].activation if len(self.layers) > 1 else "identity"
        new = MLP(self.sizes, act, self.layers[-1].activation, dtype, self.sparse_input)
        new.params[...] = self.params
        return new


class LayerNorm:
    """Layer normalisation without affine parameters: y = (x - mean) / sqrt(var + eps),
    mean and var over the features of each row."""

    def __init__(self, n_features, dtype=np.float32, eps=1e-5):
        self.n_features, self.dtype, self.eps = n_features, np.dtype(dtype), eps
        self._buffers = {}

    def forward(self, x):
        b = x.shape[0]
        if b not in self._buffers:
            self._buffers[b] = (np.empty_like(x, dtype=self.dtype),
                                np.empty_like(x, dtype=self.dtype))
        y, self._dx = self._buffers[b]
        mean = x.mean(axis=1, keepdims=True)
        np.subtract(x, mean, out=y)
        self._inv_std = 1.0 / np.sqrt((y * y).mean(axis=1, keepdims=True) + self.eps)
        y *= self._inv_std
        self._y = y
        return y

    def backward(self, dy):
        """dx = (dy - mean(dy) - y * mean(dy * y)) / std, per row."""
        y, dx = self._y, self._dx
        np.subtract(dy, dy.mean(axis=1, keepdims=True), out=dx)
        dx -= y * (dy * y).mean(axis=1, keepdims=True)
        dx *= self._inv_std
        return dx
