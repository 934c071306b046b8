/* Products with a sparse left operand, one output row at a time:
 *
 *     o[0:w] = sum_{p < n} v[p] * M[r[p], 0:w]      (a combination of rows of M)
 *
 * ``vaeas_rowcomb_f32/_f64``.  The encoder's first layer uses it twice: its forward
 * (out = x W: row i of out combines the rows of W that x's row i uses) and its weight
 * gradient (dW = x^T delta: row j of dW combines the rows of delta whose x[:, j] is
 * nonzero).  The caller splits the w = H output columns into blocks of
 * VAEAS_SPARSE_CH and runs blocks in parallel (disjoint outputs; each thread reads
 * only its columns of M: 784 x 128 floats = 400 KB, in L2).
 *
 * The sum over p runs in the order given, so results do not depend on the thread
 * count.  With GCC or Clang the columns are held in 64-byte vector accumulators
 * (8 of them for a 128-float block; a plain local array of 128 floats stayed on the
 * stack and ran at about a fifth of this speed); other compilers get the scalar loop.
 */
#ifndef VAEAS_SPARSE_ROWS_H
#define VAEAS_SPARSE_ROWS_H
#include <stddef.h>
#include <stdint.h>

#define VAEAS_SPARSE_CH 128

#if defined(__GNUC__) || defined(__clang__)
typedef float vaeas_vf32 __attribute__((vector_size(64), aligned(4)));
typedef double vaeas_vf64 __attribute__((vector_size(64), aligned(8)));

/* NA accumulators of vector type VT (L lanes): columns [c, c + NA L) of o */
#define VAEAS_ROWCOMB_PASS(VT, T, NA)                                                  \
    {                                                                                   \
        VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0},        \
           a7 = {0};                                                                    \
        for (int32_t p = 0; p < n; p++) {                                               \
            const T* m = M + (ptrdiff_t)r[p] * ldm + c;                                 \
            const T s = v[p];                                                           \
            a0 += s * *(const VT*)(m);                                                  \
            if (NA > 1) a1 += s * *(const VT*)(m + L);                                  \
            if (NA > 2) { a2 += s * *(const VT*)(m + 2 * L);                            \
                          a3 += s * *(const VT*)(m + 3 * L); }                          \
            if (NA > 4) { a4 += s * *(const VT*)(m + 4 * L);                            \
                          a5 += s * *(const VT*)(m + 5 * L);                            \
                          a6 += s * *(const VT*)(m + 6 * L);                            \
                          a7 += s * *(const VT*)(m + 7 * L); }                          \
        }                                                                               \
        *(VT*)(o + c) = a0;                                                             \
        if (NA > 1) *(VT*)(o + c + L) = a1;                                             \
        if (NA > 2) { *(VT*)(o + c + 2 * L) = a2; *(VT*)(o + c + 3 * L) = a3; }         \
        if (NA > 4) { *(VT*)(o + c + 4 * L) = a4; *(VT*)(o + c + 5 * L) = a5;           \
                      *(VT*)(o + c + 6 * L) = a6; *(VT*)(o + c + 7 * L) = a7; }         \
        c += NA * L;                                                                    \
    }

#define VAEAS_DEFINE_ROWCOMB(NAME, T, VT)                                              \
static inline void NAME(const int32_t* r, const T* v, int32_t n, const T* M,           \
                        ptrdiff_t ldm, ptrdiff_t w, T* o)                               \
{                                                                                       \
    enum { L = (int)(64 / sizeof(T)) };                                                 \
    ptrdiff_t c = 0;                                                                    \
    while (c + 8 * L <= w) VAEAS_ROWCOMB_PASS(VT, T, 8)                                 \
    if (c + 4 * L <= w) VAEAS_ROWCOMB_PASS(VT, T, 4)                                    \
    if (c + 2 * L <= w) VAEAS_ROWCOMB_PASS(VT, T, 2)                                    \
    if (c + L <= w) VAEAS_ROWCOMB_PASS(VT, T, 1)                                        \
    if (c < w) {                                   /* fewer than L columns left */      \
        T acc[64 / sizeof(T)] = {0};                                                    \
        for (int32_t p = 0; p < n; p++) {                                               \
            const T* m = M + (ptrdiff_t)r[p] * ldm;                                     \
            for (ptrdiff_t k = c; k < w; k++) acc[k - c] += v[p] * m[k];                \
        }                                                                               \
        for (ptrdiff_t k = c; k < w; k++) o[k] = acc[k - c];                            \
    }                                                                                   \
}
#else
#define VAEAS_DEFINE_ROWCOMB(NAME, T, VT)                                              \
static inline void NAME(const int32_t* r, const T* v, int32_t n, const T* M,           \
                        ptrdiff_t ldm, ptrdiff_t w, T* o)                               \
{                                                                                       \
    for (ptrdiff_t k = 0; k < w; k++) o[k] = 0;                                         \
    for (int32_t p = 0; p < n; p++) {                                                   \
        const T* m = M + (ptrdiff_t)r[p] * ldm;                                         \
        for (ptrdiff_t k = 0; k < w; k++) o[k] += v[p] * m[k];                          \
    }                                                                                   \
}
#endif

#if defined(__AVX512F__)
#include <immintrin.h>
/* AVX-512: blocks of 128 columns in 8 zmm accumulators; the last block's partial
 * vector uses masked loads and stores (the vector-extension passes of 64, 32 and 16
 * columns and a scalar rest ran that block about 3x slower per column). */
#define VAEAS_ACC(k, a)                                                                \
    if (na > k) a = _mm512_fmadd_ps(s, (k == na - 1) ? _mm512_maskz_loadu_ps(last, m + 16 * k) \
                                                      : _mm512_loadu_ps(m + 16 * k), a);
#define VAEAS_STORE(k, a)                                                              \
    if (na > k) { if (k == na - 1) _mm512_mask_storeu_ps(o + c + 16 * k, last, a);       \
                  else _mm512_storeu_ps(o + c + 16 * k, a); }
static inline void vaeas_rowcomb_f32(const int32_t* r, const float* v, int32_t n,
                                     const float* M, ptrdiff_t ldm, ptrdiff_t w, float* o)
{
    for (ptrdiff_t c = 0; c < w; c += 128) {
        const ptrdiff_t rem = w - c;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
               a6 = a0, a7 = a0;
        if (rem >= 128) {
            for (int32_t p = 0; p < n; p++) {
                const float* m = M + (ptrdiff_t)r[p] * ldm + c;
                const __m512 s = _mm512_set1_ps(v[p]);
                a0 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m), a0);
                a1 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m + 16), a1);
                a2 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m + 32), a2);
                a3 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m + 48), a3);
                a4 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m + 64), a4);
                a5 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m + 80), a5);
                a6 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m + 96), a6);
                a7 = _mm512_fmadd_ps(s, _mm512_loadu_ps(m + 112), a7);
            }
            _mm512_storeu_ps(o + c, a0);       _mm512_storeu_ps(o + c + 16, a1);
            _mm512_storeu_ps(o + c + 32, a2);  _mm512_storeu_ps(o + c + 48, a3);
            _mm512_storeu_ps(o + c + 64, a4);  _mm512_storeu_ps(o + c + 80, a5);
            _mm512_storeu_ps(o + c + 96, a6);  _mm512_storeu_ps(o + c + 112, a7);
        } else {
            const int na = (int)((rem + 15) / 16);
            const __mmask16 last = (rem % 16) ? (__mmask16)((1u << (rem % 16)) - 1)
                                              : (__mmask16)0xFFFF;
            for (int32_t p = 0; p < n; p++) {
                const float* m = M + (ptrdiff_t)r[p] * ldm + c;
                const __m512 s = _mm512_set1_ps(v[p]);
                VAEAS_ACC(0, a0) VAEAS_ACC(1, a1) VAEAS_ACC(2, a2) VAEAS_ACC(3, a3)
                VAEAS_ACC(4, a4) VAEAS_ACC(5, a5) VAEAS_ACC(6, a6) VAEAS_ACC(7, a7)
            }
            VAEAS_STORE(0, a0) VAEAS_STORE(1, a1) VAEAS_STORE(2, a2) VAEAS_STORE(3, a3)
            VAEAS_STORE(4, a4) VAEAS_STORE(5, a5) VAEAS_STORE(6, a6) VAEAS_STORE(7, a7)
        }
    }
}
#undef VAEAS_ACC
#undef VAEAS_STORE

/* One row of x (D floats) as its nonzeros: idx[0:c] their columns (ascending), val[0:c]
 * their values (x != 0: NaN counts, -0.0 does not, as in to_rows' loop); returns c.
 * 16 columns at a time, compressed in a register and stored whole (a compress-store to
 * memory is microcoded on Zen 4): idx and val must hold D elements; what lies past c
 * is scratch.  Measured (batch 128 x 784, 13 % ones, 2 threads): 66 us with the scalar
 * branch-free loop. */
#define VAEAS_NONZEROS_SIMD 1
static inline int32_t vaeas_nonzeros_f32(const float *x, ptrdiff_t D, int32_t *idx,
                                         float *val)
{
    int32_t c = 0;
    __m512i cols = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    const __m512 zero = _mm512_setzero_ps();
    ptrdiff_t j = 0;
    for (; j + 16 <= D; j += 16) {          /* c <= j: the whole vector fits at c */
        const __m512 v = _mm512_loadu_ps(x + j);
        const __mmask16 k = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ);
        _mm512_storeu_si512((void *)(idx + c), _mm512_maskz_compress_epi32(k, cols));
        _mm512_storeu_ps(val + c, _mm512_maskz_compress_ps(k, v));
        c += __builtin_popcount((unsigned)k);
        cols = _mm512_add_epi32(cols, sixteen);
    }
    if (j < D) {
        const __mmask16 tail = (__mmask16)((1u << (D - j)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(tail, x + j);
        const __mmask16 k = _mm512_mask_cmp_ps_mask(tail, v, zero, _CMP_NEQ_UQ);
        const int n = __builtin_popcount((unsigned)k);
        const __mmask16 out = (__mmask16)((1u << n) - 1);
        _mm512_mask_storeu_epi32(idx + c, out, _mm512_maskz_compress_epi32(k, cols));
        _mm512_mask_storeu_ps(val + c, out, _mm512_maskz_compress_ps(k, v));
        c += n;
    }
    return c;
}
#else
VAEAS_DEFINE_ROWCOMB(vaeas_rowcomb_f32, float, vaeas_vf32)
#define VAEAS_NONZEROS_SIMD 0
static inline int32_t vaeas_nonzeros_f32(const float *x, ptrdiff_t D, int32_t *idx,
                                         float *val)
{
    (void)x; (void)D; (void)idx; (void)val;     /* never called: to_rows' loop instead */
    return 0;
}
#endif
VAEAS_DEFINE_ROWCOMB(vaeas_rowcomb_f64, double, vaeas_vf64)


/* A float32 batch x (B, D) as rows (idx, val, cnt, as to_rows) and as columns (cptr
 * (D + 1), crow, cval: column j's nonzeros at [cptr[j], cptr[j + 1]), rows ascending;
 * what rows_t_matmul needs for x.T @ delta), in one parallel region.  The threads take
 * tasks in this order from a shared counter:
 *
 *   side(ctx), when side is not NULL: a serial job of the caller's that would otherwise
 *       run while the other threads wait (the training step's noise draw, noise.pyx);
 *   the rows, VAEAS_LOAD_ROWS at a time;
 *   the columns, from the rows (count per column, prefix, fill), once every row is done
 *       (the thread that takes this task waits for the rows still being built; all of
 *       them have been taken by then, by threads that wait for nothing), and when they
 *       fit: *cols_built = 1 if the nonzeros number at most cap, else 0.
 *
 * With two threads one runs the side job while the other builds the rows and then the
 * columns.  Every output is written by one task and depends on x alone: the same bits
 * whichever thread ran what.  Nonzero means x != 0 (NaN counts, -0.0 does not), as in
 * to_rows.  Returns the number of nonzeros. */
#define VAEAS_LOAD_ROWS 16
typedef void (*vaeas_side_fn)(void *ctx);

static inline int32_t vaeas_row_nonzeros_f32(const float *x, ptrdiff_t D, int32_t *idx,
                                             float *val)
{
#if VAEAS_NONZEROS_SIMD
    return vaeas_nonzeros_f32(x, D, idx, val);
#else
    int32_t c = 0;
    for (ptrdiff_t j = 0; j < D; j++) {     /* branch-free, as to_rows' loop */
        const float t = x[j];
        idx[c] = (int32_t)j;
        val[c] = t;
        c += t != 0.0f;
    }
    return c;
#endif
}

/* columns of the rows (idx, val, cnt) of a (B, D) batch: count, prefix, fill (rows_t_matmul
 * builds them with it too, when load_rows_cols did not) */
#define VAEAS_DEFINE_ROWS_TO_COLUMNS(NAME, T)                                          \
static void NAME(const int32_t *idx, const T *val, const int32_t *cnt, ptrdiff_t B,     \
                 ptrdiff_t D, int32_t *cptr, int32_t *crow, T *cval, ptrdiff_t cap,      \
                 int *cols_built)                                                       \
{                                                                                       \
    ptrdiff_t nnz = 0;                                                                  \
    for (ptrdiff_t i = 0; i < B; i++) nnz += cnt[i];                                    \
    if (nnz > cap) {                                                                    \
        *cols_built = 0;                                                                \
        return;                                                                         \
    }                                                                                   \
    for (ptrdiff_t j = 0; j <= D; j++) cptr[j] = 0;                                     \
    for (ptrdiff_t i = 0; i < B; i++) {                                                 \
        const int32_t *r = idx + i * D;                                                 \
        for (int32_t k = 0; k < cnt[i]; k++) cptr[r[k] + 1]++;                          \
    }                                                                                   \
    for (ptrdiff_t j = 0; j < D; j++) cptr[j + 1] += cptr[j];                           \
    for (ptrdiff_t i = 0; i < B; i++) {       /* cptr[j]: column j's fill cursor */      \
        const int32_t *r = idx + i * D;                                                 \
        const T *v = val + i * D;                                                       \
        for (int32_t k = 0; k < cnt[i]; k++) {                                          \
            const int32_t p = cptr[r[k]]++;                                             \
            crow[p] = (int32_t)i;                                                       \
            cval[p] = v[k];                                                             \
        }                                                                               \
    }                                                                                   \
    for (ptrdiff_t j = D; j > 0; j--) cptr[j] = cptr[j - 1];  /* cursors -> starts */   \
    cptr[0] = 0;                                                                        \
    *cols_built = 1;                                                                    \
}
VAEAS_DEFINE_ROWS_TO_COLUMNS(vaeas_rows_to_columns_f32, float)
VAEAS_DEFINE_ROWS_TO_COLUMNS(vaeas_rows_to_columns_f64, double)

static ptrdiff_t vaeas_load_rows_cols_f32(const float *x, ptrdiff_t B, ptrdiff_t D,
                                          int32_t *idx, float *val, int32_t *cnt,
                                          int32_t *cptr, int32_t *crow, float *cval,
                                          ptrdiff_t cap, int *cols_built,
                                          vaeas_side_fn side, void *ctx, int n_threads)
{
    const ptrdiff_t chunks = (B + VAEAS_LOAD_ROWS - 1) / VAEAS_LOAD_ROWS;
    const ptrdiff_t cols_task = 1 + chunks;
    ptrdiff_t next = side ? 0 : 1, done = 0;
    *cols_built = 0;
    #pragma omp parallel num_threads(n_threads > 1 ? n_threads : 1)
    for (;;) {
        const ptrdiff_t t = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
        if (t > cols_task) break;
        if (t == 0) {
            side(ctx);
        } else if (t < cols_task) {
            const ptrdiff_t i0 = (t - 1) * VAEAS_LOAD_ROWS;
            const ptrdiff_t i1 = i0 + VAEAS_LOAD_ROWS < B ? i0 + VAEAS_LOAD_ROWS : B;
            for (ptrdiff_t i = i0; i < i1; i++)
                cnt[i] = vaeas_row_nonzeros_f32(x + i * D, D, idx + i * D, val + i * D);
            __atomic_fetch_add(&done, 1, __ATOMIC_RELEASE);
        } else {
            while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < chunks)
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#else
                ;
#endif
            vaeas_rows_to_columns_f32(idx, val, cnt, B, D, cptr, crow, cval, cap, cols_built);
        }
    }
    ptrdiff_t nnz = 0;
    for (ptrdiff_t i = 0; i < B; i++) nnz += cnt[i];
    return nnz;
}

#endif
