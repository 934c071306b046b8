# cython: language_level=3
"""Fused optimizer steps: one pass over each parameter, no temporaries.

Adam (Kingma & Ba 2015, the textbook form that PyTorch also uses)::

    m = b1 m + (1 - b1) g
    v = b2 v + (1 - b2) g^2
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

``sparse_adam_rows`` applies the same update to selected rows of a matrix
only ("lazy" Adam: rows not in the step keep their moments untouched).
NumPy references: ``vaeas_np.nn.optim.adam_reference`` and
``sparse_adam_reference``.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.float cimport DBL_MIN, FLT_MIN
from libc.math cimport sqrt, sqrtf, fabs, fabsf, pow
from libc.string cimport memset

# Below this many elements adam_step runs on one thread.  Measured in the VAE-AS training
# step, where the arrays come cold from L3/DRAM: the classifier MLP's 271k parameters
# took 0.231-0.238 ms on one thread and 0.130-0.134 ms on two (paired block medians, 30
# and 40 blocks; the step 0.9 % faster).  With the arrays hot in cache one thread wins
# (0.084 against 0.122 ms), which set the old bound of 524,288: the training path is
# the cold case.
cdef Py_ssize_t _SERIAL_BELOW = 131072
cdef Py_ssize_t _CHUNK = 8192


include "adam_span.pxi"


def adam_step(floating[::1] param,      # IN/OUT flat parameter
              floating[::1] grad,        # IN gradient (multiplied by ``scale``); OUT zeros
                                         #    when ``zero_grad``
              floating[::1] m,          # IN/OUT first moment
              floating[::1] v,          # IN/OUT second moment
              double lr, double beta1, double beta2, double eps, long step,
              int n_threads=1, double scale=1.0, bint zero_grad=False):
    """One fused Adam step on flat contiguous arrays with gradient ``scale * grad``
    (``step`` counts from 1).  Parallel over chunks of 8192 elements.

    ``zero_grad``: set ``grad`` to zero as it is consumed (each chunk right after its
    update, while it is in L1), so that the next gradient can be accumulated into it
    (:func:`vaeas_np._ext.blas.add_at_b`)."""
    cdef Py_ssize_t c, lo, n = param.shape[0]
    if grad.shape[0] != n or m.shape[0] != n or v.shape[0] != n:
        raise ValueError("adam_step: param, grad, m, v must have the same length")
    cdef floating step_size = <floating>(lr / (1.0 - pow(beta1, step)))
    cdef floating c2 = <floating>(1.0 / (1.0 - pow(beta2, step)))
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2, e = <floating>eps
    cdef floating sc = <floating>scale
    cdef Py_ssize_t n_chunks = (n + _CHUNK - 1) // _CHUNK
    cdef int nt = n_threads if n >= _SERIAL_BELOW else 1
    if n == 0:
        return
    with nogil:
        for c in prange(n_chunks, num_threads=nt, schedule="static"):
            lo = c * _CHUNK
            adam_span(&param[lo], &grad[lo], &m[lo], &v[lo], min(_CHUNK, n - lo), sc, b1,
                       b2, step_size, c2, e)
            if zero_grad:
                memset(&grad[lo], 0, min(_CHUNK, n - lo) * sizeof(floating))


cdef inline void _adam_one(floating* p, floating g, floating* m, floating* v,
                           double lr, double b1, double b2, double eps,
                           double c1, double c2) noexcept nogil:
    cdef double mi = b1 * m[0] + (1.0 - b1) * g
    cdef double vi = b2 * v[0] + (1.0 - b2) * g * g
    m[0] = <floating>mi
    v[0] = <floating>vi
    p[0] = <floating>(p[0] - lr * (mi * c1) / (sqrt(vi * c2) + eps))


def sparse_adam_rows(floating[:, ::1] param,      # IN/OUT (R, h) matrix
                     const long[::1] rows,         # IN (k,) distinct row ids
                     const floating[:, ::1] grad,  # IN (k, h) gradient of those rows
                     floating[:, ::1] m,          # IN/OUT (R, h)
                     floating[:, ::1] v,          # IN/OUT (R, h)
                     double lr, double beta1, double beta2, double eps, long step,
                     int n_threads=1):
    """Adam on the rows ``rows`` of ``param`` only; other rows and moments untouched.

    Row ids must be distinct (duplicates would race); the caller aggregates.
    """
    cdef Py_ssize_t k = rows.shape[0], h = param.shape[1], j, c, r
    if grad.shape[0] != k or grad.shape[1] != h:
        raise ValueError("sparse_adam_rows: grad must have shape (len(rows), param.shape[1])")
    if m.shape[0] != param.shape[0] or v.shape[0] != param.shape[0] \
            or m.shape[1] != h or v.shape[1] != h:
        raise ValueError("sparse_adam_rows: m and v must have param's shape")
    cdef Py_ssize_t R = param.shape[0]
    for j in range(k):
        if rows[j] < 0 or rows[j] >= R:
            raise IndexError(f"sparse_adam_rows: row id {rows[j]} outside [0, {R})")
    cdef double c1 = 1.0 / (1.0 - pow(beta1, step))
    cdef double c2 = 1.0 / (1.0 - pow(beta2, step))
    cdef int nt = n_threads if k * h >= _SERIAL_BELOW else 1
    with nogil:
        for j in prange(k, num_threads=nt, schedule="static"):
            r = rows[j]
            for c in range(h):
                _adam_one(&param[r, c], grad[j, c], &m[r, c], &v[r, c],
                          lr, beta1, beta2, eps, c1, c2)
