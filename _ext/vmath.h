/* Vectorisable float32 elementary functions for the compiled kernels (GCC vectorises
 * loops that call them; libm's expf/log1pf are opaque calls and keep loops scalar).
 *
 * vaeas_expf_nonpos: exp(x) for x <= 0, Cephes' expf (Cody-Waite reduction
 * x = n ln2 + r, degree-6 polynomial on |r| <= ln2/2): max relative error 1.7e-7
 * measured against double exp over [-87, 0], i.e. within 2 ulp of the correctly
 * rounded float.  Inputs below -87.3 (results under the smallest normal float)
 * give exp(-87.3) ~ 1.2e-38.
 *
 * vaeas_log1pf_unit: log(1 + u) for u in [0, 1], Cephes' logf polynomial on the
 * mantissa of y = 1 + u (in [sqrt(1/2), sqrt(2)) after halving), plus the rounding
 * error of 1 + u (log1p(u) = log(y) - ((y - 1) - u) / y), so tiny u keep their digits.
 *
 * vaeas_dot_f32 / vaeas_dot_f64: dot products of contiguous rows, each of 32 lanes
 * accumulating its own partial sum (no reassociation needed); in float32 the lanes are
 * halved as vectors to 8, added in double (the same loop in Cython with 8 scalar partial
 * sums stayed scalar: about 1.3 cycles per element in the hierarchical-softmax forward).
 *
 * vaeas_bernoulli_row_f32: one row of the Bernoulli log-likelihood from logits,
 * sum_d x_d l_d - softplus(l_d), softplus(l) = max(l, 0) + log1p(exp(-|l|)),
 * float sums within blocks of 128 elements, double across them; optionally the gradient of -(that) / B in the same pass:
 * dl_d = scale (sigmoid(l_d) - x_d), sigmoid from the same exp(-|l|).
 */
#ifndef VAEAS_VMATH_H
#define VAEAS_VMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>

static inline float vaeas_expf_nonpos(float x)
{
    x = x < -87.33654f ? -87.33654f : x;   /* NaN stays NaN (and reaches the row sum) */
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (floorf kept GCC from vectorising
     * the loop: it stayed a scalar vrndscaless); |r| <= ln2/2 holds either way */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

#define VAEAS_LANES 32

static inline double vaeas_dot_f32(const float *a, const float *b, ptrdiff_t n)
{
    float acc[VAEAS_LANES] = {0};
    ptrdiff_t i = 0, nv = n - n % VAEAS_LANES;
    for (; i < nv; i += VAEAS_LANES)
        for (int k = 0; k < VAEAS_LANES; k++)
            acc[k] += a[i + k] * b[i + k];
    for (int k = 0; k < n - nv; k++)          /* the tail into the first lanes */
        acc[k] += a[nv + k] * b[nv + k];
    /* lanes halved as vectors (a serial sum of 32 lanes in double, and a scalar
     * double tail, took about two thirds of a 500-element dot) */
    for (int k = 0; k < VAEAS_LANES / 2; k++)
        acc[k] += acc[k + VAEAS_LANES / 2];
    for (int k = 0; k < VAEAS_LANES / 4; k++)
        acc[k] += acc[k + VAEAS_LANES / 4];
    double s = 0.0;
    for (int k = 0; k < VAEAS_LANES / 4; k++)
        s += acc[k];
    return s;
}

static inline double vaeas_dot_f64(const double *a, const double *b, ptrdiff_t n)
{
    double acc[VAEAS_LANES / 2] = {0};
    ptrdiff_t i = 0, nv = n - n % (VAEAS_LANES / 2);
    for (; i < nv; i += VAEAS_LANES / 2)
        for (int k = 0; k < VAEAS_LANES / 2; k++)
            acc[k] += a[i + k] * b[i + k];
    double s = 0.0;
    for (int k = 0; k < VAEAS_LANES / 2; k++)
        s += acc[k];
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline float vaeas_log1pf_unit(float u)
{
    float y = 1.0f + u;
    float c = (y - 1.0f) - u;
    int big = y > 1.41421356237f;
    float m = big ? 0.5f * y : y;
    float e = big ? 1.0f : 0.0f;
    float x = m - 1.0f;
    float z = x * x;
    float p = 7.0376836292e-2f;
    p = p * x - 1.1514610310e-1f;
    p = p * x + 1.1676998740e-1f;
    p = p * x - 1.2420140846e-1f;
    p = p * x + 1.4249322787e-1f;
    p = p * x - 1.6668057665e-1f;
    p = p * x + 2.0000714765e-1f;
    p = p * x - 2.4999993993e-1f;
    p = p * x + 3.3333331174e-1f;
    float r = p * x * z;
    r += -2.12194440e-4f * e;
    r += -0.5f * z;
    r = x + r;
    r += 0.693359375f * e;
    return r - c / y;
}

static inline float vaeas_softplusf(float l)
{
    return (l > 0.0f ? l : 0.0f) + vaeas_log1pf_unit(vaeas_expf_nonpos(-fabsf(l)));
}

/* One path of the hierarchical softmax: IN/OUT s (L,) the node scores on entry, their
 * sigmoids on exit; IN code (L,) 1 = left.  Returns sum_j log sigmoid(sign_j s_j),
 * sign_j = 2 code_j - 1, with one exp per node: e = exp(-|s|), log sigmoid(t) =
 * min(t, 0) - log1p(e), sigmoid(s) = 1 / (1 + e) for s >= 0 and e / (1 + e) otherwise.
 * The L nodes form one SIMD loop (libm's exp and log1p per node, in double, took
 * about as long as the node's 500-element dot product). */
static inline double vaeas_path_logsig_f32(float *restrict s, const signed char *restrict code,
                                           ptrdiff_t L)
{
    float acc = 0.0f;
    #pragma omp simd reduction(+:acc)
    for (ptrdiff_t j = 0; j < L; j++) {
        float sj = s[j];
        float e = vaeas_expf_nonpos(-fabsf(sj));
        float t = code[j] ? sj : -sj;
        acc += (t < 0.0f ? t : 0.0f) - vaeas_log1pf_unit(e);
        s[j] = (sj >= 0.0f ? 1.0f : e) / (1.0f + e);
    }
    return acc;
}

/* IN x, l (D,); OUT dl (D,) when not NULL.  Returns sum_d x_d l_d - softplus(l_d).
 * Blocks of 128 elements: within a block an OpenMP SIMD reduction in float (GCC
 * vectorises these loops only under `omp simd`; measured scalar otherwise), the
 * blocks' sums added in double (a float partial sum holds at most 128 / 16 = 8 terms
 * per vector lane). */
static inline double vaeas_bernoulli_row_f32(const float *restrict x, const float *restrict l,
                                             ptrdiff_t D, float *restrict dl, float scale)
{
    double s = 0.0;
    for (ptrdiff_t v0 = 0; v0 < D; v0 += 128) {
        ptrdiff_t vend = v0 + 128 < D ? v0 + 128 : D;
        float part = 0.0f;
        if (dl == NULL) {
            #pragma omp simd reduction(+:part)
            for (ptrdiff_t v = v0; v < vend; v++)
                part += x[v] * l[v] - vaeas_softplusf(l[v]);
        } else {
            #pragma omp simd reduction(+:part)
            for (ptrdiff_t v = v0; v < vend; v++) {
                float li = l[v], xi = x[v];
                float e = vaeas_expf_nonpos(-fabsf(li));
                part += xi * li - ((li > 0.0f ? li : 0.0f) + vaeas_log1pf_unit(e));
                dl[v] = scale * ((li >= 0.0f ? 1.0f : e) / (1.0f + e) - xi);
            }
        }
        s += part;
    }
    return s;
}

/* The same in double with libm (float64 models: tests and gradient checks). */
static inline double vaeas_bernoulli_row_f64(const double *restrict x, const double *restrict l,
                                      ptrdiff_t D, double *restrict dl, double scale)
{
    double s = 0.0;
    for (ptrdiff_t v = 0; v < D; v++) {
        double li = l[v], e = exp(-fabs(li));
        s += x[v] * li - ((li > 0.0 ? li : 0.0) + log1p(e));
        if (dl != NULL)
            dl[v] = scale * ((li >= 0.0 ? 1.0 : e) / (1.0 + e) - x[v]);
    }
    return s;
}
/* Prefetch the cache lines of [p, p + bytes) into L1 (for writing when write != 0).
 * The tree softmax's node rows are 2 KB each, scattered over a 110 MB table: without
 * it each row's first lines wait on DRAM while the previous row's work is done. */
static inline void vaeas_prefetch_span(const void *p, ptrdiff_t bytes, int write)
{
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + (uintptr_t)bytes;
    if (write)
        for (; a < end; a += 64) __builtin_prefetch((const void *)a, 1, 3);
    else
        for (; a < end; a += 64) __builtin_prefetch((const void *)a, 0, 3);
}

#endif
