/* The float32 Adam update, written once in AVX-512 for the two places that apply it:
 * the fused Adam pass (adam_span.pxi: optim.adam_step, the tree nodes' sparse rows) and
 * the weight-gradient GEMM's epilogue (gemm.h: the update applied to each block of
 * dL/dW while it is still in registers).  Both call vaeas_adam_vec, so a step comes
 * out the same bits whichever of them applied it.
 *
 *     g  = scale * grad
 *     m  = b1 m + (1 - b1) g
 *     v  = b2 v + (1 - b2) g g
 *     m, v below the smallest normal float -> 0 (see adam_span.pxi: subnormals)
 *     p -= step_size m / (sqrt(c2 v) + eps),
 *     step_size = lr / (1 - b1^t), c2 = 1 / (1 - b2^t)
 *
 * Without AVX-512F (VAEAS_ADAM_AVX512 == 0) adam_span.pxi keeps its plain loop.
 */
#ifndef VAEAS_ADAM_H
#define VAEAS_ADAM_H
#include <math.h>
#include <stddef.h>
#include <float.h>

typedef struct {
    float scale, b1, b2, a1, a2, step_size, c2, eps;
} vaeas_adam_t;

/* the constants of step t (counted from 1), each rounded to float once */
static inline vaeas_adam_t vaeas_adam_consts(double lr, double beta1, double beta2,
                                             double eps, long step, double scale)
{
    vaeas_adam_t c;
    c.scale = (float)scale;
    c.b1 = (float)beta1;
    c.b2 = (float)beta2;
    c.a1 = 1.0f - c.b1;
    c.a2 = 1.0f - c.b2;
    c.step_size = (float)(lr / (1.0 - pow(beta1, (double)step)));
    c.c2 = (float)(1.0 / (1.0 - pow(beta2, (double)step)));
    c.eps = (float)eps;
    return c;
}

#if defined(__AVX512F__)
#define VAEAS_ADAM_AVX512 1
#include <immintrin.h>

/* one vector of 16 elements (those in mask k) of p, m, v with gradient g (before scale) */
static inline __attribute__((always_inline)) void
vaeas_adam_vec(float *p, float *m, float *v, __m512 g, __mmask16 k, const vaeas_adam_t *c)
{
    const __m512 tiny = _mm512_set1_ps(FLT_MIN);
    __m512 gi = _mm512_mul_ps(_mm512_set1_ps(c->scale), g);
    __m512 mi = _mm512_fmadd_ps(_mm512_set1_ps(c->b1), _mm512_maskz_loadu_ps(k, m),
                                _mm512_mul_ps(_mm512_set1_ps(c->a1), gi));
    __m512 vi = _mm512_fmadd_ps(_mm512_set1_ps(c->b2), _mm512_maskz_loadu_ps(k, v),
                                _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(c->a2), gi), gi));
    /* flush below FLT_MIN (|m|, and v >= 0) to zero */
    mi = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_abs_ps(mi), tiny, _CMP_GE_OQ), mi);
    vi = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(vi, tiny, _CMP_GE_OQ), vi);
    _mm512_mask_storeu_ps(m, k, mi);
    _mm512_mask_storeu_ps(v, k, vi);
    __m512 den = _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(vi, _mm512_set1_ps(c->c2))),
                               _mm512_set1_ps(c->eps));
    __m512 step = _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(c->step_size), mi), den);
    _mm512_mask_storeu_ps(p, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, p), step));
}

/* n contiguous elements */
static inline void vaeas_adam_span(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                                   const vaeas_adam_t *c)
{
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16)
        vaeas_adam_vec(p + i, m + i, v + i, _mm512_loadu_ps(g + i), (__mmask16)0xFFFF, c);
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        vaeas_adam_vec(p + i, m + i, v + i, _mm512_maskz_loadu_ps(k, g + i), k, c);
    }
}
#else
#define VAEAS_ADAM_AVX512 0
/* never called: adam_span.pxi runs its own loop when VAEAS_ADAM_AVX512 is 0 */
static inline void vaeas_adam_span(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                                   const vaeas_adam_t *c)
{
    (void)p; (void)g; (void)m; (void)v; (void)n; (void)c;
}
#endif
#endif
