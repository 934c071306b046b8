"""Tiny fake models implementing exactly the interface the metrics program against."""
import numpy as np


class LinearVAE:
    """Linear Gaussian encoder and linear Bernoulli decoder.

    encode: mu = X A + a, logvar = X B + b       (n, d) float64
    decode_logits: logits = Z W + c              (m, D) float32, returned in a
    buffer that the next call overwrites (like the real model may do).
    """

    def __init__(self, D=8, d=2, seed=0, n_threads=None, enc_scale=0.5, prior_encoder=False):
        r = np.random.default_rng(seed)
        self.A = r.normal(0, enc_scale, (D, d))
        self.a = r.normal(0, 0.3, d)
        self.B = r.normal(0, 0.2, (D, d))
        self.b = r.normal(-1.0, 0.3, d)
        self.W = r.normal(0, 1.5, (d, D)).astype(np.float32)
        self.c = r.normal(0, 0.5, D).astype(np.float32)
        if prior_encoder:                       # q(z|x) = p(z) = N(0, I)
            self.A[:], self.a[:], self.B[:], self.b[:] = 0, 0, 0, 0
        self.n_threads = n_threads
        self.D, self.d = D, d
        self.max_rows = 0
        self._buf = np.empty((0, D), np.float32)

    def encode(self, X):
        X = np.asarray(X, dtype=np.float64)
        return X @ self.A + self.a, X @ self.B + self.b

    def decode_logits(self, Z):
        assert Z.dtype == np.float32 and Z.ndim == 2 and Z.shape[1] == self.d
        self.max_rows = max(self.max_rows, Z.shape[0])
        if self._buf.shape[0] < Z.shape[0]:
            self._buf = np.empty((Z.shape[0], self.D), np.float32)
        out = self._buf[:Z.shape[0]]
        # Row by row in a fixed order, not np.matmul: BLAS computes a 1-row product with
        # gemv and a many-row one with gemm, whose float32 results differ in the last bit,
        # and the chunking tests compare decodes of different row counts exactly.
        np.sum(Z[:, :, None] * self.W[None, :, :], axis=1, out=out)
        out += self.c
        return out

    def sample_data(self, n, seed=1):
        """Binary data drawn from the model's own generative process."""
        r = np.random.default_rng(seed)
        z = r.standard_normal((n, self.d)).astype(np.float32)
        p = 1.0 / (1.0 + np.exp(-(z @ self.W + self.c)))
        return (r.random(p.shape) < p).astype(np.float32)

    def exact_log_px(self, X, n_nodes=120):
        """log p(x) = log int p(x|z) N(z; 0, I) dz by Gauss-Hermite quadrature (d <= 2)."""
        t, w = np.polynomial.hermite_e.hermegauss(n_nodes)
        w = w / np.sqrt(2 * np.pi)
        if self.d == 1:
            Z, logw = t[:, None], np.log(w)
        else:
            assert self.d == 2
            Z = np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
            logw = (np.log(w)[:, None] + np.log(w)[None, :]).ravel()
        L = Z @ self.W.astype(np.float64) + self.c
        ll = X @ L.T - np.logaddexp(0, L).sum(1)[None, :]          # (n, nodes)
        a = ll + logw[None, :]
        m = a.max(1, keepdims=True)
        return (m + np.log(np.exp(a - m).sum(1, keepdims=True)))[:, 0]
