# Included by optim.pyx and hsoftmax.pyx: the one Adam update loop of the compiled core.
# (Needs: from cython cimport floating; from libc.float cimport DBL_MIN, FLT_MIN;
#  from libc.math cimport sqrt, sqrtf, fabs, fabsf.)
# float32 on an AVX-512 build runs adam.h's loop, the one the GEMM's epilogue also
# applies (gemm.sgemm_adam), so both give the same bits.

cdef extern from "adam.h" nogil:
    ctypedef struct vaeas_adam_t:
        float scale, b1, b2, a1, a2, step_size, c2, eps
    int VAEAS_ADAM_AVX512
    void vaeas_adam_span(float* p, const float* g, float* m, float* v, Py_ssize_t n,
                         const vaeas_adam_t* c)


cdef inline floating _adam_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _adam_abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline void adam_span(floating* p, const floating* g, floating* m, floating* v,
                           Py_ssize_t n, floating scale, floating b1, floating b2,
                           floating step_size, floating c2, floating eps) noexcept nogil:
    """Adam on n contiguous elements, in the arrays' precision (so the loop vectorises).

    Moments below the smallest normal number are flushed to zero: parameters that get
    exactly zero gradients (dead ReLUs) would otherwise decay their moments into
    subnormal numbers, whose arithmetic is ~100x slower (measured: 788k of the
    decoder's 1.4M first moments subnormal after 10 MNIST epochs, and the training
    step 40 % slower).  The change to the update is below 1e-38 * lr.
    """
    cdef Py_ssize_t i
    cdef floating gi, mi, vi
    cdef floating tiny, zero = 0
    if floating is float:
        tiny = FLT_MIN
    else:
        tiny = DBL_MIN
    # every constant in the arrays' precision, and one comparison per flush: the loop
    # then if-converts and vectorises (a double-valued (1 - b1) and an `or` kept it
    # scalar: measured 0.75 Gelem/s per thread before, see bench/RESULTS.md)
    cdef floating a1 = 1 - b1, a2 = 1 - b2
    cdef vaeas_adam_t c
    if floating is float:
        if VAEAS_ADAM_AVX512:
            c.scale, c.b1, c.b2, c.a1, c.a2 = scale, b1, b2, a1, a2
            c.step_size, c.c2, c.eps = step_size, c2, eps
            vaeas_adam_span(p, g, m, v, n, &c)
            return
    for i in range(n):
        gi = scale * g[i]
        mi = b1 * m[i] + a1 * gi
        vi = b2 * v[i] + a2 * gi * gi
        mi = mi if _adam_abs(mi) >= tiny else zero
        vi = vi if vi >= tiny else zero
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - step_size * mi / (_adam_sqrt(vi * c2) + eps)
