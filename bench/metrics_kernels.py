"""Timings of the metrics' hot spots (not a test; run ``PYTHONPATH=. python bench/metrics_kernels.py``).

1. gmm_logdensity, N = 55,000 components, M = 10,000 points, d = 40, float32
   inputs, 1 and 2 threads; versus the NumPy reference (blocked, timed on a
   subset of points and scaled) and a NumPy "expanded form" (one GEMM per
   block: sum ivar (z - mu)^2 = [z^2, z] @ [ivar, -2 mu ivar]^T + sum mu^2 ivar).
2. iwae_nll throughput on a fake MLP decoder 40-500-500-784 (float32).
"""
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from vaeas_np._ext import mixture
from vaeas_np.metrics import iwae_nll
from vaeas_np.metrics.reference import gmm_logdensity_reference, logmeanexp_rows_reference


def data(N=55000, M=10000, d=40, seed=0, collapsed=False):
    r = np.random.default_rng(seed)
    mu = r.standard_normal((N, d)).astype(np.float32)
    lv = r.normal(-2, 0.5, (N, d)).astype(np.float32)
    if collapsed:                                   # every posterior ~ the prior: no skipping
        mu *= 0.01
        lv[:] = 0
    idx = r.choice(N, M, replace=False)
    Z = (mu[idx] + np.exp(0.5 * lv[idx]) * r.standard_normal((M, d))).astype(np.float32)
    return Z, mu, lv


def gemm_form(Z, mu, lv, dtype, bp=500, bc=8192):
    """NumPy expanded-form mixture log-density, blocked over points and components."""
    Z, mu, lv = (a.astype(dtype) for a in (Z, mu, lv))
    iv = np.exp(-lv)
    W = np.concatenate([iv, -2 * mu * iv], 1)                  # (N, 2d)
    c = -0.5 * (Z.shape[1] * np.log(2 * np.pi) + lv.astype(np.float64).sum(1))
    b = (mu * mu * iv).sum(1)
    out = []
    for i in range(0, len(Z), bp):
        z = Z[i:i + bp]
        F = np.concatenate([z * z, z], 1)
        mx, sm = np.full(len(z), -np.inf), np.zeros(len(z))
        for j in range(0, len(mu), bc):
            L = c[j:j + bc] - 0.5 * (F @ W[j:j + bc].T + b[j:j + bc])
            m = np.maximum(mx, L.max(1))
            sm = sm * np.exp(mx - m) + np.exp(L - m[:, None]).sum(1)
            mx = m
        out.append(mx + np.log(sm) - np.log(len(mu)))
    return np.concatenate(out)


def bench_gmm():
    for collapsed in (False, True):
        Z, mu, lv = data(collapsed=collapsed)
        tag = "collapsed (no exp skipped)" if collapsed else "typical posteriors"
        ref_pts = 100
        t = time.perf_counter()
        ref = gmm_logdensity_reference(Z[:ref_pts], mu, lv, block_points=5)
        t_ref = (time.perf_counter() - t) * len(Z) / ref_pts
        print(f"[{tag}] NumPy reference (blocked, 1 point block = 5 x N x d): "
              f"~{t_ref:.0f} s (scaled from {ref_pts} points)")
        for nt in (1, 2):
            with threadpool_limits(nt):
                for dt in (np.float32, np.float64):
                    t = time.perf_counter()
                    g = gemm_form(Z[:2000], mu, lv, dt)
                    el = (time.perf_counter() - t) * 5
                    err = np.abs(g[:ref_pts] - ref).max()
                    print(f"[{tag}] NumPy GEMM form {np.dtype(dt).name}, {nt} BLAS thread(s): "
                          f"~{el:.1f} s (scaled from 2000 points), max |err| {err:.1e}")
            for dt in (np.float32, np.float64):
                a = [x.astype(dt) for x in (Z, mu, lv)]
                t = time.perf_counter()
                out = mixture.gmm_logdensity(*a, nt, 256, 64)
                el = time.perf_counter() - t
                err = np.abs(out[:ref_pts] - ref).max()
                print(f"[{tag}] compiled gmm_logdensity {np.dtype(dt).name} ({mixture.SIMD}), "
                      f"{nt} thread(s): {el:.2f} s, max |err| vs reference {err:.1e}")


class FakeMLP:
    """encode: linear; decode: 40-500-500-784 tanh MLP in float32 with reused buffers."""

    def __init__(self, D=784, d=40, h=500, n_threads=None, seed=0):
        r = np.random.default_rng(seed)
        self.We = r.normal(0, 0.02, (D, 2 * d)).astype(np.float32)
        self.W1 = r.normal(0, 1 / np.sqrt(d), (d, h)).astype(np.float32)
        self.W2 = r.normal(0, 1 / np.sqrt(h), (h, h)).astype(np.float32)
        self.W3 = r.normal(0, 1 / np.sqrt(h), (h, D)).astype(np.float32)
        self.d, self.n_threads = d, n_threads

    def encode(self, X):
        H = X.astype(np.float32) @ self.We
        return H[:, :self.d], H[:, self.d:] - 2.0

    def decode_logits(self, Z):
        return np.tanh(np.tanh(Z @ self.W1) @ self.W2) @ self.W3


def bench_iwae(n=50, k=1000):
    X = (np.random.default_rng(1).random((n, 784)) < 0.3).astype(np.float32)
    for nt in (1, 2):
        m = FakeMLP(n_threads=nt)
        t = time.perf_counter()
        iwae_nll(m, X, k, rng=0)
        el = time.perf_counter() - t
        t = time.perf_counter()
        with threadpool_limits(nt):
            Z = np.random.default_rng(0).standard_normal((4096, 40)).astype(np.float32)
            for _ in range(n * k // 4096):
                m.decode_logits(Z)
        dec = (time.perf_counter() - t) * n * k / (n * k // 4096 * 4096)
        print(f"iwae_nll MLP 40-500-500-784, {nt} thread(s): {n * k / el:,.0f} samples/s "
              f"({n} examples x k={k} in {el:.1f} s; the decoder alone takes {dec:.1f} s)")


if __name__ == "__main__":
    which = sys.argv[1:] or ["gmm", "iwae"]
    if "gmm" in which:
        bench_gmm()
    if "iwae" in which:
        bench_iwae()
