"""VAE: whole-objective gradients, estimator API, save/load, determinism, threads."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import vaeas_np
from tests.gradcheck import numerical_grad, rel_error, relu_margin
from vaeas_np import VAE
from vaeas_np.errors import InvalidInputError, InvalidParameterError, NotFittedError


def tiny_data(n=64, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(np.float32)


def small_vae(**kw):
    params = dict(latent_dim=3, encoder_layers=(8,), decoder_layers=(8, 8), batch_size=16,
                  epochs=2, seed=1, verbose=False)
    params.update(kw)
    return VAE(**params)


@given(d_in=st.integers(2, 6), latent=st.integers(1, 3),
       enc=st.lists(st.integers(1, 4), max_size=2), dec=st.lists(st.integers(1, 4), max_size=2),
       act=st.sampled_from(["relu", "tanh", "sigmoid"]), beta=st.floats(0, 3),
       batch=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_vae_objective_gradient(d_in, latent, enc, dec, act, beta, batch, seed):
    rng = np.random.default_rng(seed)
    model = VAE(latent_dim=latent, encoder_layers=tuple(enc), decoder_layers=tuple(dec),
                activation=act, beta=beta, seed=seed % 1000, dtype="float64")
    model._make_rngs()
    model._build(d_in)
    for net in (model.encoder_, model.decoder_):
        net.params[...] = rng.normal(size=net.params.shape) * 0.7
    x = (rng.random((batch, d_in)) < 0.5).astype(np.float64)
    eps = rng.normal(size=(batch, latent))
    loss = lambda: model._forward_backward(x, eps)["loss"]
    loss()
    assume(relu_margin(model.encoder_, model.decoder_) > 1e-3)
    g_enc, g_dec = model.encoder_.grads.copy(), model.decoder_.grads.copy()
    assert rel_error(g_enc, numerical_grad(loss, model.encoder_.params)) < 1e-6
    assert rel_error(g_dec, numerical_grad(loss, model.decoder_.params)) < 1e-6


def test_fit_transform_shapes_and_history():
    X = tiny_data()
    model = small_vae().fit(X)
    assert model.transform(X).shape == (64, 3)
    assert model.reconstruct(X[:5]).shape == (5, 12)
    assert model.sample(7).shape == (7, 12)
    assert [r["epoch"] for r in model.history_] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in model.history_)
    r = model.reconstruct(X)
    assert r.min() >= 0 and r.max() <= 1


def test_output_bias_is_logit_of_pixel_mean():
    X = tiny_data()
    model = small_vae(epochs=0).fit(X)
    p = np.clip(X.mean(0), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(model.decoder_.layers[-1].b, np.log(p / (1 - p)), rtol=1e-5)


def test_training_reduces_loss():
    rng = np.random.default_rng(0)
    protos = rng.random((4, 20)) < 0.5
    X = protos[rng.integers(0, 4, 400)].astype(np.float32) * 0.9 + 0.05
    model = small_vae(epochs=15, learning_rate=3e-3).fit(X)
    assert model.history_[-1]["loss"] < 0.8 * model.history_[0]["loss"]


def test_seeded_fit_is_deterministic():
    X = tiny_data()
    a, b = small_vae().fit(X), small_vae().fit(X)
    np.testing.assert_array_equal(a.encoder_.params, b.encoder_.params)
    np.testing.assert_array_equal(a.decoder_.params, b.decoder_.params)
    c = small_vae(seed=2).fit(X)
    assert not np.array_equal(a.encoder_.params, c.encoder_.params)


def test_one_and_two_threads_agree():
    X = tiny_data(n=256, d=30)
    kw = dict(encoder_layers=(64,), decoder_layers=(64,), batch_size=64, epochs=2)
    a = small_vae(n_threads=1, **kw).fit(X)
    b = small_vae(n_threads=2, **kw).fit(X)
    np.testing.assert_allclose(a.decoder_.params, b.decoder_.params, rtol=1e-4, atol=1e-5)


def test_save_load_roundtrip(tmp_path):
    X = tiny_data()
    model = small_vae().fit(X)
    path = tmp_path / "m.h5"
    model.save(path)
    loaded = vaeas_np.load_model(path)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_array_equal(loaded.reconstruct(X), model.reconstruct(X))
    np.testing.assert_array_equal(loaded.sample(3, rng=5), model.sample(3, rng=5))
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]        # no temporary left


def test_loaded_model_evaluates_on_its_threads(tmp_path):
    """A model loaded (not fitted) in this process runs its networks' compiled kernels
    on its own thread count when it evaluates, not on one thread."""
    X = tiny_data()
    small_vae(n_threads=2).fit(X).save(tmp_path / "m.h5")
    loaded = vaeas_np.load_model(tmp_path / "m.h5")
    assert {net.n_threads for net in loaded._networks()} == {1}     # as built
    loaded.transform(X)
    expected = min(2, vaeas_np._threads.cpu_count())
    assert {net.n_threads for net in loaded._networks()} == {expected}


def test_resume_equals_uninterrupted(tmp_path):
    X = tiny_data()
    full = small_vae(epochs=4).fit(X)
    half = small_vae(epochs=2).fit(X)
    half.save(tmp_path / "half.h5")
    resumed = vaeas_np.load_model(tmp_path / "half.h5").set_params(epochs=4)
    resumed.fit(X, warm_start=True)
    np.testing.assert_array_equal(resumed.encoder_.params, full.encoder_.params)
    np.testing.assert_array_equal(resumed.decoder_.params, full.decoder_.params)


@pytest.mark.parametrize("bad, message", [
    (dict(latent_dim=0), "latent_dim"), (dict(batch_size=-3), "batch_size"),
    (dict(learning_rate=0), "learning_rate"), (dict(beta=-1.0), "beta"),
    (dict(activation="gelu"), "activation"), (dict(binarize="maybe"), "binarize"),
    (dict(encoder_layers=(5, 0)), "encoder_layers"), (dict(n_threads=0), "n_threads")])
def test_impossible_hyperparameters(bad, message):
    with pytest.raises(InvalidParameterError, match=message):
        small_vae(**bad).fit(tiny_data())


def test_bad_input_and_unfitted():
    with pytest.raises(NotFittedError, match="fit"):
        small_vae().transform(tiny_data())
    X = tiny_data()
    X[3, 4] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        small_vae().fit(X)
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        small_vae().fit(tiny_data() * 255)
    model = small_vae(epochs=1).fit(tiny_data())
    with pytest.raises(InvalidInputError, match="features"):
        model.transform(tiny_data(d=5))


def test_get_set_params_and_repr():
    m = small_vae()
    assert m.get_params()["latent_dim"] == 3
    m.set_params(beta=0.5)
    assert m.beta == 0.5 and "beta=0.5" in repr(m)
    with pytest.raises(InvalidParameterError, match="no parameter"):
        m.set_params(nonsense=1)


def test_score_is_iwae_loglik_above_elbo():
    X = (tiny_data(n=200, d=12) > 0.5).astype(np.float32)
    model = small_vae(epochs=5).fit(X)
    elbos = [model.elbo(X[:50], rng=s)["elbo"] for s in range(5)]
    ll = model.score(X[:50], k=200, rng=0)
    assert np.isfinite(ll) and ll <= 0
    assert ll >= np.mean(elbos) - 0.05          # log p(x) estimate >= ELBO (on average)


@pytest.mark.parametrize("kind", ["VAE", "VAEAS"])
def test_training_step_allocates_no_arrays(kind):
    """After the first step (buffers made once per batch size), a training step
    allocates no NumPy arrays of batch size: traced peak stays far below one
    (batch x width) float32 array."""
    import tracemalloc
    from vaeas_np import VAEAS
    from vaeas_np._threads import thread_limits
    cls = VAE if kind == "VAE" else VAEAS
    model = cls(latent_dim=8, encoder_layers=(256, 256), decoder_layers=(256, 256), seed=0,
                verbose=False, **({"classifier_layers": (256,)} if kind == "VAEAS" else {}))
    model._validate_params()
    model._make_rngs()
    X = np.random.default_rng(0).random((512, 300)).astype(np.float32)
    model._build(300, X.mean(0))
    if kind == "VAEAS":
        model._setup_fit(X)
    x = (X[:128] > 0.5).astype(np.float32)
    idx = np.arange(128)
    with thread_limits(1) as nt:
        model._nt = nt
        for _ in range(2):
            model._train_step(x, idx)
        tracemalloc.start()
        for _ in range(3):
            model._train_step(x, idx)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    one_array = 128 * 256 * 4
    assert peak < one_array / 4, f"a training step allocated {peak} bytes"


@pytest.mark.parametrize("kind", ["VAE", "VAEAS"])
@pytest.mark.parametrize("density", [0.13, 0.5])
def test_noise_drawn_during_the_forward_trains_the_same(kind, density, monkeypatch):
    """The training step's noise is drawn by a spare thread of the encoder's sparse input
    loading (density 0.13), or first where that does not run (0.5): the parameters and
    the generator come out the same bits as with the noise drawn in Python."""
    import vaeas_np.models.vae as vae_module
    from vaeas_np import VAEAS
    from vaeas_np._threads import thread_limits
    cls = VAE if kind == "VAE" else VAEAS
    X = (np.random.default_rng(0).random((300, 200)) < density).astype(np.float32)
    runs = []
    for compiled_noise in (True, False):
        if not compiled_noise:
            monkeypatch.setattr(vae_module, "_noise", None)
        model = cls(latent_dim=6, encoder_layers=(64, 64), decoder_layers=(64,), seed=4,
                    verbose=False, n_threads=2,
                    **({"classifier_layers": (32,)} if kind == "VAEAS" else {}))
        model._validate_params()
        model._make_rngs()
        model._build(200, X.mean(0))
        if kind == "VAEAS":
            model._setup_fit(X)
        with thread_limits(2) as nt:
            model._nt = nt
            for net in model._networks():
                net.n_threads = nt
            for s in range(4):
                model._train_step(X[s * 64:(s + 1) * 64], np.arange(s * 64, (s + 1) * 64))
        assert hasattr(model, "_noise_jobs") == compiled_noise
        runs.append((np.concatenate([n.params for n in model._networks()]),
                     model.rngs_["noise"].bit_generator.state))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
