/* float32 softmax row kernel for _ext/softmax_full.pyx, in C so that GCC vectorises it.
 *
 * exp: vaeas_expf_nonpos of vmath.h.
 */
#ifndef VAEAS_SOFTMAX_ROW_H
#define VAEAS_SOFTMAX_ROW_H
#include <math.h>
#include <stddef.h>
#include "vmath.h"

/* IN/OUT x (V,): logits without bias -> exp(x + bias - max); OUT logp, zinv. */
static void vaeas_softmax_row_f32(float *restrict x, const float *restrict bias,
                                  ptrdiff_t V, ptrdiff_t label,
                                  float *logp, float *zinv)
{
    enum { L = 16 };
    float lane_max[L], lane_sum[L];
    ptrdiff_t v, j, V16 = V - V % L;
    /* pass 1: add the bias and track 16 lane maxima */
    for (j = 0; j < L; j++) {
        lane_max[j] = x[0] + bias[0];
        lane_sum[j] = 0.0f;
    }
    for (v = 0; v < V16; v += L)
        for (j = 0; j < L; j++) {
            float t = x[v + j] + bias[v + j];
            x[v + j] = t;
            lane_max[j] = t > lane_max[j] ? t : lane_max[j];
        }
    float m = lane_max[0];
    for (j = 0; j < L; j++)
        m = lane_max[j] > m ? lane_max[j] : m;
    for (v = V16; v < V; v++) {
        x[v] += bias[v];
        m = x[v] > m ? x[v] : m;
    }
    float xl = x[label];
    /* pass 2: exp and 16 partial sums (each of <= V/16 terms in [0, 1]), then a double sum */
    for (v = 0; v < V16; v += L)
        for (j = 0; j < L; j++) {
            float e = vaeas_expf_nonpos(x[v + j] - m);
            x[v + j] = e;
            lane_sum[j] += e;
        }
    double z = 0.0;
    for (j = 0; j < L; j++)
        z += lane_sum[j];
    for (v = V16; v < V; v++) {
        x[v] = vaeas_expf_nonpos(x[v] - m);
        z += x[v];
    }
    *logp = (float)((double)(xl - m) - log(z));
    *zinv = (float)(1.0 / z);
}
#endif
