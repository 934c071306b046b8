/* The VAE's latent layer in one pass each way (vae.py, _forward_backward): what was about
 * twenty NumPy calls on (B, d) arrays, each a few microseconds of the main thread while
 * the other threads wait.
 *
 * Forward, per example b and dimension j (mu = enc[b, j], lv = enc[b, d + j],
 * s = std[b, j] = exp(lv / 2) from NumPy's exp, e = eps[b, j]):
 *     z = mu + s e,   var = s s,   kl_i[b] = (sum_j (mu mu + var - lv) - d) / 2
 * Backward, with dz (B, d) and the constants c_mu = beta / B, c_lv = beta / (2B):
 *     dmu = mu c_mu + dz
 *     dlv = (dz e) s 0.5 + (var - 1) c_lv
 *
 * Every element goes through the same float operations, in the same order, as the NumPy
 * statements they replace (np.multiply(std, eps, out=z); z += mu; ...): no fused
 * multiply-add (fp-contract=off below), so z, var, dmu and dlv are those statements'
 * bits, and so is the training.  kl_i, only reported (the loss and the history: no
 * gradient uses it), is summed over j in order in double and rounded once. */
#ifndef VAEAS_LATENT_H
#define VAEAS_LATENT_H
#include <stddef.h>

#define VAEAS_LATENT_FNS(T, SUF)                                                            \
__attribute__((optimize("fp-contract=off"))) static void                                    \
vaeas_latent_forward_##SUF(const T *enc, const T *std, const T *eps, T *z, T *var, T *kl_i, \
                           ptrdiff_t B, ptrdiff_t d)                                        \
{                                                                                           \
    for (ptrdiff_t b = 0; b < B; b++) {                                                     \
        const T *mu = enc + b * 2 * d, *lv = mu + d, *s = std + b * d, *e = eps + b * d;    \
        T *zb = z + b * d, *vb = var + b * d;                                               \
        double acc = 0.0;                                                                   \
        for (ptrdiff_t j = 0; j < d; j++) {                                                 \
            T se = s[j] * e[j];                                                             \
            zb[j] = se + mu[j];                                                             \
            T v = s[j] * s[j];                                                              \
            vb[j] = v;                                                                      \
            T t = mu[j] * mu[j];                                                            \
            t = t + v;                                                                      \
            t = t - lv[j];                                                                  \
            acc += (double)t;                                                               \
        }                                                                                   \
        kl_i[b] = (T)(0.5 * (acc - (double)d));                                             \
    }                                                                                       \
}                                                                                           \
__attribute__((optimize("fp-contract=off"))) static void                                    \
vaeas_latent_backward_##SUF(const T *enc, const T *std, const T *eps, const T *var,         \
                            const T *dz, T *denc, T c_mu, T c_lv, ptrdiff_t B, ptrdiff_t d) \
{                                                                                           \
    for (ptrdiff_t b = 0; b < B; b++) {                                                     \
        const T *mu = enc + b * 2 * d, *s = std + b * d, *e = eps + b * d;                  \
        const T *vb = var + b * d, *g = dz + b * d;                                         \
        T *dmu = denc + b * 2 * d, *dlv = dmu + d;                                          \
        for (ptrdiff_t j = 0; j < d; j++) {                                                 \
            T m = mu[j] * c_mu;                                                             \
            dmu[j] = m + g[j];                                                              \
            T l = g[j] * e[j];                                                              \
            l = l * s[j];                                                                   \
            l = l * (T)0.5;                                                                 \
            T t = vb[j] - (T)1.0;                                                           \
            t = t * c_lv;                                                                   \
            dlv[j] = l + t;                                                                 \
        }                                                                                   \
    }                                                                                       \
}

VAEAS_LATENT_FNS(float, f32)
VAEAS_LATENT_FNS(double, f64)

#endif
