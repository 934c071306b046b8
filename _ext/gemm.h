/* A float32 GEMM for the layers' shapes, with the bias and ReLU in its epilogue:
 *
 *     C[i, j] = act( sum_k A(i, k) B[k, j]  (+ C[i, j])  (+ bias[j]) )
 *
 * A(i, k) = A[i * ars + k * acs] (any strides: a weight gradient reads x^T
 * straight from x), B and C row-major with unit column stride.
 *
 * Why our own: at batch 128 OpenBLAS spends a fifth of its time packing
 * both operands (its `*copy` routines took 10 % of a training step's samples,
 * bench/RESULTS.md) and zeroes C in a separate pass when beta = 0.  This kernel
 * reads the operands in place (two exceptions, each copied once per thread and reused:
 * a row panel of a transposed A, and a strip of a B whose rows are a multiple of 4 KB
 * apart; see vaeas_gemm_pack_rows, vaeas_gemm_strip_b): a 6 x 64 block of C is held in
 * 24 AVX-512 registers while k
 * runs over the whole of K; each step loads 64 consecutive floats of one row of
 * B (four registers) and broadcasts one element of each of A's 6 rows into 24
 * fused multiply-adds.  At 128 x 500 x 500 on two Zen 4 cores it runs at
 * 210-220 GFLOP/s against OpenBLAS's 180-195 (bench/RESULTS.md, ninth round); on two
 * Zen 5 cores (full-width AVX-512) at 475-497, against 230 for NumPy's OpenBLAS (which
 * picks its AVX2 kernels there) and 205 for PyTorch's MKL (eleventh round).
 * Below 256 columns a 8 x 32 block wastes less in the masked last strip.
 *
 * Threads split the operand that is larger (A's rows, or B's columns), so each
 * reads its own share of it, and a thread that finishes early takes what is left of
 * another's share (vaeas_gemm_work below); each C element is summed over k in order by
 * one kernel call, so the result depends neither on the number of threads nor on who
 * took which part.
 *
 * Without AVX-512F (VAEAS_GEMM_AVAILABLE == 0) nothing here is compiled and the
 * layers keep np.matmul.
 */
#ifndef VAEAS_GEMM_H
#define VAEAS_GEMM_H
#include <stddef.h>
#include <stdlib.h>

#include "adam.h"
#include "transpose.h"

/* Switches for A/B runs and tests (the bits do not depend on them), declared in every
 * build: 0: no thread takes another's units (gemm._set_balanced); 1: row panels of a
 * transposed A are packed (gemm._set_pack; vaeas_gemm_packed counts them). */
static int vaeas_gemm_steal = 1;
static int vaeas_gemm_pack_on = 1;
static long vaeas_gemm_packed = 0;
/* 1: strips of a B whose rows are a multiple of 4 KB apart are packed (gemm._set_pack_b;
 * vaeas_gemm_packed_b counts them) */
static int vaeas_gemm_pack_b_on = 1;
static long vaeas_gemm_packed_b = 0;

#if defined(__AVX512F__)
#define VAEAS_GEMM_AVAILABLE 1
#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define VAEAS_GEMM_MAX_ROWS 8
#define VAEAS_GEMM_MAX_VECS 4
/* software prefetch distances, in k steps: B's rows and A's elements arrive cold from
 * L3 at the start of each strip (in the training step they were last touched a layer
 * or an Adam pass ago); measured in the step: 9.87 against 10.30 ms without */
#define VAEAS_GEMM_PF_B 8
#define VAEAS_GEMM_PF_A 16

/* rows R (<= 8) x NV vectors of 16 columns; mk: the column mask of each vector.
 * ADAM (a constant): C is a parameter matrix and the block's sum its gradient, applied
 * by Adam (adam.h) with the moments am, av laid out like C; the three blocks are
 * prefetched a line per k step while the sum runs. */
static inline __attribute__((always_inline)) void
vaeas_gemm_block(const int R, const int NV, const int ADAM, ptrdiff_t K, const float *A,
                 ptrdiff_t ars, ptrdiff_t acs, const float *B, ptrdiff_t ldb, float *C,
                 ptrdiff_t ldc, const float *bias, int relu, int acc, const __mmask16 *mk,
                 const vaeas_adam_t *adam, float *am, float *av)
{
    __m512 c[VAEAS_GEMM_MAX_ROWS][VAEAS_GEMM_MAX_VECS];
    _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) c[i][v] = _mm512_setzero_ps();
    const float *a = A;
    for (ptrdiff_t k = 0; k < K; k++) {
        __m512 b[VAEAS_GEMM_MAX_VECS];
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)
            _mm_prefetch((const char *)(B + VAEAS_GEMM_PF_B * ldb + 16 * v), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + VAEAS_GEMM_PF_A * acs), _MM_HINT_T0);
        if (R > 4)
            _mm_prefetch((const char *)(a + VAEAS_GEMM_PF_A * acs + (R - 1) * ars),
                         _MM_HINT_T0);
        if (ADAM) {
            /* line l of row i of C, am or av: NV * 64 bytes span at most NV + 1 lines */
            const ptrdiff_t L = NV + 1;
            if (k < 3 * R * L) {
                const ptrdiff_t q = k / 3, i = q / L, l = q % L;
                const float *base = k % 3 == 0 ? C : (k % 3 == 1 ? am : av);
                _mm_prefetch((const char *)(base + i * ldc + (l < NV ? 16 * l : 16 * NV - 1)),
                             _MM_HINT_T0);
            }
        }
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)
            b[v] = _mm512_maskz_loadu_ps(mk[v], B + 16 * v);
        B += ldb;
        _Pragma("GCC unroll 8") for (int i = 0; i < R; i++) {
            __m512 av = _mm512_set1_ps(a[i * ars]);
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)
                c[i][v] = _mm512_fmadd_ps(av, b[v], c[i][v]);
        }
        a += acs;
    }
    if (ADAM) {
        _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)
                if (mk[v])
                    vaeas_adam_vec(C + i * ldc + 16 * v, am + i * ldc + 16 * v,
                                   av + i * ldc + 16 * v, c[i][v], mk[v], adam);
        return;
    }
    _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {
            __m512 x = c[i][v];
            if (acc) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk[v], C + i * ldc + 16 * v));
            if (bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk[v], bias + 16 * v));
            if (relu) x = _mm512_max_ps(x, _mm512_setzero_ps());
            _mm512_mask_storeu_ps(C + i * ldc + 16 * v, mk[v], x);
        }
}

/* rows [0, rows) of one strip of NV * 16 columns (w of them real) */
#define VAEAS_GEMM_STRIP(NAME, MR, NV, ADAM)                                               \
static void NAME(ptrdiff_t rows, ptrdiff_t K, const float *A, ptrdiff_t ars, ptrdiff_t acs, \
                 const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, const float *bias,  \
                 int relu, int acc, int w, const vaeas_adam_t *adam, float *am, float *av)   \
{                                                                                            \
    __mmask16 mk[VAEAS_GEMM_MAX_VECS];                                                       \
    for (int v = 0; v < NV; v++) {                                                           \
        int r = w - 16 * v;                                                                  \
        mk[v] = r >= 16 ? (__mmask16)0xFFFF : (r <= 0 ? 0 : (__mmask16)((1u << r) - 1));    \
    }                                                                                        \
    ptrdiff_t i = 0;                                                                         \
    for (; i + MR <= rows; i += MR)                                                          \
        vaeas_gemm_block(MR, NV, ADAM, K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc,   \
                         bias, relu, acc, mk, adam, am + i * ldc, av + i * ldc);             \
    if (rows - i >= 4) {                                                                     \
        vaeas_gemm_block(4, NV, ADAM, K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc,    \
                         bias, relu, acc, mk, adam, am + i * ldc, av + i * ldc);             \
        i += 4;                                                                              \
    }                                                                                        \
    if (rows - i >= 2) {                                                                     \
        vaeas_gemm_block(2, NV, ADAM, K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc,    \
                         bias, relu, acc, mk, adam, am + i * ldc, av + i * ldc);             \
        i += 2;                                                                              \
    }                                                                                        \
    if (rows - i >= 1)                                                                       \
        vaeas_gemm_block(1, NV, ADAM, K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc,    \
                         bias, relu, acc, mk, adam, am + i * ldc, av + i * ldc);             \
}

VAEAS_GEMM_STRIP(vaeas_gemm_strip64, 6, 4, 0)
VAEAS_GEMM_STRIP(vaeas_gemm_strip48, 8, 3, 0)
VAEAS_GEMM_STRIP(vaeas_gemm_strip32, 8, 2, 0)
VAEAS_GEMM_STRIP(vaeas_gemm_strip16, 8, 1, 0)
VAEAS_GEMM_STRIP(vaeas_gemm_strip64_adam, 6, 4, 1)
VAEAS_GEMM_STRIP(vaeas_gemm_strip48_adam, 8, 3, 1)
VAEAS_GEMM_STRIP(vaeas_gemm_strip32_adam, 8, 2, 1)
VAEAS_GEMM_STRIP(vaeas_gemm_strip16_adam, 8, 1, 1)

/* rows of a panel, at most: their part of A stays in the core's L2 while the strips of B
 * pass over it, and a panel x strip is a few microseconds, the grain at which threads
 * share out the last of the work (below) */
#define VAEAS_GEMM_PANEL_ROWS 48

/* rows [r0, r1) of strip s.  The last strip of a width that is not a multiple of the
 * strip's runs on the narrowest kernel that covers its w columns (16, 32 or 48): the
 * 16 columns left of 784 took a whole 64-column strip's multiply-adds, 1/13 of the
 * decoder's output layer.  Every kernel sums each element over k in the same order, so
 * the bits do not depend on which one ran. */
typedef void (*vaeas_gemm_strip_fn)(ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t,
                                    const float *, ptrdiff_t, float *, ptrdiff_t,
                                    const float *, int, int, int, const vaeas_adam_t *,
                                    float *, float *);
/* the strip kernels by the number of 16-column vectors they cover, without / with Adam */
static const vaeas_gemm_strip_fn vaeas_gemm_strips[2][4] = {
    {vaeas_gemm_strip16, vaeas_gemm_strip32, vaeas_gemm_strip48, vaeas_gemm_strip64},
    {vaeas_gemm_strip16_adam, vaeas_gemm_strip32_adam, vaeas_gemm_strip48_adam,
     vaeas_gemm_strip64_adam}};

/* rows [r0, r1) of strip s; a: A's row r0 (A itself, or a packed copy of the rows); b:
 * the strip's first column of B (B + s NR, or a packed copy of the strip), ldb its rows'
 * distance */
static inline void vaeas_gemm_rows(int wide, ptrdiff_t s, ptrdiff_t r0, ptrdiff_t r1,
                                   ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t ars,
                                   ptrdiff_t acs, const float *b, ptrdiff_t ldb, float *C,
                                   ptrdiff_t ldc, const float *bias, int relu, int acc,
                                   const vaeas_adam_t *adam, float *am, float *av)
{
    const ptrdiff_t NR = wide ? 64 : 32, n0 = s * NR, o = r0 * ldc + n0;
    int w = (int)(N - n0 < NR ? N - n0 : NR);
    const int vecs = (w + 15) / 16;         /* 16-column vectors this strip needs */
    if (adam)
        vaeas_gemm_strips[1][vecs - 1](r1 - r0, K, a, ars, acs, b, ldb, C + o, ldc, NULL, 0, 0,
                                       w, adam, am + o, av + o);
    else
        vaeas_gemm_strips[0][vecs - 1](r1 - r0, K, a, ars, acs, b, ldb, C + o, ldc,
                                       bias ? bias + n0 : NULL, relu, acc, w, NULL, C, C);
}

/* How C is cut between threads.  C is cut into units: when A is the larger operand
 * (or with Adam in the epilogue, see below) a unit is a panel of VAEAS_GEMM_PANEL_ROWS rows
 * x one strip, panel by panel, so each thread reads its own rows of A and a panel's part
 * of A stays in the core's L2 while the strips of B pass over it; otherwise a unit is one
 * block of MR rows x one strip, strip by strip.  Thread t starts on the t-th of T equal
 * contiguous runs of units and takes them from the front, a quarter of what is left at a
 * time; a thread that has finished its run takes the units still left in the others'
 * runs from their back ends.  Static runs alone left one thread waiting at the end of
 * most GEMMs: the narrow last strip of 784 columns makes equal runs unequal work (2
 * threads, 128 x 500 x 784: one worked 15-21 us longer, of about 240), and on this VM
 * one core is often slower than the other for a while (in the training step 15 % of the
 * main thread's samples were that wait).  Each C element is still summed over k in order by one kernel call,
 * so the bits do not depend on who took which unit.
 * With Adam in the epilogue (a weight gradient: A = x^T, K = the batch) the units are
 * row panels whenever there are enough rows: each thread then updates a contiguous
 * range of the parameters and their moments, which stream from memory (24 bytes per
 * parameter: the update is memory-bound), instead of 256-byte pieces of every row.
 * Measured in the training step (paired blocks, 2 threads, Zen 5): VAE 0.974-0.978,
 * VAE-AS 0.971-0.981 of the step time with column strips. */
#define VAEAS_GEMM_ADAM_ROWS_FROM 64
/* a claim from one's own run covers about this many multiply-adds (a few microseconds) */
#define VAEAS_GEMM_CLAIM_FMAS 250000

/* a run of units [lo, hi), packed in one word so that the owner (taking from the front)
 * and a helper (taking from the back) can claim with one compare-and-swap; one per
 * cache line */
typedef struct { unsigned long long run; char pad[56]; } vaeas_gemm_run_t;
#define VAEAS_GEMM_MAX_RUNS 64

/* Claims units of the run r: n of them from the back (a helper), or from the front (the
 * owner) a quarter of what is left, at least n; returns how many, the first in *u0. */
static inline ptrdiff_t vaeas_gemm_claim(vaeas_gemm_run_t *r, ptrdiff_t min_n, int back,
                                         ptrdiff_t *u0)
{
    unsigned long long old = __atomic_load_n(&r->run, __ATOMIC_RELAXED);
    for (;;) {
        ptrdiff_t lo = (ptrdiff_t)(old & 0xFFFFFFFFull), hi = (ptrdiff_t)(old >> 32);
        if (lo >= hi) return 0;
        ptrdiff_t n = back || (hi - lo) / 4 < min_n ? min_n : (hi - lo) / 4;
        if (n > hi - lo) n = hi - lo;
        const ptrdiff_t nlo = back ? lo : lo + n, nhi = back ? hi - n : hi;
        const unsigned long long nw = ((unsigned long long)nhi << 32) | (unsigned long long)nlo;
        if (__atomic_compare_exchange_n(&r->run, &old, nw, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            *u0 = back ? hi - n : lo;
            return n;
        }
    }
}

/* C at least this wide runs on the 6-row x 64-column kernels, narrower C on the 8 x 32
 * ones.  The input gradients dx^T = W delta^T of batch-128 training are 128 wide: on
 * the wide kernels (24 accumulators against 16, 10 loads per k step either way) they ran
 * 1.5-4 % faster alone (500 x 500 x 128: 135.6 against 139.5 us) and the training step
 * 2-3 % faster (paired A/B, thresholds 128 against 256: VAE 0.969, 0.980; VAE-AS 0.978,
 * 0.986); 64 against 128 changed nothing (0.993, 1.003).  The bits do not depend on the
 * kernel (each element is summed over k in order either way). */
#define VAEAS_GEMM_WIDE_FROM 128
typedef struct {
    ptrdiff_t M, N, K, ars, acs, ldb, ldc;
    const float *A, *B, *bias;
    float *C, *am, *av;
    int relu, acc, wide, by_rows;
    ptrdiff_t NR, MR, strips, blocks, panels, units, claim;
    const vaeas_adam_t *adam;
} vaeas_gemm_job_t;

static void vaeas_gemm_job_init(vaeas_gemm_job_t *j, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                                const float *A, ptrdiff_t ars, ptrdiff_t acs, const float *B,
                                ptrdiff_t ldb, float *C, ptrdiff_t ldc, const float *bias,
                                int relu, int acc, const vaeas_adam_t *adam, float *am,
                                float *av, int T)
{
    j->M = M; j->N = N; j->K = K; j->A = A; j->ars = ars; j->acs = acs; j->B = B;
    j->ldb = ldb; j->C = C; j->ldc = ldc; j->bias = bias; j->relu = relu; j->acc = acc;
    j->adam = adam; j->am = am; j->av = av;
    j->wide = N >= VAEAS_GEMM_WIDE_FROM;
    j->NR = j->wide ? 64 : 32;
    j->MR = j->wide ? 6 : 8;
    j->strips = (N + j->NR - 1) / j->NR;
    j->blocks = (M + j->MR - 1) / j->MR;
    j->by_rows = M * K > K * N || (adam && M >= VAEAS_GEMM_ADAM_ROWS_FROM);
    /* panels of equal rows (multiples of MR), at most VAEAS_GEMM_PANEL_ROWS, at least
     * two per thread's worth of rows when there are few */
    j->panels = (M + VAEAS_GEMM_PANEL_ROWS - 1) / VAEAS_GEMM_PANEL_ROWS;
    if (j->panels < 2 * T) j->panels = 2 * T;
    if (j->panels > j->blocks) j->panels = j->blocks;
    j->units = j->strips * (j->by_rows ? j->panels : j->blocks);
    const ptrdiff_t fmas = (j->by_rows ? M / j->panels : j->MR) * j->NR * K;
    j->claim = fmas >= VAEAS_GEMM_CLAIM_FMAS ? 1 : VAEAS_GEMM_CLAIM_FMAS / (fmas > 0 ? fmas : 1);
}

/* A panel's rows of a transposed A, packed.  A weight gradient's A is x^T: A(i, k) =
 * x[k, i], so a block's six rows are read as six floats of each of K rows of x, a
 * cache line of each used for 24 of its 64 bytes, and at power-of-two widths x's rows
 * fall in the same few L1 sets (512 x 128 x 512: 357 GFLOP/s against 444 with A in
 * rows).  With row panels (every weight gradient with Adam) a thread copies its
 * panel's rows into rows of K floats, A's layout in the forward GEMMs, once, and the
 * panel's strips read the copy.  The same values, summed in the same order: the same
 * bits.  Panels of up to VAEAS_GEMM_PACK_ROWS rows and K up to VAEAS_GEMM_PACK_K. */
#define VAEAS_GEMM_PACK_ROWS 64
#define VAEAS_GEMM_PACK_K 256
/* ... and at least this many strips read each packed panel (500 x 128 x 80 with Adam, 3
 * strips: 275 GFLOP/s packed against 303 in place) */
#define VAEAS_GEMM_PACK_STRIPS 4
typedef struct {
    float *buf;         /* VAEAS_GEMM_PACK_ROWS x K floats: a panel of A (NULL: A in place) */
    ptrdiff_t q;        /* the panel buf holds (-1: none yet) */
    float *bbuf;        /* K x NR floats: a strip of B (NULL: B in place) */
    ptrdiff_t bs;       /* the strip bbuf holds (-1: none yet) */
} vaeas_gemm_pack_t;

static inline int vaeas_gemm_packs(const vaeas_gemm_job_t *j)
{
    return vaeas_gemm_pack_on && j->by_rows && j->ars == 1 && j->acs > 1
           && j->K <= VAEAS_GEMM_PACK_K && j->K > 0 && j->strips >= VAEAS_GEMM_PACK_STRIPS;
}

/* B's strips.  Where B's rows lie a multiple of 4 KB apart (1024 x 1024 x 1024: ldb =
 * 1024 floats), a strip's rows all fall in the same few L1 sets, and with the rows
 * prefetched ahead and A's six rows (as far apart) they do not fit them: 1024^3 ran at
 * 267 GFLOP/s against 478 at 1000^3.  Such a strip is copied, once per thread, into
 * consecutive rows of NR floats before its blocks read it.  The same values in the
 * same order: the same bits. */
#define VAEAS_GEMM_PACK_B_K 8192     /* rows of a strip copied at most (2 MB) */
static inline int vaeas_gemm_packs_b(const vaeas_gemm_job_t *j)
{
    return vaeas_gemm_pack_b_on && j->K > 0 && j->K <= VAEAS_GEMM_PACK_B_K && j->ldb > 0
           && j->ldb % 1024 == 0;
}

/* a thread's pack buffers for one job (one vaeas_gemm_work call), on the heap (64 KB and
 * more do not belong on an OpenMP thread's stack): pk->buf when A's panels are packed,
 * pk->bbuf when B's strips are; returns pk, or NULL when nothing is packed (a failed
 * allocation: read in place) */
static inline vaeas_gemm_pack_t *vaeas_gemm_pack_init(const vaeas_gemm_job_t *j,
                                                      vaeas_gemm_pack_t *pk)
{
    pk->q = pk->bs = -1;
    pk->buf = pk->bbuf = NULL;
    if (vaeas_gemm_packs(j)) {
        const size_t bytes = ((size_t)VAEAS_GEMM_PACK_ROWS * (size_t)j->K * sizeof(float)
                              + 63) / 64 * 64;
        pk->buf = (float *)aligned_alloc(64, bytes);
    }
    if (vaeas_gemm_packs_b(j)) {
        const size_t bytes = ((size_t)j->K * (size_t)j->NR * sizeof(float) + 63) / 64 * 64;
        pk->bbuf = (float *)aligned_alloc(64, bytes);
    }
    return (pk->buf != NULL || pk->bbuf != NULL) ? pk : NULL;
}

static inline void vaeas_gemm_pack_free(vaeas_gemm_pack_t *pk)
{
    if (pk == NULL) return;
    free(pk->buf);
    free(pk->bbuf);
}

/* the strip s of B as its blocks read it (packed into pk->bbuf when that is set) */
static inline const float *vaeas_gemm_strip_b(const vaeas_gemm_job_t *j, ptrdiff_t s,
                                              vaeas_gemm_pack_t *pk, ptrdiff_t *ldb)
{
    const ptrdiff_t n0 = s * j->NR;
    if (pk == NULL || pk->bbuf == NULL) {
        *ldb = j->ldb;
        return j->B + n0;
    }
    if (pk->bs != s) {
        const int w = (int)(j->N - n0 < j->NR ? j->N - n0 : j->NR);
        for (ptrdiff_t k = 0; k < j->K; k++) {
            const float *src = j->B + k * j->ldb + n0;
            float *dst = pk->bbuf + k * j->NR;
            for (int v = 0; v < w; v += 16) {
                const __mmask16 m = w - v >= 16 ? (__mmask16)0xFFFF
                                                : (__mmask16)((1u << (w - v)) - 1);
                _mm512_mask_storeu_ps(dst + v, m, _mm512_maskz_loadu_ps(m, src + v));
            }
        }
        pk->bs = s;
        __atomic_fetch_add(&vaeas_gemm_packed_b, 1, __ATOMIC_RELAXED);
    }
    *ldb = j->NR;
    return pk->bbuf;
}

/* dst[i * K + k] = A(r0 + i, k) = src[k * lds + i] for i < rows, k < K (src = A + r0),
 * 16 x 16 tiles transposed in registers */
static void vaeas_gemm_pack_rows(const float *src, ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t K,
                                 float *dst)
{
    for (ptrdiff_t k0 = 0; k0 < K; k0 += 16) {
        const int kk = (int)(K - k0 < 16 ? K - k0 : 16);
        const __mmask16 mk = (__mmask16)((1u << kk) - 1);
        for (ptrdiff_t i0 = 0; i0 < rows; i0 += 16) {
            const int ii = (int)(rows - i0 < 16 ? rows - i0 : 16);
            const __mmask16 mi = (__mmask16)((1u << ii) - 1);
            __m512 r[16];
            for (int t = 0; t < 16; t++)
                r[t] = t < kk ? _mm512_maskz_loadu_ps(mi, src + (k0 + t) * lds + i0)
                              : _mm512_setzero_ps();
            vaeas_tr16(r);
            for (int i = 0; i < ii; i++)
                _mm512_mask_storeu_ps(dst + (i0 + i) * K + k0, mk, r[i]);
        }
    }
}

/* units [u0, u1) of the job; pk: a pack buffer (NULL: A read in place) */
static void vaeas_gemm_units(const vaeas_gemm_job_t *j, ptrdiff_t u0, ptrdiff_t u1,
                             vaeas_gemm_pack_t *pk)
{
    if (j->by_rows) {
        const int pack = pk != NULL && pk->buf != NULL;
        for (ptrdiff_t u = u0; u < u1; u++) {
            /* panel q: blocks [q blocks / panels, (q + 1) blocks / panels) */
            const ptrdiff_t q = u / j->strips, s = u % j->strips;
            const ptrdiff_t p = q * j->blocks / j->panels * j->MR;
            ptrdiff_t pe = (q + 1) * j->blocks / j->panels * j->MR;
            if (pe > j->M) pe = j->M;
            const float *a = j->A + p * j->ars;
            ptrdiff_t ars = j->ars, acs = j->acs, ldb;
            if (pack && pe - p <= VAEAS_GEMM_PACK_ROWS) {     /* the panel's packed rows */
                if (pk->q != q) {
                    vaeas_gemm_pack_rows(a, j->acs, pe - p, j->K, pk->buf);
                    pk->q = q;
                    __atomic_fetch_add(&vaeas_gemm_packed, 1, __ATOMIC_RELAXED);
                }
                a = pk->buf;
                ars = j->K;
                acs = 1;
            }
            const float *b = vaeas_gemm_strip_b(j, s, pk, &ldb);
            vaeas_gemm_rows(j->wide, s, p, pe, j->N, j->K, a, ars, acs, b, ldb, j->C, j->ldc,
                            j->bias, j->relu, j->acc, j->adam, j->am, j->av);
        }
        return;
    }
    while (u0 < u1) {           /* blocks of one strip at a time */
        const ptrdiff_t s = u0 / j->blocks, b0 = u0 % j->blocks;
        const ptrdiff_t b1 = u1 - s * j->blocks < j->blocks ? u1 - s * j->blocks : j->blocks;
        const ptrdiff_t r1 = b1 * j->MR < j->M ? b1 * j->MR : j->M;
        ptrdiff_t ldb;
        const float *b = vaeas_gemm_strip_b(j, s, pk, &ldb);
        vaeas_gemm_rows(j->wide, s, b0 * j->MR, r1, j->N, j->K, j->A + b0 * j->MR * j->ars,
                        j->ars, j->acs, b, ldb, j->C, j->ldc, j->bias, j->relu, j->acc,
                        j->adam, j->am, j->av);
        u0 = s * j->blocks + b1;
    }
}

/* the T equal runs of the job's units, thread t's the t-th */
static inline void vaeas_gemm_runs_init(const vaeas_gemm_job_t *j, vaeas_gemm_run_t *runs,
                                        int T)
{
    for (int t = 0; t < T; t++) {
        const unsigned long long lo = (unsigned long long)(j->units * t / T),
                                 hi = (unsigned long long)(j->units * (t + 1) / T);
        runs[t].run = (hi << 32) | lo;
    }
}

/* thread t of a team of T (<= the T runs set up): its own run, then what is left of the
 * others' */
static void vaeas_gemm_work(const vaeas_gemm_job_t *j, vaeas_gemm_run_t *runs, int t, int T)
{
    ptrdiff_t u0, n;
    vaeas_gemm_pack_t pack_buf;
    vaeas_gemm_pack_t *pk = vaeas_gemm_pack_init(j, &pack_buf);
    if (!vaeas_gemm_steal) {
        while ((n = vaeas_gemm_claim(runs + t, 1 << 30, 0, &u0)) > 0)
            vaeas_gemm_units(j, u0, u0 + n, pk);
    } else {
        while ((n = vaeas_gemm_claim(runs + t, j->claim, 0, &u0)) > 0)
            vaeas_gemm_units(j, u0, u0 + n, pk);
        for (int v = 1; v < T; v++)
            while ((n = vaeas_gemm_claim(runs + (t + v) % T, j->claim, 1, &u0)) > 0)
                vaeas_gemm_units(j, u0, u0 + n, pk);
    }
    vaeas_gemm_pack_free(pk);
}

static void vaeas_sgemm_any(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *A,
                            ptrdiff_t ars, ptrdiff_t acs, const float *B, ptrdiff_t ldb,
                            float *C, ptrdiff_t ldc, const float *bias, int relu, int acc,
                            const vaeas_adam_t *adam, float *am, float *av, int n_threads)
{
    if (M <= 0 || N <= 0) return;
    int T = n_threads < VAEAS_GEMM_MAX_RUNS ? n_threads : VAEAS_GEMM_MAX_RUNS;
#ifndef _OPENMP
    T = 1;
#endif
    vaeas_gemm_job_t job;
    vaeas_gemm_job_init(&job, M, N, K, A, ars, acs, B, ldb, C, ldc, bias, relu, acc, adam,
                        am, av, T < 1 ? 1 : T);
#ifdef _OPENMP
    if (T > job.units) T = (int)job.units;
    if (T > 1) {
        vaeas_gemm_run_t runs[VAEAS_GEMM_MAX_RUNS] __attribute__((aligned(64)));
        vaeas_gemm_runs_init(&job, runs, T);
        /* a smaller team than asked for leaves runs with no owner: the others take them */
        #pragma omp parallel num_threads(T)
        vaeas_gemm_work(&job, runs, omp_get_thread_num(), T);
        return;
    }
#endif
    (void)n_threads;
    vaeas_gemm_pack_t pack_buf;
    vaeas_gemm_pack_t *pk = vaeas_gemm_pack_init(&job, &pack_buf);
    vaeas_gemm_units(&job, 0, job.units, pk);
    vaeas_gemm_pack_free(pk);
}

/* C = act(A B (+ C) (+ bias)) */
static void vaeas_sgemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *A, ptrdiff_t ars,
                        ptrdiff_t acs, const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                        const float *bias, int relu, int acc, int n_threads)
{
    vaeas_sgemm_any(M, N, K, A, ars, acs, B, ldb, C, ldc, bias, relu, acc, NULL, C, C,
                    n_threads);
}

/* Adam on the parameter matrix P (moments am, av, all with leading dimension ldp) with
 * the gradient A B (scaled by adam->scale), each block applied as it is summed */
static void vaeas_sgemm_adam(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *A,
                             ptrdiff_t ars, ptrdiff_t acs, const float *B, ptrdiff_t ldb,
                             float *P, float *am, float *av, ptrdiff_t ldp,
                             const vaeas_adam_t *adam, int n_threads)
{
    vaeas_sgemm_any(M, N, K, A, ars, acs, B, ldb, P, ldp, NULL, 0, 0, adam, am, av,
                    n_threads);
}

#else
#define VAEAS_GEMM_AVAILABLE 0
static void vaeas_sgemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *A, ptrdiff_t ars,
                        ptrdiff_t acs, const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                        const float *bias, int relu, int acc, int n_threads)
{
    (void)M; (void)N; (void)K; (void)A; (void)ars; (void)acs; (void)B; (void)ldb; (void)C;
    (void)ldc; (void)bias; (void)relu; (void)acc; (void)n_threads;
}
static void vaeas_sgemm_adam(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *A,
                             ptrdiff_t ars, ptrdiff_t acs, const float *B, ptrdiff_t ldb,
                             float *P, float *am, float *av, ptrdiff_t ldp,
                             const vaeas_adam_t *adam, int n_threads)
{
    (void)M; (void)N; (void)K; (void)A; (void)ars; (void)acs; (void)B; (void)ldb; (void)P;
    (void)am; (void)av; (void)ldp; (void)adam; (void)n_threads;
}
#endif
#endif
