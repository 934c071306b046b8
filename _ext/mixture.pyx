# cython: language_level=3
"""Log-mean-exp and diagonal Gaussian mixture log-density kernels.

All sums of exponentials are accumulated in float64 with the usual shift by
the running maximum (stable log-sum-exp); inputs may be float32 or float64.

``logmeanexp_rows(A)``::

    out[i] = log (1/k) sum_j exp(A[i, j])                     A: (n, k) -> (n,)

``lse_accumulate(chunk, run_max, run_sum)`` merges a chunk of columns into a
per-row running state (m, s) with ``sum_j exp(A[i, j]) = s[i] exp(m[i])``, so a
row can be streamed in chunks of any size; start from m = -inf, s = 0 and
finish with ``m + log(s) - log(k)``.

``gmm_logdensity(Z, mu, logvar)`` is the log-density of the equal-weight
N-component diagonal Gaussian mixture at M points::

    out[m] = log (1/N) sum_n N(Z[m]; mu[n], diag exp(logvar[n]))
    log N(z; mu_n, .) = c_n - 0.5 sum_d ivar[n, d] (z_d - mu[n, d])^2
    c_n = -0.5 (D log 2 pi + sum_d logvar[n, d]),   ivar = exp(-logvar)

It costs O(M N d) and never holds an M x N matrix: each point keeps an online
log-sum-exp state over the components.  Components are cut into blocks of
``block_components`` (stored transposed, (d, B), so a block of mu / ivar stays
in L2 while a block of points sweeps it); points are cut into blocks of
``block_points`` that the threads share out.  The squared distances of 4
points x B components form a small tile computed by a vectorised C loop; the
exponentials of a tile row are a vectorised polynomial (see VAEAS_EXP_NEG,
relative error ~1e-16) under ``omp simd``.  AVX2 / AVX-512 variants are picked
at run time on x86-64 with GCC or clang.

Components whose log-density is more than ``40 + log N`` below the running
maximum are not exponentiated: each contributes less than exp(-40) / N of the
final sum, so all of them together less than 4.3e-18 relative -- below float64
rounding of the result.

NumPy references: ``vaeas_np.metrics.reference``.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, INFINITY, M_PI
from libc.stdlib cimport malloc, free

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* q[p*B + n] = sum_k ivT[k*B + n] * (z[p*d + k] - muT[k*B + n])^2
       for p < P points, n < B components (one block, stored (d, B)).
       GCC / clang: P = 4 points x 2 vectors of components held in registers
       over the whole k loop (B a multiple of 16); otherwise plain loops. */
    #if defined(__GNUC__) || defined(__clang__)
    #define VAEAS_ACC(a, p, mv, iv) { t_ = (vt_)(z[(p) * d + k_] - (mv)); a += (iv) * t_ * t_; }
    #define VAEAS_TILE_BODY(T) {                                              \\
        typedef T vt_ __attribute__((vector_size(32)));                       \\
        const Py_ssize_t W_ = 32 / sizeof(T);                                 \\
        Py_ssize_t n0, k_;                                                   \\
        (void)P;                                                             \\
        for (n0 = 0; n0 < B; n0 += 2 * W_) {                                 \\
            vt_ a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0};                   \\
            vt_ a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};                   \\
            for (k_ = 0; k_ < d; ++k_) {                                     \\
                vt_ m0, m1, i0, i1, t_;                                      \\
                memcpy(&m0, muT + k_ * B + n0, 32);                          \\
                memcpy(&m1, muT + k_ * B + n0 + W_, 32);                     \\
                memcpy(&i0, ivT + k_ * B + n0, 32);                          \\
                memcpy(&i1, ivT + k_ * B + n0 + W_, 32);                     \\
                VAEAS_ACC(a00, 0, m0, i0) VAEAS_ACC(a01, 0, m1, i1)          \\
                VAEAS_ACC(a10, 1, m0, i0) VAEAS_ACC(a11, 1, m1, i1)          \\
                VAEAS_ACC(a20, 2, m0, i0) VAEAS_ACC(a21, 2, m1, i1)          \\
                VAEAS_ACC(a30, 3, m0, i0) VAEAS_ACC(a31, 3, m1, i1)          \\
            }                                                                \\
            memcpy(q + 0 * B + n0, &a00, 32); memcpy(q + 0 * B + n0 + W_, &a01, 32); \\
            memcpy(q + 1 * B + n0, &a10, 32); memcpy(q + 1 * B + n0 + W_, &a11, 32); \\
            memcpy(q + 2 * B + n0, &a20, 32); memcpy(q + 2 * B + n0 + W_, &a21, 32); \\
            memcpy(q + 3 * B + n0, &a30, 32); memcpy(q + 3 * B + n0 + W_, &a31, 32); \\
        }                                                                    \\
    }
    #else
    #define VAEAS_TILE_BODY(T) {                                              \\
        Py_ssize_t k_, p_, n_;                                               \\
        for (p_ = 0; p_ < P * B; ++p_) q[p_] = (T)0;                          \\
        for (k_ = 0; k_ < d; ++k_) {                                         \\
            const T* mk = muT + k_ * B;                                      \\
            const T* ik = ivT + k_ * B;                                      \\
            for (p_ = 0; p_ < P; ++p_) {                                     \\
                const T zk = z[p_ * d + k_];                                 \\
                T* qp = q + p_ * B;                                          \\
                for (n_ = 0; n_ < B; ++n_) {                                 \\
                    const T t = zk - mk[n_];                                 \\
                    qp[n_] += ik[n_] * t * t;                                \\
                }                                                            \\
            }                                                                \\
        }                                                                    \\
    }
    #endif
    #define VAEAS_TILE_ARGS(T) (const T* __restrict z, Py_ssize_t P, Py_ssize_t d, \\
        const T* __restrict muT, const T* __restrict ivT, Py_ssize_t B, T* __restrict q)

    /* exp(x) for -708 < x <= 0 without libm, vectorisable: x = k ln2 + r,
       |r| <= ln2 / 2, exp(r) by its degree-13 Taylor polynomial (relative
       error < 1e-16), 2^k assembled in the exponent bits.  In a macro so that
       it inlines into every SIMD variant. */
    #define VAEAS_EXP_NEG(x, out) {                                           \\
        const double kd_ = (x) * 1.4426950408889634 + 6755399441055744.0;      \\
        const double k_ = kd_ - 6755399441055744.0;                           \\
        const double r_ = ((x) - k_ * 0.6931471803691238) - k_ * 1.9082149292705877e-10; \\
        double p_ = 1.0 / 6227020800.0;                                       \\
        p_ = p_ * r_ + 1.0 / 479001600.0;  p_ = p_ * r_ + 1.0 / 39916800.0;    \\
        p_ = p_ * r_ + 1.0 / 3628800.0;    p_ = p_ * r_ + 1.0 / 362880.0;      \\
        p_ = p_ * r_ + 1.0 / 40320.0;      p_ = p_ * r_ + 1.0 / 5040.0;        \\
        p_ = p_ * r_ + 1.0 / 720.0;        p_ = p_ * r_ + 1.0 / 120.0;        \\
        p_ = p_ * r_ + 1.0 / 24.0;         p_ = p_ * r_ + 1.0 / 6.0;          \\
        p_ = p_ * r_ + 0.5;                p_ = p_ * r_ + 1.0;                \\
        p_ = p_ * r_ + 1.0;                                                   \\
        uint64_t b_; double two_k_;                                           \\
        memcpy(&b_, &kd_, 8);                                                 \\
        b_ = (b_ + 1023u) << 52;                                              \\
        memcpy(&two_k_, &b_, 8);                                              \\
        (out) = p_ * two_k_;                                                  \\
    }

    /* Merge one tile row (B components) into the log-sum-exp state (m, s):
       v_n = c_n - q_n / 2; terms below m - cutoff are not exponentiated. */
    #define VAEAS_LSE_BODY(T) {                                               \\
        Py_ssize_t n_;                                                       \\
        double bm = -INFINITY, mm = *m, s = *sum, acc = 0.0, thr, lo;        \\
        _Pragma("omp simd reduction(max:bm)")                                \\
        for (n_ = 0; n_ < B; ++n_) {                                         \\
            const double v = c[n_] - 0.5 * (double)qp[n_];                   \\
            bm = v > bm ? v : bm;                                            \\
        }                                                                    \\
        if (bm > mm) { s *= exp(mm - bm); mm = bm; }                         \\
        if (mm == -INFINITY) return;                                         \\
        thr = mm - cutoff;                                                   \\
        lo = -cutoff - 1.0;                                                  \\
        _Pragma("omp simd reduction(+:acc)")                                 \\
        for (n_ = 0; n_ < B; ++n_) {                                         \\
            const double v = c[n_] - 0.5 * (double)qp[n_];                   \\
            double x = v - mm, e;                                            \\
            x = x < lo ? lo : x;                                             \\
            VAEAS_EXP_NEG(x, e)                                              \\
            acc += v > thr ? e : 0.0;                                        \\
        }                                                                    \\
        *m = mm; *sum = s + acc;                                             \\
    }
    #define VAEAS_LSE_ARGS(T) (const T* __restrict qp, const double* __restrict c, \\
        Py_ssize_t B, double cutoff, double* m, double* sum)

    static void vaeas_tile_f32_base VAEAS_TILE_ARGS(float) VAEAS_TILE_BODY(float)
    static void vaeas_tile_f64_base VAEAS_TILE_ARGS(double) VAEAS_TILE_BODY(double)
    static void vaeas_lse_f32_base VAEAS_LSE_ARGS(float) VAEAS_LSE_BODY(float)
    static void vaeas_lse_f64_base VAEAS_LSE_ARGS(double) VAEAS_LSE_BODY(double)

    #if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    #define VAEAS_DISPATCH 1
    #define VAEAS_AVX2 __attribute__((target("avx2,fma")))
    #define VAEAS_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
    VAEAS_AVX2 static void vaeas_tile_f32_avx2 VAEAS_TILE_ARGS(float) VAEAS_TILE_BODY(float)
    VAEAS_AVX2 static void vaeas_tile_f64_avx2 VAEAS_TILE_ARGS(double) VAEAS_TILE_BODY(double)
    VAEAS_AVX2 static void vaeas_lse_f32_avx2 VAEAS_LSE_ARGS(float) VAEAS_LSE_BODY(float)
    VAEAS_AVX2 static void vaeas_lse_f64_avx2 VAEAS_LSE_ARGS(double) VAEAS_LSE_BODY(double)
    VAEAS_AVX512 static void vaeas_tile_f32_avx512 VAEAS_TILE_ARGS(float) VAEAS_TILE_BODY(float)
    VAEAS_AVX512 static void vaeas_tile_f64_avx512 VAEAS_TILE_ARGS(double) VAEAS_TILE_BODY(double)
    VAEAS_AVX512 static void vaeas_lse_f32_avx512 VAEAS_LSE_ARGS(float) VAEAS_LSE_BODY(float)
    VAEAS_AVX512 static void vaeas_lse_f64_avx512 VAEAS_LSE_ARGS(double) VAEAS_LSE_BODY(double)
    #endif

    typedef void (*vaeas_tile_f32_t) VAEAS_TILE_ARGS(float);
    typedef void (*vaeas_tile_f64_t) VAEAS_TILE_ARGS(double);
    typedef void (*vaeas_lse_f32_t) VAEAS_LSE_ARGS(float);
    typedef void (*vaeas_lse_f64_t) VAEAS_LSE_ARGS(double);
    static vaeas_tile_f32_t vaeas_tile_f32 = vaeas_tile_f32_base;
    static vaeas_tile_f64_t vaeas_tile_f64 = vaeas_tile_f64_base;
    static vaeas_lse_f32_t vaeas_lse_f32 = vaeas_lse_f32_base;
    static vaeas_lse_f64_t vaeas_lse_f64 = vaeas_lse_f64_base;

    #define VAEAS_USE(v) vaeas_tile_f32 = vaeas_tile_f32_##v; vaeas_tile_f64 = vaeas_tile_f64_##v; \\
        vaeas_lse_f32 = vaeas_lse_f32_##v; vaeas_lse_f64 = vaeas_lse_f64_##v;

    /* Pick the widest instruction set the CPU has; returns its name. */
    static const char* vaeas_tile_select(int allow_simd) {
        VAEAS_USE(base)
    #ifdef VAEAS_DISPATCH
        if (!allow_simd) return "baseline";
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                && __builtin_cpu_supports("avx512dq")
                && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            VAEAS_USE(avx512)
            return "avx512";
        }
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            VAEAS_USE(avx2)
            return "avx2";
        }
    #endif
        return "baseline";
    }
    """
    void vaeas_tile_f32(const float* z, Py_ssize_t P, Py_ssize_t d, const float* muT,
                        const float* ivT, Py_ssize_t B, float* q) noexcept nogil
    void vaeas_tile_f64(const double* z, Py_ssize_t P, Py_ssize_t d, const double* muT,
                        const double* ivT, Py_ssize_t B, double* q) noexcept nogil
    void vaeas_lse_f32(const float* qp, const double* c, Py_ssize_t B, double cutoff,
                       double* m, double* s) noexcept nogil
    void vaeas_lse_f64(const double* qp, const double* c, Py_ssize_t B, double cutoff,
                       double* m, double* s) noexcept nogil
    const char* vaeas_tile_select(int allow_simd)

# Points per distance tile (the tile is _P x block_components).
cdef enum:
    _P = 4

SIMD = vaeas_tile_select(1).decode()


def select_simd(bint allow=True):
    """Use the widest SIMD distance tile the CPU supports (``allow=False``: plain C).

    Returns the name of the chosen variant ('avx512', 'avx2' or 'baseline').
    Meant for benchmarks and tests; results agree to rounding.
    """
    global SIMD
    SIMD = vaeas_tile_select(1 if allow else 0).decode()
    return SIMD


# ---------------------------------------------------------------- log-mean-exp

cdef inline void _lse_row(const floating* a, Py_ssize_t k,
                          double* run_max, double* run_sum) noexcept nogil:
    """Merge a[0:k] into the state (m, s): sum exp = s * exp(m)."""
    cdef Py_ssize_t j
    cdef double m = run_max[0], cm = -INFINITY, s, v
    for j in range(k):
        v = a[j]
        if v > cm:
            cm = v
    if cm > m:
        if cm == INFINITY:
            run_max[0] = INFINITY
            run_sum[0] = 1.0
            return
        s = run_sum[0] * exp(m - cm)   # 0 when the state was empty (m = -inf)
        m = cm
    else:
        s = run_sum[0]
    if m == -INFINITY or m == INFINITY:
        # Nothing but -inf so far (s stays 0), or already +inf.  A NaN in
        # the chunk still has to reach the result.
        for j in range(k):
            if a[j] != a[j]:
                s = a[j]
        run_sum[0] = s
        return
    for j in range(k):
        s += exp(a[j] - m)             # NaN propagates
    run_max[0] = m
    run_sum[0] = s


def lse_accumulate(const floating[:, ::1] chunk,   # IN (n, kc) new columns
                   double[::1] run_max,            # IN/OUT (n,) running max
                   double[::1] run_sum,            # IN/OUT (n,) sum exp(. - run_max)
                   int n_threads=1):
    """Merge ``chunk`` into the running log-sum-exp state of each row.

    Invariant: ``sum over all columns seen of exp(a) = run_sum * exp(run_max)``.
    Initialise with run_max = -inf, run_sum = 0; the log-mean-exp of a row of
    k columns is then ``run_max + log(run_sum) - log(k)``.
    """
    cdef Py_ssize_t i, n = chunk.shape[0], k = chunk.shape[1]
    if run_max.shape[0] != n or run_sum.shape[0] != n:
        raise ValueError("lse_accumulate: run_max and run_sum must have length chunk.shape[0]")
    if k == 0 or n == 0:
        return
    cdef int nt = n_threads if n * k >= 16384 else 1
    with nogil:
        for i in prange(n, num_threads=nt, schedule="static"):
            _lse_row(&chunk[i, 0], k, &run_max[i], &run_sum[i])


def logmeanexp_rows(const floating[:, ::1] A,   # IN (n, k)
                    int n_threads=1):
    """``out[i] = log (1/k) sum_j exp(A[i, j])`` in float64, shape (n,).

    Rows of only -inf give -inf; a +inf gives +inf; NaN propagates.
    """
    cdef Py_ssize_t i, n = A.shape[0], k = A.shape[1]
    if k == 0:
        raise ValueError("logmeanexp_rows: A must have at least one column")
    out = np.empty(n, dtype=np.float64)
    run_max = np.full(n, -np.inf)
    run_sum = np.zeros(n)
    cdef double[::1] o = out, rm = run_max, rs = run_sum
    cdef double logk = log(<double>k)
    cdef int nt = n_threads if n * k >= 16384 else 1
    with nogil:
        for i in prange(n, num_threads=nt, schedule="static"):
            _lse_row(&A[i, 0], k, &rm[i], &rs[i])
            o[i] = rm[i] + log(rs[i]) - logk
    return out


# ------------------------------------------------------- Gaussian mixture density

cdef inline void _tile(const floating* z, Py_ssize_t d, const floating* muT,
                       const floating* ivT, Py_ssize_t B, floating* q) noexcept nogil:
    if floating is float:
        vaeas_tile_f32(z, _P, d, muT, ivT, B, q)
    else:
        vaeas_tile_f64(z, _P, d, muT, ivT, B, q)


cdef inline void _lse(const floating* qp, const double* c, Py_ssize_t B, double cutoff,
                      double* m, double* s) noexcept nogil:
    if floating is float:
        vaeas_lse_f32(qp, c, B, cutoff, m, s)
    else:
        vaeas_lse_f64(qp, c, B, cutoff, m, s)


cdef int _gmm_points(const floating* Z, Py_ssize_t p0, Py_ssize_t p1, Py_ssize_t d,
                     const floating* muT, const floating* ivT, const double* cst,
                     Py_ssize_t nblocks, Py_ssize_t B, double cutoff, double logN,
                     double* out, Py_ssize_t M) noexcept nogil:
    """Mixture log-density of the points p0 <= m < p1 (p1 - p0 a multiple of _P)."""
    cdef Py_ssize_t np_ = p1 - p0, cb, g, g0, p, n
    cdef floating* q = <floating*> malloc(_P * B * sizeof(floating))
    cdef double* rm = <double*> malloc(np_ * sizeof(double))
    cdef double* rs = <double*> malloc(np_ * sizeof(double))
    cdef const double* c
    if q == NULL or rm == NULL or rs == NULL:
        free(q); free(rm); free(rs)
        return -1
    for p in range(np_):
        rm[p] = -INFINITY
        rs[p] = 0.0
    for cb in range(nblocks):
        c = cst + cb * B
        for g0 in range(np_ // _P):
            g = g0 * _P
            _tile(Z + (p0 + g) * d, d, muT + cb * d * B, ivT + cb * d * B, B, q)
            for p in range(_P):
                _lse(q + p * B, c, B, cutoff, &rm[g + p], &rs[g + p])
    for p in range(np_):
        if p0 + p < M:
            out[p0 + p] = rm[p] + log(rs[p]) - logN
    free(q); free(rm); free(rs)
    return 0


def _gmm_core(const floating[:, ::1] Z,     # IN (Mp, d) points, Mp a multiple of _P
              const floating[:, ::1] muT,   # IN (nblocks * d, B) block-transposed means
              const floating[:, ::1] ivT,   # IN (nblocks * d, B) inverse variances
              const double[::1] cst,        # IN (nblocks * B,) log-normalisers (-inf: padding)
              double[::1] out,              # OUT (M,) log-densities
              Py_ssize_t n_components, Py_ssize_t block_points, int n_threads):
    cdef Py_ssize_t Mp = Z.shape[0], d = Z.shape[1], B = muT.shape[1]
    cdef Py_ssize_t nblocks = cst.shape[0] // B, M = out.shape[0]
    cdef Py_ssize_t nbp = (Mp + block_points - 1) // block_points, ib, p0, p1
    cdef double logN = log(<double>n_components)
    cdef double cutoff = min(40.0 + logN, 700.0)
    cdef int nt = n_threads if Mp * nblocks * B * d >= 1000000 else 1
    cdef int failed = 0, r
    if Mp == 0:
        return
    with nogil:
        for ib in prange(nbp, num_threads=nt, schedule="dynamic"):
            p0 = ib * block_points
            p1 = p0 + block_points
            if p1 > Mp:
                p1 = Mp
            r = _gmm_points(&Z[0, 0], p0, p1, d, &muT[0, 0], &ivT[0, 0], &cst[0],
                            nblocks, B, cutoff, logN, &out[0], M)
            if r != 0:
                failed += 1
    if failed:
        raise MemoryError("gmm_logdensity: could not allocate a thread's work buffers")


def gmm_logdensity(Z, mu, logvar, int n_threads=1, Py_ssize_t block_components=256,
                   Py_ssize_t block_points=64):
    """Log-density of the equal-weight diagonal Gaussian mixture at each point.

    Z: (M, d) points; mu, logvar: (N, d) component means and log-variances.
    Returns float64 (M,) with ``out[m] = log (1/N) sum_n N(Z[m]; mu[n],
    diag exp(logvar[n]))``.  Works in float32 when all inputs are float32
    (squared distances in float32, log-sum-exp in float64), else in float64.
    Memory: the inputs' block-transposed copies (2 N d values) plus one small
    tile per thread; never M x N.
    """
    Z = np.asarray(Z)
    mu = np.asarray(mu)
    logvar = np.asarray(logvar)
    if Z.ndim != 2 or mu.ndim != 2 or mu.shape != logvar.shape or Z.shape[1] != mu.shape[1]:
        raise ValueError("gmm_logdensity: need Z (M, d), mu (N, d), logvar (N, d); got "
                         f"{Z.shape}, {mu.shape}, {logvar.shape}")
    if mu.shape[0] == 0:
        raise ValueError("gmm_logdensity: the mixture needs at least one component")
    if block_components < 1 or block_points < 1:
        raise ValueError("gmm_logdensity: block sizes must be >= 1")
    dt = np.float32 if (Z.dtype == np.float32 and mu.dtype == np.float32
                        and logvar.dtype == np.float32) else np.float64
    cdef Py_ssize_t M = Z.shape[0], N = mu.shape[0], d = mu.shape[1]
    cdef Py_ssize_t B = min(block_components, N)
    B = ((B + 15) // 16) * 16                     # whole SIMD vectors
    cdef Py_ssize_t nblocks = (N + B - 1) // B
    block_points = ((block_points + _P - 1) // _P) * _P
    lv = logvar.astype(np.float64, copy=False)
    cst = np.full(nblocks * B, -np.inf)
    cst[:N] = -0.5 * (d * log(2.0 * M_PI) + lv.sum(axis=1))
    muT = np.zeros((nblocks * B, d), dtype=dt)
    muT[:N] = mu
    ivT = np.zeros((nblocks * B, d), dtype=dt)
    ivT[:N] = np.exp(-lv)
    muT = np.ascontiguousarray(muT.reshape(nblocks, B, d).transpose(0, 2, 1)).reshape(-1, B)
    ivT = np.ascontiguousarray(ivT.reshape(nblocks, B, d).transpose(0, 2, 1)).reshape(-1, B)
    Mp = ((M + _P - 1) // _P) * _P
    Zp = np.zeros((Mp, d), dtype=dt)
    Zp[:M] = Z
    out = np.empty(M, dtype=np.float64)
    _gmm_core(Zp, muT, ivT, cst, out, N, block_points, n_threads)
    return out


# ------------------------------------- importance weights: prior over posterior

def gaussian_log_ratio(const float[:, :, ::1] z,      # IN  (n, s, d) samples, float32
                       const double[:, ::1] mu,       # IN  (n, d) posterior means
                       const double[:, ::1] logvar,   # IN  (n, d) posterior log-variances
                       const double[:, ::1] ivar,     # IN  (n, d) exp(-logvar)
                       double[:, ::1] out,            # OUT (n, s)
                       int n_threads=1):
    """``out[i, j] = log N(z_ij; 0, I) - log N(z_ij; mu_i, diag exp(logvar_i))``.

    The log 2 pi terms cancel::

        out[i, j] = 0.5 sum_k [logvar_ik + (z_ijk - mu_ik)^2 ivar_ik - z_ijk^2]

    in float64 at the float32 samples (the z the decoder saw).  One pass, no
    temporaries; parallel over the n s samples.  NumPy reference:
    ``std_normal_logpdf(z) - diag_gaussian_logpdf(z, mu, logvar)``
    (``vaeas_np.metrics._gaussian``).
    """
    cdef Py_ssize_t n = z.shape[0], s = z.shape[1], d = z.shape[2]
    if (mu.shape[0] != n or mu.shape[1] != d or logvar.shape[0] != n or logvar.shape[1] != d
            or ivar.shape[0] != n or ivar.shape[1] != d):
        raise ValueError(f"gaussian_log_ratio: z is ({n}, {s}, {d}) but mu, logvar, ivar are "
                         f"({mu.shape[0]}, {mu.shape[1]}), ({logvar.shape[0]}, {logvar.shape[1]}), "
                         f"({ivar.shape[0]}, {ivar.shape[1]}); they must be ({n}, {d})")
    if out.shape[0] != n or out.shape[1] != s:
        raise ValueError(f"gaussian_log_ratio: out must be ({n}, {s}), "
                         f"got ({out.shape[0]}, {out.shape[1]})")
    cdef Py_ssize_t r, i, j, k
    cdef double acc, zk, t
    cdef const float* zr
    cdef const double* m
    cdef const double* lv
    cdef const double* iv
    cdef int nt = n_threads if n * s * d >= 65536 else 1
    with nogil:
        for r in prange(n * s, num_threads=nt, schedule="static"):
            i = r // s
            j = r - i * s
            zr = &z[i, j, 0]
            m = &mu[i, 0]
            lv = &logvar[i, 0]
            iv = &ivar[i, 0]
            acc = 0.0
            for k in range(d):
                zk = zr[k]
                t = zk - m[k]
                acc = acc + (lv[k] + t * t * iv[k] - zk * zk)
            out[i, j] = 0.5 * acc
