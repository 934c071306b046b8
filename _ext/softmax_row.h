/* float32 softmax row kernel for _ext/softmax_full.pyx, in C so that GCC vectorises it.
 *
 * vaeas_expf_nonpos: exp(x) for x <= 0, Cephes' expf (Cody-Waite reduction
 * x = n ln2 + r, degree-6 polynomial on |r| <= ln2/2): max relative error 1.7e-7
 * measured against double exp over [-87, 0], i.e. within 2 ulp of the correctly
 * rounded float.  Inputs below -87.3 (results under the smallest normal float)
 * give exp(-87.3) ~ 1.2e-38, invisible next to the row's largest term, 1.
 */
#ifndef VAEAS_SOFTMAX_ROW_H
#define VAEAS_SOFTMAX_ROW_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>

static inline float vaeas_expf_nonpos(float x)
{
    x = x < -87.33654f ? -87.33654f : x;   /* NaN stays NaN (and reaches the row sum) */
    float n = floorf(x * 1.44269504088896341f + 0.5f);
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
