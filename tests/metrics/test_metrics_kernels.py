"""Compiled log-mean-exp and mixture kernels against their NumPy references."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from vaeas_np._ext import mixture
from vaeas_np.metrics import LogMeanExp, gmm_logdensity, logmeanexp_rows
from vaeas_np.metrics.reference import gmm_logdensity_reference, logmeanexp_rows_reference

DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def matrices(draw, max_rows=12, max_cols=40):
    dt = draw(DTYPES)
    shape = (draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols)))
    A = draw(hnp.arrays(dt, shape, elements=st.floats(-80, 80, width=32)))
    if draw(st.booleans()):                                  # sprinkle -inf
        mask = draw(hnp.arrays(np.bool_, shape))
        A[mask] = -np.inf
    return A


@settings(deadline=None, max_examples=60)
@given(matrices(), st.sampled_from([1, 2]))
def test_logmeanexp_rows_matches_reference(A, nt):
    np.testing.assert_allclose(mixture.logmeanexp_rows(A, nt), logmeanexp_rows_reference(A),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logmeanexp_rows(A, nt), logmeanexp_rows_reference(A),
                               rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=60)
@given(matrices(), st.data(), st.sampled_from([1, 2]))
def test_lse_accumulate_in_chunks_equals_whole_rows(A, data, nt):
    k = A.shape[1]
    cuts = sorted(data.draw(st.lists(st.integers(0, k), max_size=5)))
    acc = LogMeanExp(A.shape[0], nt)
    for lo, hi in zip([0] + cuts, cuts + [k]):
        acc.add(A[:, lo:hi])
    assert acc.count == k
    np.testing.assert_allclose(acc.result(), logmeanexp_rows_reference(A), rtol=1e-12, atol=1e-12)


def test_logmeanexp_special_values():
    A = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [np.nan, 0.0], [0.0, 0.0]])
    out = logmeanexp_rows(A)
    assert out[0] == -np.inf and out[1] == np.inf and np.isnan(out[2]) and out[3] == 0.0
    big = np.array([[1000.0, 1000.0], [-1000.0, -1000.0 + np.log(3.0)]])
    np.testing.assert_allclose(logmeanexp_rows(big), [1000.0, -1000.0 + np.log(2.0)], rtol=1e-15)


@st.composite
def mixtures(draw):
    dt = draw(DTYPES)
    M, N, d = draw(st.integers(1, 23)), draw(st.integers(1, 70)), draw(st.integers(1, 6))
    fl = lambda lo, hi: st.floats(lo, hi, width=32)
    Z = draw(hnp.arrays(dt, (M, d), elements=fl(-5, 5)))
    mu = draw(hnp.arrays(dt, (N, d), elements=fl(-3, 3)))
    lv = draw(hnp.arrays(dt, (N, d), elements=fl(-3, 3)))
    return Z, mu, lv


@settings(deadline=None, max_examples=80)
@given(mixtures(), st.sampled_from([1, 2]), st.sampled_from([1, 16, 32, 300]),
       st.sampled_from([1, 4, 8, 64]))
def test_gmm_logdensity_matches_reference(zml, nt, bc, bp):
    Z, mu, lv = zml
    ref = gmm_logdensity_reference(Z, mu, lv)
    got = mixture.gmm_logdensity(Z, mu, lv, nt, bc, bp)
    if Z.dtype == np.float32:      # squared distances in float32
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-4)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-9)
    np.testing.assert_array_equal(got, mixture.gmm_logdensity(Z, mu, lv, 1, bc, 4))


def test_gmm_far_components_and_simd_variants():
    """Most components far below the maximum (the skipped-exp path); every SIMD variant."""
    r = np.random.default_rng(3)
    mu = r.normal(0, 20, (3000, 3))
    lv = r.normal(-2, 1, (3000, 3))
    Z = np.concatenate([mu[:50] + 0.1 * r.standard_normal((50, 3)), r.normal(0, 30, (50, 3))])
    ref = gmm_logdensity_reference(Z, mu, lv, block_points=20)
    try:
        for simd in (False, True):
            mixture.select_simd(simd)
            np.testing.assert_allclose(gmm_logdensity(Z, mu, lv, 2), ref, rtol=1e-12, atol=1e-10)
    finally:
        mixture.select_simd(True)


def test_gmm_single_component_is_gaussian():
    r = np.random.default_rng(0)
    Z, mu, lv = r.standard_normal((9, 4)), r.standard_normal((1, 4)), r.standard_normal((1, 4))
    from vaeas_np.metrics._gaussian import diag_gaussian_logpdf
    np.testing.assert_allclose(gmm_logdensity(Z, mu, lv, 1), diag_gaussian_logpdf(Z, mu, lv),
                               rtol=1e-13)


def test_gmm_bad_shapes():
    from vaeas_np.errors import InvalidInputError
    with pytest.raises(InvalidInputError):
        gmm_logdensity(np.zeros((3, 2)), np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(InvalidInputError):
        gmm_logdensity(np.zeros((3, 2)), np.zeros((4, 2)), np.full((4, 2), np.nan))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_parallel_path_matches_reference_and_serial(dt):
    """Sizes above the kernels' serial cut-offs, so n_threads=2 really runs two threads."""
    r = np.random.default_rng(8)
    Z = r.normal(0, 2, (203, 5)).astype(dt)
    mu, lv = r.normal(0, 1, (1500, 5)).astype(dt), r.normal(-1, 1, (1500, 5)).astype(dt)
    ref = gmm_logdensity_reference(Z, mu, lv, block_points=50)
    two = mixture.gmm_logdensity(Z, mu, lv, 2, 256, 8)
    np.testing.assert_array_equal(two, mixture.gmm_logdensity(Z, mu, lv, 1, 256, 8))
    tol = dict(rtol=2e-6, atol=2e-4) if dt == np.float32 else dict(rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(two, ref, **tol)
    A = r.normal(0, 20, (300, 100)).astype(dt)
    np.testing.assert_allclose(logmeanexp_rows(A, 2), logmeanexp_rows_reference(A), rtol=1e-12)
    acc = LogMeanExp(300, 2).add(A[:, :60]).add(A[:, 60:])
    np.testing.assert_allclose(acc.result(), logmeanexp_rows_reference(A), rtol=1e-12)


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 5), st.integers(0, 9), st.integers(1, 45), st.integers(0, 2 ** 31),
       st.sampled_from([1, 2]))
def test_gaussian_log_ratio_matches_reference(n, s, d, seed, nt):
    """The importance weight's log p(z) - log q(z|x), against the two NumPy log-densities."""
    from vaeas_np.metrics._gaussian import diag_gaussian_logpdf, std_normal_logpdf
    r = np.random.default_rng(seed)
    mu, lv = r.normal(0, 2, (n, d)), r.normal(-1, 1.5, (n, d))
    z = (mu[:, None] + np.exp(lv / 2)[:, None] * r.standard_normal((n, s, d))).astype(np.float32)
    out = np.full((n, s), np.nan)
    mixture.gaussian_log_ratio(z, mu, lv, np.exp(-lv), out, nt)
    z64 = z.astype(np.float64)
    ref = std_normal_logpdf(z64) - diag_gaussian_logpdf(z64, mu[:, None], lv[:, None])
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-10)


def test_gaussian_log_ratio_threads_and_shapes():
    r = np.random.default_rng(3)
    n, s, d = 7, 300, 40                          # above the serial cut-off
    mu, lv = r.normal(0, 1, (n, d)), r.normal(-2, 1, (n, d))
    z = r.normal(0, 1, (n, s, d)).astype(np.float32)
    one, two = np.empty((n, s)), np.empty((n, s))
    mixture.gaussian_log_ratio(z, mu, lv, np.exp(-lv), one, 1)
    mixture.gaussian_log_ratio(z, mu, lv, np.exp(-lv), two, 2)
    np.testing.assert_array_equal(one, two)
    with pytest.raises(ValueError, match="must be"):
        mixture.gaussian_log_ratio(z, mu[:, :3].copy(), lv, np.exp(-lv), one, 1)
    with pytest.raises(ValueError, match="out must be"):
        mixture.gaussian_log_ratio(z, mu, lv, np.exp(-lv), one[:, :5].copy(), 1)


def test_noise_draws_do_not_depend_on_threads():
    """Each example's stream gives the same numbers, drawn on 1 or several threads."""
    from vaeas_np.metrics._sampling import draw_noise, example_streams, root_entropy
    ent = root_entropy(5)
    for n, s in ((9, 1000), (3, 5)):              # threaded, and below the threshold
        one = draw_noise(example_streams(ent, 0, n), s, 40, 1)
        streams = example_streams(ent, 0, n)
        two = draw_noise(streams, s, 40, 2)
        np.testing.assert_array_equal(one, two)
        # the streams moved on: the next chunk continues them, as on one thread
        ref = example_streams(ent, 0, n)
        draw_noise(ref, s, 40, 1)
        np.testing.assert_array_equal(draw_noise(streams, s, 40, 3), draw_noise(ref, s, 40, 1))


def test_noise_draws_from_several_caller_threads():
    """Callers on different threads (asking for different pool sizes) get their own streams'
    numbers; a pool grown by one caller does not break another's draws."""
    import threading
    from vaeas_np.metrics._sampling import draw_noise, example_streams, root_entropy
    ent = root_entropy(9)
    expected = {nt: draw_noise(example_streams(ent, 10 * nt, 10 * nt + 8), 600, 40, 1)
                for nt in (2, 3, 4, 5)}
    got, errors = {}, []

    def work(nt):
        try:
            for _ in range(5):
                got[nt] = draw_noise(example_streams(ent, 10 * nt, 10 * nt + 8), 600, 40, nt)
        except Exception as exc:                      # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(nt,)) for nt in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for nt, e in expected.items():
        np.testing.assert_array_equal(got[nt], e)


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 9), st.integers(0, 50), st.integers(1, 7), st.integers(1, 4),
       st.integers(0, 2 ** 32 - 1))
def test_compiled_normal_fill_is_numpys_standard_normal(G, n, d, threads, seed):
    """_ext.noise.normal_fill gives each generator's own standard_normal numbers (NumPy
    reference) on any number of threads, and leaves every generator where NumPy would."""
    from vaeas_np._ext import noise
    seqs = np.random.SeedSequence(seed).spawn(G)
    gens = [np.random.default_rng(s) for s in seqs]
    refs = [np.random.default_rng(s) for s in seqs]
    out = np.full((G, n, d), np.nan)
    noise.normal_fill(gens, out, threads)
    expected = np.stack([r.standard_normal((n, d)) for r in refs])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal([g.standard_normal(3) for g in gens],
                                  [r.standard_normal(3) for r in refs])


@settings(deadline=None, max_examples=25)
@given(st.lists(st.integers(0, 9), min_size=0, max_size=3), st.booleans(),
       st.integers(1, 3), st.integers(0, 2 ** 32 - 1))
def test_normal_fill_job_is_the_generators_call(shape, single, calls, seed):
    """_ext.noise.NormalFill (the training step's noise, drawn by a kernel's spare
    thread) gives generator.standard_normal(out=out, dtype=out.dtype): the same numbers,
    the generator left in the same state, call after call into the same buffer."""
    from vaeas_np._ext import noise
    dtype = np.float32 if single else np.float64
    gen, ref = np.random.default_rng(seed), np.random.default_rng(seed)
    out = np.full(shape, np.nan, dtype)
    job = noise.NormalFill(gen, out)
    for _ in range(calls):
        assert job() is out
        np.testing.assert_array_equal(out, ref.standard_normal(shape, dtype=dtype))
    assert gen.bit_generator.state == ref.bit_generator.state


def test_normal_fill_job_rejects_bad_buffers():
    from vaeas_np._ext import noise
    g = np.random.default_rng(0)
    with pytest.raises(TypeError, match="float32 or float64"):
        noise.NormalFill(g, np.empty(4, np.float16))
    with pytest.raises(TypeError, match="float32 or float64"):
        noise.NormalFill(g, [0.0, 1.0])
    with pytest.raises(ValueError, match="C-contiguous"):
        noise.NormalFill(g, np.empty((4, 4))[:, ::2])
    ro = np.empty(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        noise.NormalFill(g, ro)


def test_compiled_normal_fill_rejects_bad_arguments():
    from vaeas_np._ext import noise
    g = [np.random.default_rng(0), np.random.default_rng(1)]
    with pytest.raises(ValueError, match="2 generators for 3 rows"):
        noise.normal_fill(g, np.empty((3, 4, 2)), 1)
    with pytest.raises(ValueError, match="appears twice"):
        noise.normal_fill([g[0], g[0]], np.empty((2, 4, 2)), 2)
    with pytest.raises(ValueError, match="n_threads"):
        noise.normal_fill(g, np.empty((2, 4, 2)), 0)
    with pytest.raises(ValueError):                  # float32: a float64 buffer is needed
        noise.normal_fill(g, np.empty((2, 4, 2), np.float32), 1)


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 9), st.integers(0, 40), st.integers(1, 7), st.integers(1, 4),
       st.integers(0, 2 ** 32 - 1), st.floats(0.01, 30.0))
def test_compiled_posterior_samples_are_reparameterise(G, n, d, threads, seed, scale):
    """_ext.noise.posterior_samples (through _sampling.posterior_samples) gives the bits of
    the NumPy reference reparameterise(mu, logvar, draw_noise(...)), on any thread count,
    and leaves the streams where draw_noise leaves them."""
    from vaeas_np.metrics._sampling import (draw_noise, example_streams, posterior_samples,
                                            reparameterise, root_entropy)
    r = np.random.default_rng(seed)
    mu = r.normal(0, scale, (G, d))
    logvar = r.normal(0, scale / 3, (G, d))
    ent = root_entropy(seed)
    streams, refs = example_streams(ent, 0, G), example_streams(ent, 0, G)
    got = posterior_samples(streams, mu, logvar, n, threads)
    expected = reparameterise(mu, logvar, draw_noise(refs, n, d, 1))
    assert got.dtype == np.float32 and got.shape == (G, n, d)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(draw_noise(streams, 2, d, 1), draw_noise(refs, 2, d, 1))


def test_compiled_posterior_samples_rejects_bad_shapes():
    from vaeas_np._ext import noise
    g = [np.random.default_rng(0), np.random.default_rng(1)]
    with pytest.raises(ValueError, match="mu and sd must be"):
        noise.posterior_samples(g, np.zeros((2, 3)), np.ones((2, 4)),
                                np.empty((2, 5, 3), np.float32), 1)
    with pytest.raises(ValueError, match="2 generators for 3 rows"):
        noise.posterior_samples(g, np.zeros((3, 3)), np.ones((3, 3)),
                                np.empty((3, 5, 3), np.float32), 1)


def test_sampling_without_the_compiled_noise_gives_the_same_samples(monkeypatch):
    """A build without NumPy's libnpyrandom has no _ext.noise: the Python fallback draws
    the very same noise and samples."""
    from vaeas_np.metrics import _sampling as S
    ent = S.root_entropy(3)
    mu = np.linspace(-1, 1, 6 * 5).reshape(6, 5)
    lv = np.linspace(-2, 1, 6 * 5).reshape(6, 5)
    compiled_eps = S.draw_noise(S.example_streams(ent, 0, 6), 2000, 5, 2)
    compiled_z = S.posterior_samples(S.example_streams(ent, 0, 6), mu, lv, 2000, 2)
    monkeypatch.setattr(S, "_noise", None)
    np.testing.assert_array_equal(S.draw_noise(S.example_streams(ent, 0, 6), 2000, 5, 2),
                                  compiled_eps)
    np.testing.assert_array_equal(S.posterior_samples(S.example_streams(ent, 0, 6), mu, lv,
                                                      2000, 2), compiled_z)
