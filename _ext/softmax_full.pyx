# cython: language_level=3
"""Full-softmax row kernels (the GEMMs stay in NumPy/BLAS).

``forward`` turns logits (B, V) = H W (without bias) *in place* into the
unnormalised probabilities of the shifted logits and returns the log
probability of each row's label:

    x = logits[b] + bias,  m = max_v x_v,  Z = sum_v exp(x_v - m)
    logp[b] = x[label] - m - log Z
    logits[b, v] <- exp(x_v - m)       (kept for backward),   zinv[b] <- 1 / Z

``backward`` turns that buffer in place into the gradient of
sum_b dlogp[b] logp[b] with respect to the logits:

    dlogits[b, v] = dlogp[b] * (onehot(label)_v - softmax(x)_v)

One exp per logit in all; both are parallel over rows.
NumPy references: ``vaeas_np.softmax.reference.sm_forward`` / ``sm_backward``.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log
from libc.stdint cimport int64_t


cdef extern from "softmax_row.h" nogil:
    # float32 rows: vectorised max / exp / sum (C, so that GCC vectorises the exp);
    # float64 rows: _fwd_row_f64 below, libm's exp
    void _fwd_row_f32 "vaeas_softmax_row_f32"(float* x, const float* bias, Py_ssize_t V,
                                              Py_ssize_t label, float* logp, float* zinv)
    float _expf_nonpos "vaeas_expf_nonpos"(float x)


def expf_nonpos(const float[::1] x, float[::1] out):
    """The float32 exp of the softmax kernel, exposed for its accuracy test (x <= 0)."""
    cdef Py_ssize_t i
    if out.shape[0] != x.shape[0]:
        raise ValueError("expf_nonpos: x and out must have the same length")
    with nogil:
        for i in range(x.shape[0]):
            out[i] = _expf_nonpos(x[i])


cdef void _fwd_row_f64(double* x, const double* bias, Py_ssize_t V, Py_ssize_t label,
                       double* logp, double* zinv) noexcept nogil:
    """float64 row (float32 rows: ``vaeas_softmax_row_f32`` in softmax_row.h)."""
    cdef Py_ssize_t v
    cdef double m, z = 0.0, xl
    for v in range(V):
        x[v] = x[v] + bias[v]
    m = x[0]
    for v in range(1, V):
        if x[v] > m:
            m = x[v]
    xl = x[label]
    for v in range(V):
        x[v] = exp(x[v] - m)
        z = z + x[v]
    logp[0] = xl - m - log(z)
    zinv[0] = 1.0 / z


def forward(floating[:, ::1] logits,       # IN (B, V) H W  ->  OUT exp(x - max) per row
            const floating[::1] bias,      # IN (V,)
            const int64_t[::1] labels,     # IN (B,) in [0, V)
            floating[::1] logp,            # OUT (B,) log softmax(x)[label]
            floating[::1] zinv,            # OUT (B,) 1 / sum_v exp(x_v - max)
            int n_threads=1):
    """Stable log-sum-exp per row; see the module docstring."""
    cdef Py_ssize_t B = logits.shape[0], V = logits.shape[1], b
    if bias.shape[0] != V or labels.shape[0] != B or logp.shape[0] != B or zinv.shape[0] != B:
        raise ValueError("softmax_full.forward: need bias (V,), labels, logp, zinv (B,)")
    if V < 1:
        raise ValueError("softmax_full.forward: V must be >= 1")
    for b in range(B):
        if labels[b] < 0 or labels[b] >= V:
            raise IndexError(f"softmax_full.forward: label {labels[b]} outside [0, {V})")
    with nogil:
        for b in prange(B, num_threads=n_threads, schedule="static"):
            if floating is float:
                _fwd_row_f32(&logits[b, 0], &bias[0], V, labels[b], &logp[b], &zinv[b])
            else:
                _fwd_row_f64(&logits[b, 0], &bias[0], V, labels[b], &logp[b], &zinv[b])


cdef void _bwd_row(floating* p, Py_ssize_t V, Py_ssize_t label, floating dl,
                   floating zinv) noexcept nogil:
    cdef Py_ssize_t v
    cdef floating c = -dl * zinv
    for v in range(V):
        p[v] = c * p[v]
    p[label] = p[label] + dl


def backward(floating[:, ::1] expx,        # IN (B, V) from forward -> OUT dlogits
             const floating[::1] zinv,     # IN (B,) from forward
             const int64_t[::1] labels,    # IN (B,)
             const floating[::1] dlogp,    # IN (B,) upstream gradient of logp
             int n_threads=1):
    """In place: expx[b] <- dlogp[b] * (onehot(labels[b]) - expx[b] * zinv[b])."""
    cdef Py_ssize_t B = expx.shape[0], V = expx.shape[1], b
    if zinv.shape[0] != B or labels.shape[0] != B or dlogp.shape[0] != B:
        raise ValueError("softmax_full.backward: need zinv, labels, dlogp (B,)")
    for b in range(B):
        if labels[b] < 0 or labels[b] >= V:
            raise IndexError(f"softmax_full.backward: label {labels[b]} outside [0, {V})")
    with nogil:
        for b in prange(B, num_threads=n_threads, schedule="static"):
            _bwd_row(&expx[b, 0], V, labels[b], dlogp[b], zinv[b])
