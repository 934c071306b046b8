"""Analytic KL and active units."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from vaeas_np.errors import InvalidInputError, InvalidParameterError
from vaeas_np.metrics import active_units, kl_divergence


@settings(deadline=None, max_examples=40)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)),
                  elements=st.floats(-4, 4)), st.data())
def test_kl_matches_closed_form_per_dim(mu, data):
    lv = data.draw(hnp.arrays(np.float64, mu.shape, elements=st.floats(-4, 4)))
    var = np.exp(lv)
    # KL(N(m, v) || N(0, 1)) = log(1/sqrt(v)) + (v + m^2)/2 - 1/2, per dim
    ref = (-0.5 * lv + 0.5 * (var + mu ** 2) - 0.5).sum(1)
    np.testing.assert_allclose(kl_divergence(mu, lv, return_per_example=True), ref,
                               rtol=1e-12, atol=1e-12)
    assert kl_divergence(mu, lv) == pytest.approx(ref.mean(), rel=1e-12, abs=1e-12)
    assert np.all(kl_divergence(mu, lv, return_per_example=True) >= -1e-12)


def test_kl_monte_carlo():
    r = np.random.default_rng(0)
    mu, lv = np.array([[0.7, -1.2]]), np.array([[-0.5, 0.8]])
    z = mu + np.exp(0.5 * lv) * r.standard_normal((400000, 2))
    from vaeas_np.metrics._gaussian import diag_gaussian_logpdf, std_normal_logpdf
    mc = np.mean(diag_gaussian_logpdf(z, mu, lv) - std_normal_logpdf(z))
    assert kl_divergence(mu, lv) == pytest.approx(mc, abs=0.01)


def test_active_units_counts_population_variance():
    mu = np.zeros((4, 3))
    mu[:, 0] = [0.1, -0.1, 0.1, -0.1]        # variance (ddof=0) exactly 0.01 -> active
    mu[:, 1] = [0.05, -0.05, 0.05, -0.05]    # 0.0025 -> inactive
    mu[:, 2] = [3, 0, 0, 0]                   # 1.6875 -> active
    assert active_units(mu) == 2
    assert active_units(mu, threshold=0.0) == 3
    assert active_units(mu, threshold=2.0) == 0
    with pytest.raises(InvalidParameterError):
        active_units(mu, threshold=-1)
    with pytest.raises(InvalidInputError):
        active_units(np.zeros(3))
