/* A dense MLP's backward with Adam, layer by layer from the top, in one OpenMP region.
 *
 * The training step's fast path (MLP.backward with an optimizer, float32, the compiled
 * GEMM): for each layer, top down,
 *
 *   1. delta^T, when the layer above did not leave it (a transpose), and the bias: its
 *      gradient gb = sum_b delta[b, :] (rows in order: np.add.reduce's bits) and its
 *      Adam step;
 *   2. dx^T = W delta^T (the compiled GEMM);
 *   3. dx = dx^T put back in rows with the ReLU derivative of the layer below (and the
 *      masked dx^T kept, as delta^T of the layer below), and W's Adam step with the
 *      gradient x^T delta applied in the GEMM's epilogue.
 *
 * These are the calls MLP.backward makes one by one from Python (bench/RESULTS.md,
 * twelfth round): here the threads go from one to the next at a barrier, with no
 * Python and no new parallel region between them, and 2 and 3 share out their GEMMs'
 * units as gemm.h does.  Every element is computed by the same arithmetic as on the
 * Python path, so the parameters, moments and gradients come out the same bits
 * (tests/nn/test_backprop.py).
 */
#ifndef VAEAS_BACKPROP_H
#define VAEAS_BACKPROP_H
#include <stddef.h>
#include "gemm.h"
#include "transpose.h"
#include "adam.h"

#if VAEAS_GEMM_AVAILABLE
#define VAEAS_BACKPROP_AVAILABLE 1

/* One layer: y = act(x W + b), x (B, n_in), W (n_in, n_out). */
typedef struct {
    ptrdiff_t n_in, n_out;
    const float *x;         /* (B, n_in) the layer's input, C-contiguous */
    float *W, *mW, *vW;     /* (n_in, n_out) weights and their Adam moments */
    float *b, *mb, *vb;     /* (n_out) bias and its moments */
    float *delta;           /* (B, n_out) dL/d(pre-activation), rows */
    float *delta_t;         /* (n_out, B) the same transposed: written in phase 1 unless */
    int delta_t_ready;      /*   the layer above left it there */
    float *gb;              /* (n_out) the bias gradient (scratch) */
    float *dx_t;            /* (n_in, B) dL/dx transposed, or NULL: no input gradient */
    float *dx;              /* (B, n_in) dL/dx in rows (with dx_t) */
    const float *y_below;   /* (B, n_in) ReLU outputs of the layer below, or NULL: no mask */
    int keep_t;             /* write the masked dL/dx back into dx_t (delta^T below) */
} vaeas_bwd_layer_t;

#define VAEAS_BWD_BIAS_COLS 64      /* bias columns per work item of phase 1 */

static void vaeas_bwd_bias(const vaeas_bwd_layer_t *L, ptrdiff_t B, ptrdiff_t j0, ptrdiff_t j1,
                           const vaeas_adam_t *adam)
{
    float *g = L->gb;
    for (ptrdiff_t j = j0; j < j1; j++)
        g[j] = L->delta[j];
    for (ptrdiff_t r = 1; r < B; r++) {     /* rows in order, as np.add.reduce(axis=0) */
        const float *d = L->delta + r * L->n_out;
        for (ptrdiff_t j = j0; j < j1; j++)
            g[j] += d[j];
    }
    vaeas_adam_span(L->b + j0, g + j0, L->mb + j0, L->vb + j0, j1 - j0, adam);
}

/* layers[0] is the top layer; each layer's dx is the next one's delta */
static void vaeas_mlp_backward_adam(const vaeas_bwd_layer_t *layers, int n_layers, ptrdiff_t B,
                                    const vaeas_adam_t *adam, int n_threads)
{
    if (n_layers <= 0 || B <= 0) return;
    vaeas_gemm_run_t runs_dx[2][VAEAS_GEMM_MAX_RUNS] __attribute__((aligned(64)));
    vaeas_gemm_run_t runs_w[2][VAEAS_GEMM_MAX_RUNS] __attribute__((aligned(64)));
    vaeas_gemm_job_t job_dx[2], job_w[2];
    int T = n_threads < 1 ? 1 : (n_threads > VAEAS_GEMM_MAX_RUNS ? VAEAS_GEMM_MAX_RUNS
                                                                 : n_threads);
    (void)T;                            /* unused in a build without OpenMP */
    #pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nth = omp_get_num_threads();
#else
        const int t = 0, nth = 1;
#endif
        for (int l = 0; l < n_layers; l++) {
            const vaeas_bwd_layer_t *L = layers + l;
            const int par = l & 1;      /* a thread still in layer l-1's GEMM reads the other */
            #pragma omp single
            {
                if (L->dx_t) {
                    vaeas_gemm_job_init(&job_dx[par], L->n_in, B, L->n_out, L->W, L->n_out, 1,
                                        L->delta_t, B, L->dx_t, B, NULL, 0, 0, NULL, NULL,
                                        NULL, nth);
                    vaeas_gemm_runs_init(&job_dx[par], runs_dx[par], nth);
                }
                vaeas_gemm_job_init(&job_w[par], L->n_in, L->n_out, B, L->x, 1, L->n_in,
                                    L->delta, L->n_out, L->W, L->n_out, NULL, 0, 0, adam,
                                    L->mW, L->vW, nth);
                vaeas_gemm_runs_init(&job_w[par], runs_w[par], nth);
            }   /* barrier: the layer above is done, the runs are set */
            /* 1. delta^T and the bias */
            if (!L->delta_t_ready) {
                const ptrdiff_t nq = (B + VAEAS_TRANSPOSE_TILE - 1) / VAEAS_TRANSPOSE_TILE;
                #pragma omp for schedule(static) nowait
                for (ptrdiff_t q = 0; q < nq; q++) {
                    const ptrdiff_t k1 = (q + 1) * VAEAS_TRANSPOSE_TILE;
                    vaeas_transpose_mask_f32(L->delta, NULL, L->delta_t, NULL, B, L->n_out,
                                             q * VAEAS_TRANSPOSE_TILE, k1 < B ? k1 : B, 1);
                }
            }
            {
                const ptrdiff_t nc = (L->n_out + VAEAS_BWD_BIAS_COLS - 1) / VAEAS_BWD_BIAS_COLS;
                #pragma omp for schedule(static)
                for (ptrdiff_t c = 0; c < nc; c++) {
                    const ptrdiff_t j1 = (c + 1) * VAEAS_BWD_BIAS_COLS;
                    vaeas_bwd_bias(L, B, c * VAEAS_BWD_BIAS_COLS, j1 < L->n_out ? j1 : L->n_out,
                                   adam);
                }
            }   /* barrier: delta^T is complete */
            /* 2. dx^T = W delta^T, with the W of the forward */
            if (L->dx_t) {
                vaeas_gemm_work(&job_dx[par], runs_dx[par], t, nth);
                #pragma omp barrier
                /* 3a. dx in rows, masked; the masked dx^T kept for the layer below */
                const ptrdiff_t nq = (L->n_in + VAEAS_TRANSPOSE_TILE - 1) / VAEAS_TRANSPOSE_TILE;
                #pragma omp for schedule(static) nowait
                for (ptrdiff_t q = 0; q < nq; q++) {
                    const ptrdiff_t k1 = (q + 1) * VAEAS_TRANSPOSE_TILE;
                    vaeas_transpose_mask_f32(L->dx_t, L->y_below, L->dx,
                                             L->keep_t ? L->dx_t : NULL, L->n_in, B,
                                             q * VAEAS_TRANSPOSE_TILE,
                                             k1 < L->n_in ? k1 : L->n_in, 1);
                }
            }
            /* 3b. W's Adam step with x^T delta in the GEMM's epilogue */
            vaeas_gemm_work(&job_w[par], runs_w[par], t, nth);
        }
    }
}
#else
#define VAEAS_BACKPROP_AVAILABLE 0
typedef struct {
    ptrdiff_t n_in, n_out;
    const float *x;
    float *W, *mW, *vW, *b, *mb, *vb, *delta, *delta_t;
    int delta_t_ready;
    float *gb, *dx_t, *dx;
    const float *y_below;
    int keep_t;
} vaeas_bwd_layer_t;
static void vaeas_mlp_backward_adam(const vaeas_bwd_layer_t *layers, int n_layers, ptrdiff_t B,
                                    const vaeas_adam_t *adam, int n_threads)
{
    (void)layers; (void)n_layers; (void)B; (void)adam; (void)n_threads;
}
#endif
#endif
