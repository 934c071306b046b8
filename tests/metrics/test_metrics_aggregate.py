"""Monte Carlo and exact aggregate-posterior MI / MD."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vaeas_np.errors import InvalidParameterError
from vaeas_np.metrics import exact_aggregate_mi_md, monte_carlo_mi_md
from vaeas_np.metrics._gaussian import diag_gaussian_logpdf, std_normal_logpdf
from vaeas_np.metrics.reference import gmm_logdensity_reference


def posteriors(N, d, seed, spread=1.0, logvar=-2.0):
    r = np.random.default_rng(seed)
    return r.normal(0, spread, (N, d)), r.normal(logvar, 0.3, (N, d))


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 40), st.integers(1, 4), st.integers(0, 1000), st.booleans(),
       st.sampled_from([1, 2]))
def test_exact_aggregate_equals_brute_force(N, d, seed, subset, nt):
    mu, lv = posteriors(N, d, seed)
    M = max(1, N // 2) if subset else None
    got = exact_aggregate_mi_md(mu, lv, n_points=M, rng=seed, n_threads=nt)
    r = np.random.default_rng(seed)                       # the documented procedure
    idx = np.arange(N) if M is None else r.choice(N, size=M, replace=False)
    z = mu[idx] + np.exp(0.5 * lv[idx]) * r.standard_normal((len(idx), d))
    log_q = gmm_logdensity_reference(z, mu, lv)
    log_qc = diag_gaussian_logpdf(z, mu[idx], lv[idx])
    assert got["MI"] == pytest.approx(np.mean(log_qc - log_q), rel=1e-10, abs=1e-10)
    assert got["MD"] == pytest.approx(np.mean(log_q - std_normal_logpdf(z)), rel=1e-10, abs=1e-10)
    assert got["MI"] + got["MD"] == pytest.approx(got["KL_sample"], rel=1e-12, abs=1e-10)
    assert got["MI"] <= np.log(N) + 1e-9          # q(z) >= q(z|x_j) / N pointwise


def test_mi_plus_md_is_kl():
    mu, lv = posteriors(3000, 3, 0)
    for res in (exact_aggregate_mi_md(mu, lv, rng=1),
                monte_carlo_mi_md(mu, lv, n_samples=500, rng=1)):
        assert res["MI"] + res["MD"] == pytest.approx(res["KL_sample"], rel=1e-12)
        # one z per point: per-point sd of log q(z|x) - log p(z) is about 1.4 here
        se = 1.4 / np.sqrt(res["n_points"])
        assert res["MI"] + res["MD"] == pytest.approx(res["KL"], abs=4 * se)
        assert res["MI"] > 0 and res["MD"] > 0


def test_monte_carlo_approaches_exact():
    mu, lv = posteriors(2000, 2, 5, spread=1.0, logvar=-3.0)
    exact = exact_aggregate_mi_md(mu, lv, rng=0)["MI"]
    err = {S: np.mean([abs(monte_carlo_mi_md(mu, lv, S, rng=s)["MI"] - exact) for s in range(4)])
           for S in (10, 100, 2000)}
    assert err[2000] < 0.1, (err, exact)
    assert err[10] > err[100] > err[2000], (err, exact)
    assert monte_carlo_mi_md(mu, lv, 10, rng=0)["MI"] <= np.log(10) + 1e-9


def test_float32_inputs_and_collapsed_posterior():
    N, d = 500, 4
    mu = np.zeros((N, d), np.float32)
    lv = np.zeros((N, d), np.float32)
    res = exact_aggregate_mi_md(mu, lv, rng=0, n_threads=2)
    assert res["MI"] == pytest.approx(0.0, abs=1e-5)      # every posterior is the prior
    assert res["MD"] == pytest.approx(0.0, abs=1e-5)
    assert res["KL"] == 0.0
    mu, lv = posteriors(N, d, 1)
    a = exact_aggregate_mi_md(mu.astype(np.float32), lv.astype(np.float32), rng=3)
    b = exact_aggregate_mi_md(mu, lv, rng=3)
    assert a["MI"] == pytest.approx(b["MI"], abs=1e-3)


def test_errors():
    mu, lv = posteriors(10, 2, 0)
    with pytest.raises(InvalidParameterError):
        monte_carlo_mi_md(mu, lv, n_samples=11)
    with pytest.raises(InvalidParameterError):
        exact_aggregate_mi_md(mu, lv, n_points=0)
