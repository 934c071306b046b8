# cython: language_level=3
"""Fused elementwise kernels of the training path (one pass, nothing allocated).

- ``bias_act``: ``y += b`` (b broadcast over rows), then ReLU in place when
  ``relu`` is true (reference: ``y += b; np.maximum(y, 0, out=y)``);
- ``relu_backward``: ``delta *= (y > 0)`` in place (reference:
  ``vaeas_np.nn.activations.relu_derivative``).

NumPy's broadcast ``y += b`` goes through a 32 KB iterator buffer on every
call; these loops do not, and they vectorise.
"""
from cython cimport floating
from cython.parallel cimport prange

cdef Py_ssize_t _SERIAL_BELOW = 1 << 20   # below ~1M elements one thread is faster (wake-up cost)


def bias_act(floating[:, ::1] y,            # IN/OUT (B, D)
             const floating[::1] b,         # IN (D,)
             bint relu, int n_threads=1):
    """y = y + b (then max(., 0) if ``relu``), in place."""
    cdef Py_ssize_t B = y.shape[0], D = y.shape[1], i, j
    if b.shape[0] != D:
        raise ValueError("bias_act: b must have y.shape[1] elements")
    cdef int nt = n_threads if B * D >= _SERIAL_BELOW else 1
    cdef floating t
    with nogil:
        for i in prange(B, num_threads=nt, schedule="static"):
            if relu:
                for j in range(D):
                    t = y[i, j] + b[j]
                    y[i, j] = t if t > 0 else 0
            else:
                for j in range(D):
                    y[i, j] = y[i, j] + b[j]


def relu_backward(const floating[:, ::1] y,   # IN (B, D) ReLU outputs
                  floating[:, ::1] delta,     # IN/OUT (B, D)
                  int n_threads=1):
    """delta = delta * (y > 0), in place."""
    cdef Py_ssize_t B = y.shape[0], D = y.shape[1], i, j
    if delta.shape[0] != B or delta.shape[1] != D:
        raise ValueError("relu_backward: y and delta must have the same shape")
    cdef int nt = n_threads if B * D >= _SERIAL_BELOW else 1
    with nogil:
        for i in prange(B, num_threads=nt, schedule="static"):
            for j in range(D):
                delta[i, j] = delta[i, j] if y[i, j] > 0 else 0
