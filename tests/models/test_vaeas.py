"""VAE-AS: whole-objective gradients, alpha = beta equals the beta-VAE, estimators, I/O."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import vaeas_np
from tests.gradcheck import numerical_grad, rel_error, relu_margin
from vaeas_np import VAE, VAEAS
from vaeas_np.errors import InvalidInputError, InvalidParameterError


def tiny_data(n=60, d=10, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def small_vaeas(**kw):
    params = dict(latent_dim=3, encoder_layers=(8,), decoder_layers=(8,), batch_size=16,
                  epochs=2, seed=1, verbose=False, classifier_layers=(6,), n_labels=20)
    params.update(kw)
    return VAEAS(**params)


def randomize(model, rng, scale=0.5):
    for net in (model.encoder_, model.decoder_, model.classifier_):
        net.params[...] = rng.normal(size=net.params.shape) * scale
    out = model.output_
    for p in out.params():
        p[...] = rng.normal(size=p.shape) * scale


@given(softmax=st.sampled_from(["hierarchical", "full"]), V=st.integers(2, 9),
       alpha=st.floats(-2, 5), beta=st.floats(0, 3), layer_norm=st.booleans(),
       act=st.sampled_from(["relu", "tanh"]), batch=st.integers(1, 4),
       skip=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_vaeas_objective_gradient(softmax, V, alpha, beta, layer_norm, act, batch, skip, seed):
    """Encoder/decoder gradients of recon + beta KL + (alpha - beta) I_hat (classifier
    fixed) and classifier gradients of sum_i log s_i, against finite differences."""
    rng = np.random.default_rng(seed)
    d_in, latent = 5, 2
    model = VAEAS(latent_dim=latent, encoder_layers=(4,), decoder_layers=(3,),
                  classifier_layers=(5, 6), activation=act, alpha=alpha, beta=beta,
                  n_labels=V, softmax=softmax, layer_norm=layer_norm, dtype="float64", seed=3,
                  classifier_skip=skip)
    model._validate_params()
    model._make_rngs()
    model._build(d_in)
    model._setup_fit(np.zeros((max(V, 10), d_in)))
    randomize(model, rng)
    x = (rng.random((batch, d_in)) < 0.5).astype(np.float64)
    eps = rng.normal(size=(batch, latent))
    idx = rng.integers(0, len(model.labels_), batch)
    loss = lambda: model._forward_backward(x, eps, idx)["loss"]
    loss()
    assume(relu_margin(model.encoder_, model.decoder_, model.classifier_) > 1e-3)
    if layer_norm:      # a near-constant row makes the normalisation's curvature ~ var^-1.5:
        # central differences then fail by truncation (seen: var 1.6e-5, rel. error
        # 2.3e-6 at h = 1e-5 falling as h^2 to 2.3e-8 at 1e-6); keep rows of some spread
        assume(model.classifier_._outs[-1].var(axis=1).min() > 1e-3)
    g_enc, g_dec = model.encoder_.grads.copy(), model.decoder_.grads.copy()
    g_cls = model.classifier_.grads.copy()          # of sum_i log s_i (unscaled)
    if softmax == "full":
        g_out = [g.copy() for g in model.output_.grads()]
    else:
        dense = np.zeros_like(model.output_.Wb)
        dense[model.output_.touched_rows] = model.output_.grad_rows
        g_out = [dense]
    assert rel_error(g_enc, numerical_grad(loss, model.encoder_.params)) < 1e-6
    assert rel_error(g_dec, numerical_grad(loss, model.decoder_.params)) < 1e-6

    # classifier: d(sum_i log s(e_i | z_i)) / d(weights), z fixed
    z = model._buffers_for(batch)["z"].copy()
    labels = model.labels_[idx]
    sum_logp = lambda: float(model._classifier_forward(z, labels).sum())
    # the differences' round-off is eps |f| / h: for gradients below the floor the check
    # is absolute, and sum log s reaches |f| of several nats (hypothesis: |f| = 4.4,
    # ||g|| = 9e-5, error 1.3e-10 at h = 1e-5, 1.2e-9 at 1e-6: round-off, not the gradient)
    floor = 1e-4 * max(1.0, abs(sum_logp()))
    assert rel_error(g_cls, numerical_grad(sum_logp, model.classifier_.params),
                     floor) < 1e-6
    for p, g in zip(model.output_.params(), g_out):
        assert rel_error(g, numerical_grad(sum_logp, p), floor) < 1e-6


@pytest.mark.parametrize("softmax", ["hierarchical", "full"])
@pytest.mark.parametrize("ab", [1.0, 0.5])
def test_alpha_equal_beta_is_beta_vae(softmax, ab):
    X = tiny_data()
    kw = dict(latent_dim=3, encoder_layers=(8,), decoder_layers=(8,), batch_size=16,
              epochs=2, seed=4, verbose=False, beta=ab)
    vae = VAE(**kw).fit(X)
    vaeas = VAEAS(alpha=ab, softmax=softmax, classifier_layers=(5,), **kw).fit(X)
    np.testing.assert_array_equal(vae.encoder_.params, vaeas.encoder_.params)
    np.testing.assert_array_equal(vae.decoder_.params, vaeas.decoder_.params)


def test_fit_logs_mi_md_sc_and_bounds():
    X = tiny_data()
    model = small_vaeas(epochs=3).fit(X)
    for r in model.history_:
        assert {"recon", "kl", "mi", "md", "sc", "loss", "seconds"} <= set(r)
        assert r["mi"] <= math.log(20) + 1e-6
        assert abs(r["md"] - (r["kl"] - r["mi"])) < 1e-6
        assert abs(r["sc"] - (math.log(20) - r["mi"])) < 1e-6
    assert model.labels_.shape == (60,)
    assert np.bincount(model.labels_).tolist() == [3] * 20


def test_estimates_consistent():
    X = tiny_data()
    model = small_vaeas(epochs=2).fit(X)
    est = model.estimates(X, rng=0)
    logV = math.log(20)
    assert set(est) >= {"MI", "MI_entropy", "MI_fano", "fano_bound", "MD", "SC", "KL"}
    assert est["MI"] <= logV and est["MI_entropy"] <= logV + 1e-9
    assert abs(est["MI"] + est["MD"] - est["KL"]) < 1e-9
    with pytest.raises(InvalidInputError, match="training data"):
        model.estimates(X[:10])


def test_classifier_learns_on_distinct_examples():
    """16 very different examples, one label each: the encoder can tell them apart, so
    the classifier's MI estimate must rise well above 0 towards log 16 (checks that the
    classifier's own update descends SC and that (alpha - beta) I_hat reaches z)."""
    rng = np.random.default_rng(0)
    X = (rng.random((16, 30)) < 0.5).astype(np.float32) * 0.96 + 0.02
    model = VAEAS(latent_dim=4, encoder_layers=(32,), decoder_layers=(32,),
                  classifier_layers=(32,), alpha=1.0, beta=0.2, batch_size=16, epochs=150,
                  learning_rate=3e-3, seed=0, verbose=False)
    model.fit(X)
    assert model.history_[0]["mi"] < 0.5
    assert model.history_[-1]["mi"] > 1.5


@pytest.mark.parametrize("softmax", ["hierarchical", "full"])
def test_save_load_and_resume(tmp_path, softmax):
    X = tiny_data()
    full = small_vaeas(epochs=4, softmax=softmax).fit(X)
    half = small_vaeas(epochs=2, softmax=softmax).fit(X)
    half.save(tmp_path / "h.h5")
    loaded = vaeas_np.load_model(tmp_path / "h.h5")
    assert isinstance(loaded, VAEAS)
    np.testing.assert_array_equal(loaded.labels_, half.labels_)
    loaded.set_params(epochs=4).fit(X, warm_start=True)
    for name in ("encoder_", "decoder_", "classifier_"):
        np.testing.assert_array_equal(getattr(loaded, name).params, getattr(full, name).params)
    for a, b in zip(loaded.output_.params(), full.output_.params()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad, message", [
    (dict(n_labels=1), "n_labels"), (dict(n_labels=1000), "n_labels"),
    (dict(softmax="dense"), "softmax"), (dict(leaf_order="sorted"), "leaf_order"),
    (dict(classifier_steps=0), "classifier_steps"),
    (dict(classifier_learning_rate=-1.0), "classifier_learning_rate"),
    (dict(warm_start_gain=-0.5), "warm_start_gain"),
    (dict(warm_start_gain=float("nan")), "warm_start_gain"),
    (dict(deep_node_lr_factor=0.0), "deep_node_lr_factor"),
    (dict(deep_node_max_leaves=1), "deep_node_max_leaves"),
    (dict(kd_space="whitened"), "kd_space"), (dict(kd_split="random"), "kd_split"),
    (dict(classifier_skip="yes"), "classifier_skip"),
    (dict(classifier_resample=1), "classifier_resample"),
    (dict(classifier_lr_decay=0.0), "classifier_lr_decay"),
    (dict(classifier_lr_decay=1.5), "classifier_lr_decay")])
def test_impossible_hyperparameters(bad, message):
    with pytest.raises(InvalidParameterError, match=message):
        small_vaeas(**bad).fit(tiny_data())


def test_classifier_resample_draws_new_z_for_extra_steps():
    """classifier_steps = 3 with classifier_resample: the extra steps see new draws
    mu + std * eps' of the batch's posteriors (not the batch's z); without it they see
    the batch's z again.  Either way a fit is reproducible from its seed."""
    seen = {}
    for resample in (False, True):
        model = small_vaeas(classifier_steps=3, classifier_resample=resample, epochs=1)
        calls = []
        forward = model._classifier_forward

        def record(z, labels, with_grad=False, forward=forward, calls=calls):
            calls.append(np.array(z, copy=True))
            return forward(z, labels, with_grad)
        model._classifier_forward = record
        model.fit(tiny_data())
        seen[resample] = calls
        first, extra = calls[-3], calls[-2:]        # the last minibatch's three steps
        mu = model._classifier_batch[-1]          # (z, labels, mu)
        std = model._buffers_for(first.shape[0])["std"]
        for z in extra:
            if resample:
                assert not np.array_equal(z, first)
                assert np.isfinite(z).all() and np.abs((z - mu) / std).max() < 8
            else:
                np.testing.assert_array_equal(z, first)
        again = small_vaeas(classifier_steps=3, classifier_resample=resample, epochs=1)
        again.fit(tiny_data())
        np.testing.assert_array_equal(again.classifier_.params, model.classifier_.params)
    assert len(seen[True]) == len(seen[False])


def test_classifier_mi_approaches_exact_mi_on_fixed_posteriors():
    """Encoder held fixed (N = 256 known Gaussian posteriors in 2-D): the trained
    classifier's MI estimate (a Barber-Agakov lower bound) approaches the exact MI of
    the aggregate posterior from below and never exceeds log V; the k-d leaf order
    learns faster than the random one."""
    from vaeas_np.metrics import exact_aggregate_mi_md
    from vaeas_np.softmax import kd_order
    N, d = 256, 2
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(N, d)) * 2.0
    logvar = np.full((N, d), np.log(0.15 ** 2))
    exact = exact_aggregate_mi_md(mu, logvar, rng=0)["MI"]
    assert 4.5 < exact < math.log(N)
    final = {}
    for order in ("kd", "random"):
        model = VAEAS(latent_dim=d, encoder_layers=(4,), decoder_layers=(4,),
                      classifier_layers=(64, 64), epochs=0, seed=0, verbose=False,
                      batch_size=64, classifier_learning_rate=3e-3, leaf_order=order)
        model.fit(rng.random((N, 6)).astype(np.float32))
        if order == "kd":
            model.output_.set_order(kd_order(mu, model.labels_, N))
        history = model.fit_classifier(epochs=200, posteriors=(mu, logvar))
        assert max(history) <= math.log(N)
        final[order] = np.mean(history[-10:])
    assert exact - 0.9 < final["kd"] < exact + 0.1
    assert final["random"] < final["kd"]


def test_rebuild_with_warm_start_sets_rows_from_the_new_subtrees():
    """warm_start_gain: after a rebuild every node row is the bisector of its subtrees'
    mean classifier features (HierarchicalSoftmax.warm_start on the model's own
    features of the posterior means); without it the rows survive the rebuild."""
    X = tiny_data()
    plain = small_vaeas(epochs=1, warm_start_gain=None).fit(X)
    rows_before = plain.output_.Wb.copy()
    plain.rebuild_tree(X)
    np.testing.assert_array_equal(plain.output_.Wb, rows_before)

    model = small_vaeas(epochs=1, warm_start_gain=0.5).fit(X)
    model.output_.m[...] = 1.0
    trained_rows = model.output_.Wb.copy()
    model.rebuild_tree(X)
    mu = model.encode(X)[0]
    expected = vaeas_np.softmax.HierarchicalSoftmax(model.output_.n_in, 20)
    expected.set_order(model.output_.tree.order.copy())
    expected.warm_start(model.classifier_.forward(mu.astype(np.float32)).copy(),
                        model.labels_, gain=0.5)
    np.testing.assert_allclose(model.output_.Wb, expected.Wb, rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.output_.Wb, trained_rows)
    assert np.all(model.output_.m == 0)              # Adam moments reset


def test_deep_node_learning_rate_and_kd_options_reach_the_layer():
    X = tiny_data()
    model = small_vaeas(epochs=1, deep_node_lr_factor=4.0, deep_node_max_leaves=4,
                        kd_space="snr", kd_split="pca").fit(X)
    sizes = model.output_.subtree_sizes()
    np.testing.assert_array_equal(model.output_.row_lr, np.where(sizes <= 4, 4.0, 1.0))
    assert small_vaeas(epochs=1).fit(X).output_.row_lr is None
    # the k-d order in SNR space is the plain k-d order of the rescaled means
    from vaeas_np.softmax import kd_order
    mu, logvar = model.encode(X)
    model.rebuild_tree(X)
    expected = kd_order(mu / np.sqrt(np.exp(logvar.astype(np.float64)).mean(0)),
                        model.labels_, model.n_labels_, split="pca")
    np.testing.assert_array_equal(model.output_.tree.order, expected)


def test_classifier_lr_decay_per_epoch():
    """Epoch e (0-based) trains the classifier MLP and the node rows at lr * decay**e."""
    seen = []
    model = small_vaeas(epochs=3, classifier_learning_rate=2e-3, classifier_lr_decay=0.5)
    step = model._classifier_step

    def spy(B):
        seen.append((model.epoch_, model.optimizers_["classifier"].lr, model._node_lr))
        step(B)
    model._classifier_step = spy
    model.fit(tiny_data())
    for epoch, mlp_lr, node_lr in seen:
        assert mlp_lr == pytest.approx(2e-3 * 0.5 ** epoch)
        assert node_lr == pytest.approx(2e-3 * 0.5 ** epoch)
    assert {e for e, _, _ in seen} == {0, 1, 2}


@pytest.mark.parametrize("model_cls", ["VAE", "VAEAS"])
def test_float64_models_train_in_float64(model_cls):
    """dtype='float64' (the checking precision) works end to end: fit, estimates, IWAE."""
    import vaeas_np
    from vaeas_np.metrics import iwae_nll
    X = (np.random.default_rng(0).random((60, 20)) < 0.3).astype(np.float64)
    kw = dict(latent_dim=3, encoder_layers=(8,), decoder_layers=(8,), epochs=2, batch_size=16,
              dtype="float64", verbose=False, seed=0)
    if model_cls == "VAEAS":
        kw.update(classifier_layers=(8,))
    model = getattr(vaeas_np, model_cls)(**kw).fit(X)
    assert model.encoder_.params.dtype == np.float64
    assert np.all(np.isfinite([r["loss"] for r in model.history_]))
    assert np.isfinite(iwae_nll(model, X[:5], k=20, rng=0))
    if model_cls == "VAEAS":
        est = model.estimates(X)
        assert np.isfinite(est["MI"]) and est["MI"] <= np.log(model.n_labels_) + 1e-9


@pytest.mark.parametrize("model_cls,kw", [
    ("VAE", {}),
    ("VAEAS", {}),                                          # alpha = beta: no dz from the classifier
    ("VAEAS", dict(alpha=2.0, beta=0.5, classifier_steps=2, classifier_resample=True)),
    ("VAEAS", dict(softmax="full", alpha=0.0, layer_norm=True)),
])
def test_train_step_equals_gradients_then_adam(model_cls, kw):
    """A training step takes each network's Adam step during its backward (a layer at a
    time, no full-size gradient): the same parameters and moments, bit for bit, as the
    gradients of _forward_backward followed by each optimizer's step."""
    X = tiny_data()
    make = (lambda: small_vaeas(**kw)) if model_cls == "VAEAS" else (
        lambda: VAE(latent_dim=3, encoder_layers=(8,), decoder_layers=(8, 8), batch_size=16,
                    epochs=1, seed=1, verbose=False))
    fused, plain = make().fit(X), make().fit(X)         # one epoch: trained, identical
    rng = np.random.default_rng(5)
    for _ in range(3):
        idx = rng.choice(len(X), 16, replace=False)
        x = (X[idx] > 0.5).astype(np.float32)
        fused._nt = plain._nt = 1
        fused._train_step(x, idx)
        eps = plain._buffers_for(16)["eps"]
        plain.rngs_["noise"].standard_normal(out=eps, dtype=eps.dtype)
        plain._forward_backward(x, eps, idx)
        plain.optimizers_["encoder"].step(plain.encoder_.grads, 1)
        plain.optimizers_["decoder"].step(plain.decoder_.grads, 1)
        if model_cls == "VAEAS":
            B = 16
            plain.optimizers_["classifier"].step(plain.classifier_.grads, 1, scale=-1.0 / B)
            plain._classifier_step(B)                       # the output layer
            for _ in range(plain.classifier_steps - 1):
                z, labels, mu = plain._classifier_batch
                buf = plain._buffers_for(B)
                buf.setdefault("z_extra", np.empty_like(buf["z"]))
                z = buf["z_extra"]
                plain.rngs_["noise"].standard_normal(out=z, dtype=z.dtype)
                z *= buf["std"]
                z += mu
                plain._classifier_forward(z, labels, with_grad=True)
                plain._classifier_backward(need_dz=False)
                plain.optimizers_["classifier"].step(plain.classifier_.grads, 1,
                                                     scale=-1.0 / B)
                plain._classifier_step(B)
    names = ["encoder", "decoder"] + (["classifier"] if model_cls == "VAEAS" else [])
    for name in names:
        a, b = fused.optimizers_[name], plain.optimizers_[name]
        for u, w in ((a.params, b.params), (a.m, b.m), (a.v, b.v)):
            np.testing.assert_array_equal(u, w)
        assert a.step_count == b.step_count
    if model_cls == "VAEAS":
        for u, w in zip(fused.output_.params(), plain.output_.params()):
            np.testing.assert_array_equal(u, w)


def test_nan_loss_stops_the_step_before_any_parameter_moves():
    """A non-finite loss raises before the first layer's update (the updates happen
    during the backward now)."""
    from vaeas_np.errors import TrainingDivergedError
    X = tiny_data()
    model = small_vaeas(epochs=1).fit(X)
    model.encoder_.layers[-1].b[0] = np.nan                # mu[:, 0] is NaN: the loss too
    before = [net.params.copy() for net in model._networks()]
    before += [p.copy() for p in model.output_.params()]
    moments = [model.optimizers_[n].m.copy() for n in ("encoder", "decoder", "classifier")]
    model._nt = 1
    idx = np.arange(16)
    with pytest.raises(TrainingDivergedError, match="not updated"):
        model._train_step((X[idx] > 0.5).astype(np.float32), idx)
    after = [net.params for net in model._networks()] + list(model.output_.params())
    for u, w in zip(before, after):
        np.testing.assert_array_equal(u, w)                # NaN == NaN here
    for n, m in zip(("encoder", "decoder", "classifier"), moments):
        np.testing.assert_array_equal(model.optimizers_[n].m, m)
