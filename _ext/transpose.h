/* Transposes of the backward pass, with the ReLU mask fused in:
 *
 *     dst[b, k] = src[k, b] * 1[y[b, k] > 0]        (y == NULL: no mask)
 *     src_masked[k, b] = the same value              (src_masked == NULL: not written;
 *                                                     it may be src itself)
 *
 * src is (n, B) row-major, dst and y are (B, n) row-major.  A layer's input
 * gradient is computed as its transpose, dx^T = W delta^T (an (n_in, B) output),
 * because OpenBLAS runs that GEMM 12-18 % faster than dx = delta W^T at the MNIST
 * shapes (128 x 500 x 500: 0.375 against 0.423 ms, 2 threads); this puts it back in
 * rows, and applies the next layer's ReLU derivative in the same pass.
 *
 * ``vaeas_transpose_mask_f32`` handles the output columns [k0, k1) for every row
 * b (the caller splits the columns across threads).  With AVX-512F, full 16 x 16
 * tiles are transposed in registers (16 loads, 64 shuffles, 16 masked stores);
 * the rest, and everything when ``simd`` is 0 or AVX-512F is missing, goes
 * element by element.  Both give the same bits (a transpose and a select).
 */
#ifndef VAEAS_TRANSPOSE_H
#define VAEAS_TRANSPOSE_H
#include <stddef.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define VAEAS_TRANSPOSE_TILE 16

#define VAEAS_TRANSPOSE_SCALAR(T)                                                     \
    for (ptrdiff_t b = b0; b < b1; b++)                                               \
        for (ptrdiff_t k = k0; k < k1; k++) {                                         \
            T s = src[k * B + b];                                                     \
            s = (y == NULL || y[b * n + k] > 0) ? s : (T)0;                           \
            dst[b * n + k] = s;                                                       \
            if (src_masked != NULL) src_masked[k * B + b] = s;                        \
        }

/* scalar block: rows [b0, b1), columns [k0, k1) */
static inline void vaeas_transpose_block_f32(const float* src, const float* y, float* dst,
                                             float* src_masked, ptrdiff_t n, ptrdiff_t B,
                                             ptrdiff_t b0,
                                             ptrdiff_t b1, ptrdiff_t k0, ptrdiff_t k1)
{
    VAEAS_TRANSPOSE_SCALAR(float)
}

static inline void vaeas_transpose_block_f64(const double* src, const double* y, double* dst,
                                             double* src_masked, ptrdiff_t n, ptrdiff_t B,
                                             ptrdiff_t b0,
                                             ptrdiff_t b1, ptrdiff_t k0, ptrdiff_t k1)
{
    VAEAS_TRANSPOSE_SCALAR(double)
}

#if defined(__AVX512F__)
/* r[i] holds row i of a 16 x 16 tile; afterwards r[j] holds its column j */
static inline void vaeas_tr16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++) {
            t[8 * h + j] = _mm512_shuffle_f32x4(r[8 * h + j], r[8 * h + 4 + j], 0x88);
            t[8 * h + 4 + j] = _mm512_shuffle_f32x4(r[8 * h + j], r[8 * h + 4 + j], 0xDD);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    }
}
#endif

static inline void vaeas_transpose_mask_f32(const float* src, const float* y, float* dst,
                                            float* src_masked, ptrdiff_t n, ptrdiff_t B,
                                            ptrdiff_t k0, ptrdiff_t k1, int simd)
{
    ptrdiff_t bf = 0;   /* rows [0, bf) done in tiles */
#if defined(__AVX512F__)
    if (simd && k1 - k0 == VAEAS_TRANSPOSE_TILE) {
        const __m512 zero = _mm512_setzero_ps();
        for (; bf + VAEAS_TRANSPOSE_TILE <= B; bf += VAEAS_TRANSPOSE_TILE) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_loadu_ps(src + (k0 + i) * B + bf);
            vaeas_tr16(r);
            for (int j = 0; j < 16; j++) {
                float* d = dst + (bf + j) * n + k0;
                if (y == NULL) {
                    _mm512_storeu_ps(d, r[j]);
                } else {
                    __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(y + (bf + j) * n + k0),
                                                     zero, _CMP_GT_OQ);
                    r[j] = _mm512_maskz_mov_ps(m, r[j]);
                    _mm512_storeu_ps(d, r[j]);
                }
            }
            if (src_masked != NULL) {       /* the masked tile, back in src's layout */
                vaeas_tr16(r);
                for (int i = 0; i < 16; i++)
                    _mm512_storeu_ps(src_masked + (k0 + i) * B + bf, r[i]);
            }
        }
    }
#else
    (void)simd;
#endif
    vaeas_transpose_block_f32(src, y, dst, src_masked, n, B, bf, B, k0, k1);
}

static inline void vaeas_transpose_mask_f64(const double* src, const double* y, double* dst,
                                            double* src_masked, ptrdiff_t n, ptrdiff_t B,
                                            ptrdiff_t k0, ptrdiff_t k1, int simd)
{
    (void)simd;
    vaeas_transpose_block_f64(src, y, dst, src_masked, n, B, 0, B, k0, k1);
}

#endif
