# cython: language_level=3
"""Fused elementwise kernels of the training path (one pass, nothing allocated).

- ``bias_act``: ``y += b`` (b broadcast over rows), then ReLU in place when
  ``relu`` is true (reference: ``y += b; np.maximum(y, 0, out=y)``);
- ``relu_backward``: ``delta *= (y > 0)`` in place (reference:
  ``vaeas_np.nn.activations.relu_derivative``);
- ``transpose_relu_backward``: ``dst = src.T * (y > 0)`` (or ``src.T``), a layer's
  input gradient computed as its transpose put back in rows, with the next layer's
  ReLU derivative in the same pass (reference: ``src.T * (y > 0)``).

NumPy's broadcast ``y += b`` goes through a 32 KB iterator buffer on every
call; these loops do not, and they vectorise.
"""
from cython cimport floating
from cython.parallel cimport prange

cdef Py_ssize_t _SERIAL_BELOW = 1 << 20   # below ~1M elements one thread is faster (wake-up cost)
# The passes right after a two-thread GEMM (bias_act, relu_backward, the transposes) run on
# n_threads from 16k elements: each thread then finds its half of the GEMM's output in its
# own cache.  Measured at batch 128, 2 threads, GEMM + bias_act minus the GEMM alone:
# 500 wide 11 -> 5 us, 784 wide 16 -> 6 us; the transposes: see transpose_relu_backward.
cdef Py_ssize_t _AFTER_GEMM_SERIAL_BELOW = 1 << 14


def bias_act(floating[:, ::1] y,            # IN/OUT (B, D)
             const floating[::1] b,         # IN (D,)
             bint relu, int n_threads=1):
    """y = y + b (then max(., 0) if ``relu``), in place."""
    cdef Py_ssize_t B = y.shape[0], D = y.shape[1], i, j
    if b.shape[0] != D:
        raise ValueError("bias_act: b must have y.shape[1] elements")
    cdef int nt = n_threads if B * D >= _AFTER_GEMM_SERIAL_BELOW else 1
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
    cdef int nt = n_threads if B * D >= _AFTER_GEMM_SERIAL_BELOW else 1
    with nogil:
        for i in prange(B, num_threads=nt, schedule="static"):
            for j in range(D):
                delta[i, j] = delta[i, j] if y[i, j] > 0 else 0


cdef extern from "transpose.h" nogil:
    const Py_ssize_t VAEAS_TRANSPOSE_TILE
    void vaeas_transpose_mask_f32(const float* src, const float* y, float* dst,
                                  float* src_masked, Py_ssize_t n, Py_ssize_t B, Py_ssize_t k0,
                                  Py_ssize_t k1, int simd)
    void vaeas_transpose_mask_f64(const double* src, const double* y, double* dst,
                                  double* src_masked, Py_ssize_t n, Py_ssize_t B,
                                  Py_ssize_t k0, Py_ssize_t k1, int simd)


def transpose_relu_backward(const floating[:, ::1] src,   # IN  (n, B) dL/dy, transposed
                            floating[:, ::1] dst,         # OUT (B, n)
                            const floating[:, ::1] y=None,  # IN  (B, n) ReLU outputs, or None
                            int n_threads=1, bint simd=True,
                            floating[:, ::1] src_masked=None):  # OUT (n, B), or None
    """dst = src.T * (y > 0), or dst = src.T when ``y`` is None.

    ``src_masked`` (may be ``src`` itself) also gets the masked values in src's
    layout, src * (y.T > 0), in the same pass: a layer's gradient both in rows (for
    its weight gradient) and transposed (for the compiled GEMM's input gradient).

    ``simd=False`` takes the element-by-element path everywhere (for tests: both
    paths give the same bits).  Runs on ``n_threads`` from 2**14 elements: a 500 x 128
    transpose in cache takes about 14 us on one thread, 9-19 us on two, but in the
    training step its source was just written by a two-thread GEMM, half in each
    core's cache, and the step with the transposed input gradients measured paired
    1.000 against the plain ones with one thread here, 0.987 and 0.980 with two
    (MNIST VAE, 40 interleaved blocks of 20 steps).
    """
    cdef Py_ssize_t n = src.shape[0], B = src.shape[1], q
    cdef Py_ssize_t nq = (n + VAEAS_TRANSPOSE_TILE - 1) // VAEAS_TRANSPOSE_TILE
    if dst.shape[0] != B or dst.shape[1] != n:
        raise ValueError(f"transpose_relu_backward: dst must have shape ({B}, {n}) "
                         f"(src's transpose), got ({dst.shape[0]}, {dst.shape[1]})")
    if y is not None and (y.shape[0] != B or y.shape[1] != n):
        raise ValueError(f"transpose_relu_backward: y must have shape ({B}, {n}), "
                         f"got ({y.shape[0]}, {y.shape[1]})")
    if src_masked is not None and (src_masked.shape[0] != n or src_masked.shape[1] != B):
        raise ValueError(f"transpose_relu_backward: src_masked must have src's shape "
                         f"({n}, {B}), got ({src_masked.shape[0]}, {src_masked.shape[1]})")
    if n == 0 or B == 0:
        return
    cdef const floating* yp = &y[0, 0] if y is not None else NULL
    cdef floating* sm = &src_masked[0, 0] if src_masked is not None else NULL
    cdef int nt = n_threads if n * B >= _AFTER_GEMM_SERIAL_BELOW else 1
    with nogil:
        for q in prange(nq, num_threads=nt, schedule="static"):
            if floating is float:
                vaeas_transpose_mask_f32(&src[0, 0], yp, &dst[0, 0], sm, n, B,
                                         q * VAEAS_TRANSPOSE_TILE,
                                         min(n, (q + 1) * VAEAS_TRANSPOSE_TILE), simd)
            else:
                vaeas_transpose_mask_f64(&src[0, 0], yp, &dst[0, 0], sm, n, B,
                                         q * VAEAS_TRANSPOSE_TILE,
                                         min(n, (q + 1) * VAEAS_TRANSPOSE_TILE), simd)


cdef extern from "vmath.h" nogil:
    double vaeas_bernoulli_row_f32(const float* x, const float* l, Py_ssize_t D, float* dl,
                                   float scale)
    double vaeas_bernoulli_row_f64(const double* x, const double* l, Py_ssize_t D,
                                   double* dl, double scale)
    float vaeas_softplusf(float l)


def bernoulli_rows(const floating[:, ::1] x,       # IN  (n, D) in [0, 1]
                   const floating[:, ::1] logits,  # IN  (n * rows_per_x, D)
                   Py_ssize_t rows_per_x,
                   double[::1] out,                # OUT (n * rows_per_x,)
                   floating[:, ::1] dlogits=None,  # OUT (like logits) or None
                   double scale=1.0,
                   int n_threads=1):
    """Bernoulli log-likelihood per row of logits, and optionally its gradient's form.

    out[r] = sum_d x[i, d] l[r, d] - softplus(l[r, d]) with i = r // rows_per_x (the
    IWAE's s samples of one image share its x row); with ``dlogits``:
    dlogits[r, d] = scale * (sigmoid(l[r, d]) - x[i, d]) (scale = 1/B: the gradient of
    the batch-mean negative log-likelihood).  float32: the polynomials of _ext/vmath.h
    (within 2 ulp), float sums over blocks of 128 elements added in double; float64: libm.
    NumPy reference: ``vaeas_np.metrics._bernoulli.bernoulli_loglik_reference``.
    """
    cdef Py_ssize_t R = logits.shape[0], D = logits.shape[1], r
    if rows_per_x < 1 or x.shape[0] * rows_per_x != R or x.shape[1] != D:
        raise ValueError(f"bernoulli_rows: x must be ({R} // rows_per_x, {D}) with "
                         f"x rows * rows_per_x = logits rows")
    if out.shape[0] != R:
        raise ValueError(f"bernoulli_rows: out must have {R} elements")
    cdef bint grad = dlogits is not None
    if grad and (dlogits.shape[0] != R or dlogits.shape[1] != D):
        raise ValueError("bernoulli_rows: dlogits must have the shape of logits")
    # the exp/log work per element is ~4x a bias_act's, and in training the logits come
    # straight from the decoder's two-thread GEMM (each thread's half in its own cache):
    # the bound of the passes after a GEMM
    cdef int nt = n_threads if R * D >= _AFTER_GEMM_SERIAL_BELOW else 1
    with nogil:
        for r in prange(R, num_threads=nt, schedule="static"):
            if floating is float:
                out[r] = vaeas_bernoulli_row_f32(&x[r // rows_per_x, 0], &logits[r, 0], D,
                                                 &dlogits[r, 0] if grad else NULL,
                                                 <float>scale)
            else:
                out[r] = vaeas_bernoulli_row_f64(&x[r // rows_per_x, 0], &logits[r, 0], D,
                                                 &dlogits[r, 0] if grad else NULL, scale)


def softplus_f32(const float[::1] l, float[::1] out):
    """out = softplus(l) by the float32 polynomials of the kernels (for the tests)."""
    cdef Py_ssize_t i
    if out.shape[0] != l.shape[0]:
        raise ValueError("softplus_f32: out must have the length of l")
    for i in range(l.shape[0]):
        out[i] = vaeas_softplusf(l[i])


cdef extern from "latent.h" nogil:
    void vaeas_latent_forward_f32(const float* enc, const float* std, const float* eps,
                                  float* z, float* var, float* kl_i, Py_ssize_t B,
                                  Py_ssize_t d)
    void vaeas_latent_forward_f64(const double* enc, const double* std, const double* eps,
                                  double* z, double* var, double* kl_i, Py_ssize_t B,
                                  Py_ssize_t d)
    void vaeas_latent_backward_f32(const float* enc, const float* std, const float* eps,
                                   const float* var, const float* dz, float* denc,
                                   float c_mu, float c_lv, Py_ssize_t B, Py_ssize_t d)
    void vaeas_latent_backward_f64(const double* enc, const double* std, const double* eps,
                                   const double* var, const double* dz, double* denc,
                                   double c_mu, double c_lv, Py_ssize_t B, Py_ssize_t d)


cdef str _latent_shapes(Py_ssize_t encB, Py_ssize_t encD, shapes):
    """'' when every (name, rows, cols) in shapes is (B, d) with enc (B, 2d), else why not."""
    if encD % 2:
        return f"enc must have an even number of columns (mu | logvar), got {encD}"
    cdef Py_ssize_t d = encD // 2
    for name, r, c in shapes:
        if r != encB or c != d:
            return f"{name} must be ({encB}, {d}) (enc is ({encB}, {encD})), got ({r}, {c})"
    return ""


def latent_forward(const floating[:, ::1] enc,   # IN  (B, 2d): mu | logvar
                   const floating[:, ::1] std,   # IN  (B, d) exp(logvar / 2)
                   const floating[:, ::1] eps,   # IN  (B, d) standard normal noise
                   floating[:, ::1] z,           # OUT (B, d) mu + std eps
                   floating[:, ::1] var,         # OUT (B, d) std^2
                   floating[::1] kl_i):          # OUT (B,) KL(q(z|x_b) || N(0, I))
    """The VAE's latent layer forward in one pass (see _ext/latent.h); the bits of
    ``z = std * eps + mu``, ``var = std * std`` in NumPy, and
    ``kl_i = (sum_j mu^2 + var - logvar - d) / 2`` (summed in double).
    NumPy reference: ``vaeas_np.models.vae.latent_forward_reference``."""
    cdef Py_ssize_t B = enc.shape[0], d = enc.shape[1] // 2
    why = _latent_shapes(B, enc.shape[1], [("std", std.shape[0], std.shape[1]),
                                           ("eps", eps.shape[0], eps.shape[1]),
                                           ("z", z.shape[0], z.shape[1]),
                                           ("var", var.shape[0], var.shape[1]),
                                           ("kl_i", kl_i.shape[0], d)])
    if why:
        raise ValueError("latent_forward: " + why)
    if B == 0:          # (d == 0 is fine: the C loops then give kl_i = 0 and touch nothing)
        return
    with nogil:
        if floating is float:
            vaeas_latent_forward_f32(&enc[0, 0], &std[0, 0], &eps[0, 0], &z[0, 0], &var[0, 0],
                                     &kl_i[0], B, d)
        else:
            vaeas_latent_forward_f64(&enc[0, 0], &std[0, 0], &eps[0, 0], &z[0, 0], &var[0, 0],
                                     &kl_i[0], B, d)


def latent_backward(const floating[:, ::1] enc,  # IN  (B, 2d): mu | logvar
                    const floating[:, ::1] std,  # IN  (B, d)
                    const floating[:, ::1] eps,  # IN  (B, d)
                    const floating[:, ::1] var,  # IN  (B, d) from latent_forward
                    const floating[:, ::1] dz,   # IN  (B, d) dL/dz
                    floating[:, ::1] denc,       # OUT (B, 2d): dL/dmu | dL/dlogvar
                    double c_mu, double c_lv):
    """dL/dmu = mu c_mu + dz, dL/dlogvar = dz eps std / 2 + (var - 1) c_lv, in one pass
    (c_mu = beta / B, c_lv = beta / (2B): the beta * KL term), with the bits of the same
    statements in NumPy, each constant rounded to the dtype once (see _ext/latent.h).
    NumPy reference: ``vaeas_np.models.vae.latent_backward_reference``."""
    cdef Py_ssize_t B = enc.shape[0], d = enc.shape[1] // 2
    why = _latent_shapes(B, enc.shape[1], [("std", std.shape[0], std.shape[1]),
                                           ("eps", eps.shape[0], eps.shape[1]),
                                           ("var", var.shape[0], var.shape[1]),
                                           ("dz", dz.shape[0], dz.shape[1])])
    if not why and (denc.shape[0] != B or denc.shape[1] != enc.shape[1]):
        why = (f"denc must be ({B}, {enc.shape[1]}) like enc, got "
               f"({denc.shape[0]}, {denc.shape[1]})")
    if why:
        raise ValueError("latent_backward: " + why)
    if B == 0:
        return
    with nogil:
        if floating is float:
            vaeas_latent_backward_f32(&enc[0, 0], &std[0, 0], &eps[0, 0], &var[0, 0],
                                      &dz[0, 0], &denc[0, 0], <float>c_mu, <float>c_lv, B, d)
        else:
            vaeas_latent_backward_f64(&enc[0, 0], &std[0, 0], &eps[0, 0], &var[0, 0],
                                      &dz[0, 0], &denc[0, 0], c_mu, c_lv, B, d)
