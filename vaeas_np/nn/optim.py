"""Optimizers: Adam (dense, fused in the compiled core) and the NumPy references.

:class:`Adam` updates one flat parameter vector in place from a flat gradient
vector in a single fused pass (``vaeas_np._ext.optim.adam_step``).  The
sparse-row variant for the classifier's tree nodes is
``vaeas_np._ext.optim.sparse_adam_rows``; ``sparse_adam_reference`` says what
it computes.
"""
import numpy as np

from .. import _threads as _threading
from .._threads import get_num_threads
from ..errors import InvalidParameterError
from .._ext import gemm as _gemm
from .._ext import optim as _optim


def _threads(n):
    """``get_num_threads(n)``; a positive int (the models pass their resolved count, twice
    per layer per training step) without its four Python calls, unless this process was
    forked from one whose OpenMP threads had started (then get_num_threads says 1)."""
    return n if type(n) is int and n > 0 and not _threading._openmp_lost else \
        get_num_threads(n)


class Adam:
    """Adam (Kingma & Ba) on a flat parameter vector (updated in place).

    ``m``, ``v`` and ``step`` are the optimizer state (saved in checkpoints).
    """

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        if not lr > 0:
            raise InvalidParameterError(f"learning rate must be > 0, got {lr}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise InvalidParameterError(f"Adam betas must be in [0, 1), got {beta1}, {beta2}")
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.step_count = 0

    def step(self, grads, n_threads=None, scale=1.0):
        """Update ``params`` in place with the gradient ``scale * grads``."""
        self.advance()
        self.step_slice(0, grads, n_threads, scale)

    def advance(self):
        """Begin a new step; :meth:`step_slice` calls until the next ``advance`` belong to it.

        A step can then be applied a slice at a time, each slice as soon as its
        gradient exists (:meth:`vaeas_np.nn.MLP.backward` with ``optimizer``).
        """
        self.step_count += 1

    def step_slice(self, start, grads, n_threads=None, scale=1.0, zero_grads=False):
        """This step's update of ``params[start:start + len(grads)]`` with ``scale * grads``.

        After :meth:`advance`.  Adam is elementwise, so updating the slices of a step
        one by one gives the same numbers as one :meth:`step` on the whole vector.
        ``zero_grads``: ``grads`` is set to zero as it is read (for a buffer that the
        next gradient is accumulated into).
        """
        if self.step_count < 1:
            raise RuntimeError("Adam.step_slice: call advance() first to begin the step")
        k = grads.shape[0]
        if grads.ndim != 1 or start < 0 or start + k > self.params.shape[0]:
            raise ValueError(f"Adam.step_slice: a 1-d gradient of {k} elements at {start} does "
                             f"not fit the {self.params.shape[0]} parameters")
        stop = start + k
        _optim.adam_step(self.params[start:stop], grads, self.m[start:stop],
                         self.v[start:stop], self.lr, self.beta1, self.beta2, self.eps,
                         self.step_count, _threads(n_threads), scale, zero_grads)

    def step_slice_gemm(self, start, a, b, n_threads=None, scale=1.0):
        """This step's update of the (M, N) matrix ``params[start:start + M * N]`` with the
        gradient ``scale * (a @ b)``, a (M, K), b (K, N), applied by the compiled GEMM as
        each block of the product is summed: no gradient array is written or read again.

        After :meth:`advance`.  The same bits as computing ``a @ b`` with
        ``vaeas_np._ext.gemm.sgemm`` and passing it to :meth:`step_slice`.  float32 only,
        where the compiled GEMM is built (:func:`vaeas_np._ext.gemm.available`); ``b``
        C-contiguous, ``a`` any strides (``x.T`` for a weight gradient).
        """
        if self.step_count < 1:
            raise RuntimeError("Adam.step_slice_gemm: call advance() first to begin the step")
        M, N = a.shape[0], b.shape[1]
        if start < 0 or start + M * N > self.params.shape[0]:
            raise ValueError(f"Adam.step_slice_gemm: a ({M}, {N}) block at {start} does not "
                             f"fit the {self.params.shape[0]} parameters")
        stop = start + M * N
        _gemm.sgemm_adam(a, b, self.params[start:stop].reshape(M, N),
                         self.m[start:stop].reshape(M, N), self.v[start:stop].reshape(M, N),
                         self.lr, self.beta1, self.beta2, self.eps, self.step_count,
                         scale, _threads(n_threads))

    def state(self):
        return {"m": self.m, "v": self.v, "step": self.step_count}

    def load_state(self, m, v, step):
        self.m[...] = m
        self.v[...] = v
        self.step_count = int(step)


def adam_reference(p, g, m, v, lr, beta1, beta2, eps, step):
    """Textbook Adam, in place on float64 copies' semantics (NumPy, for tests)."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    mhat = m / (1 - beta1 ** step)
    vhat = v / (1 - beta2 ** step)
    p -= lr * mhat / (np.sqrt(vhat) + eps)


def sparse_adam_reference(p, rows, g_rows, m, v, lr, beta1, beta2, eps, step):
    """Lazy Adam on the rows ``rows`` of ``p`` only (the others keep their moments)."""
    pr, mr, vr = p[rows], m[rows], v[rows]
    adam_reference(pr, g_rows, mr, vr, lr, beta1, beta2, eps, step)
    p[rows], m[rows], v[rows] = pr, mr, vr
