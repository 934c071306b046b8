"""The variational autoencoder with an estimator API (fit / transform / score ...).

Objective for a minibatch B (SPEC section 3), means over the batch::

    mu, logvar = encoder(x);   z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)
    recon_i = -log p(x_i | z_i)          (Bernoulli on the decoder's logits)
    KL_i    = KL(q(z | x_i) || N(0, I))  (analytic)
    L       = mean_i recon_i + beta * mean_i KL_i

:class:`~vaeas_np.models.vaeas.VAEAS` adds the auxiliary classifier through
the :meth:`VAE._latent_extra_forward` / :meth:`VAE._latent_extra_backward` hooks.
"""
import contextlib
import math
import sys
import time

import numpy as np

from .._threads import get_num_threads, thread_limits
from .._validation import check_positive_int
from ..data import check_array, iterate_minibatches
from ..errors import (InvalidInputError, InvalidParameterError, NotFittedError,
                      TrainingDivergedError)
from ..nn import MLP, Adam
from ..nn.activations import ACTIVATIONS
from .._ext import fused as _fused
try:
    from .._ext import noise as _noise
except ImportError:         # built without NumPy's libnpyrandom: noise drawn in Python
    _noise = None
from ..metrics._bernoulli import bernoulli_loglik

_BINARIZE = ("dynamic", "static", "threshold")
#: the purposes the seed is split into; each gets its own Generator (saved in checkpoints)
RNG_STREAMS = ("init", "shuffle", "binarize", "noise", "eval")


class VAE:
    """Variational autoencoder with Bernoulli decoder and Gaussian encoder.

    Parameters
    ----------
    latent_dim : int
        Size d of z.
    encoder_layers, decoder_layers : tuple of int
        Hidden widths of the encoder and decoder MLPs.
    activation : {"relu", "tanh", "sigmoid", "identity"}
    beta : float
        Weight of the KL term (beta-VAE; 1 is the plain VAE).
    learning_rate : float
        Adam learning rate.
    batch_size, epochs : int
    binarize : {"dynamic", "static", "threshold"}
        "dynamic" draws x ~ Bernoulli(pixel) afresh for every minibatch (Burda et al.);
        "static" uses X as given; "threshold" uses x > 0.5.
    seed : int or None
        Seed of every random stream (initialisation, shuffling, binarisation, noise).
        None draws fresh entropy (recorded in ``seed_`` so the run can be repeated).
    n_threads : int or None
        Threads for BLAS and the compiled kernels (None = all cores).
    verbose : bool or "auto"
        Progress bar while fitting ("auto": only when stderr is a terminal).
    dtype : "float32" or "float64"
        Training precision (float32; float64 is for gradient tests).
    """

    _kind = "VAE"

    def __init__(self, latent_dim=40, encoder_layers=(500, 500), decoder_layers=(500,) * 5,
                 activation="relu", beta=1.0, learning_rate=1e-3, batch_size=128, epochs=300,
                 binarize="dynamic", seed=None, n_threads=None, verbose="auto",
                 dtype="float32"):
        self.latent_dim = latent_dim
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.activation = activation
        self.beta = beta
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.binarize = binarize
        self.seed = seed
        self.n_threads = n_threads
        self.verbose = verbose
        self.dtype = dtype

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls):
        import inspect
        names = []
        for klass in reversed(cls.__mro__):
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self, deep=True):
        """Constructor parameters as a dict (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for k, v in params.items():
            if k not in valid:
                raise InvalidParameterError(f"{type(self).__name__} has no parameter {k!r}; "
                                            f"valid parameters: {valid}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        default = type(self)()
        changed = {k: v for k, v in self.get_params().items() if getattr(default, k) != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _validate_params(self):
        def widths(name, v):
            try:
                v = tuple(v)
            except TypeError:
                raise InvalidParameterError(f"{name} must be a tuple of widths, got {v!r}")
            for w in v:
                check_positive_int(w, f"each width in {name}")
            return v

        check_positive_int(self.latent_dim, "latent_dim")
        widths("encoder_layers", self.encoder_layers)
        widths("decoder_layers", self.decoder_layers)
        if self.activation not in ACTIVATIONS:
            raise InvalidParameterError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                                        f"got {self.activation!r}")
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta)
                and self.beta >= 0):
            raise InvalidParameterError(f"beta must be a finite number >= 0, got {self.beta!r}")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1e3):
            raise InvalidParameterError(
                f"learning_rate must be a positive number (e.g. 1e-3), got {self.learning_rate!r}")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.epochs, "epochs", minimum=0)
        if self.binarize not in _BINARIZE:
            raise InvalidParameterError(f"binarize must be one of {_BINARIZE}, "
                                        f"got {self.binarize!r}")
        if self.seed is not None:
            check_positive_int(self.seed, "seed", minimum=0)
        get_num_threads(self.n_threads)
        if np.dtype(self.dtype) not in (np.float32, np.float64):
            raise InvalidParameterError(f"dtype must be float32 or float64, got {self.dtype!r}")

    # ------------------------------------------------------------- set up
    def _make_rngs(self):
        ss = np.random.SeedSequence(self.seed)
        self.seed_ = int(ss.entropy)
        self.rngs_ = {name: np.random.Generator(np.random.PCG64(child))
                      for name, child in zip(RNG_STREAMS, ss.spawn(len(RNG_STREAMS)))}

    def _build(self, n_features, pixel_mean=None):
        """Create (and initialise) networks and optimizers for ``n_features`` inputs."""
        dt = np.dtype(self.dtype)
        d = int(self.latent_dim)
        self.n_features_in_ = int(n_features)
        self.encoder_ = MLP((n_features, *self.encoder_layers, 2 * d), self.activation,
                            "identity", dt, sparse_input=True)   # binarised images: ~87% zeros
        self.decoder_ = MLP((d, *self.decoder_layers, n_features), self.activation,
                            "identity", dt)
        rng = self.rngs_["init"]
        self.encoder_.initialize(rng)
        self.decoder_.initialize(rng)
        # The decoder's output layer starts at zero weights, so the initial model is the
        # pixel-mean model: with random output weights the logits start as noise of std ~1,
        # and the fastest way for Adam to remove it is to kill the decoder's ReLUs (measured:
        # 88% of the last hidden layer dead after 60 steps, KL -> 0, posterior collapse).
        self.decoder_.layers[-1].W[...] = 0
        if pixel_mean is not None:
            # output bias = logit of the mean training pixel (per pixel), clipped away from 0/1
            p = np.clip(np.asarray(pixel_mean, np.float64), 1e-3, 1 - 1e-3)
            self.decoder_.layers[-1].b[...] = np.log(p) - np.log1p(-p)
        self.optimizers_ = {
            "encoder": Adam(self.encoder_.params, self.learning_rate),
            "decoder": Adam(self.decoder_.params, self.learning_rate)}
        self.epoch_ = 0
        self.history_ = []
        self._buffers = {}
        self._nt = 1                    # kernel threads outside fit (fit sets its own)

    def _buffers_for(self, b):
        buf = self._buffers.get(b)
        if buf is None:
            dt, d, D = np.dtype(self.dtype), int(self.latent_dim), self.n_features_in_
            buf = self._buffers[b] = {
                "eps": np.empty((b, d), dt), "std": np.empty((b, d), dt),
                "z": np.empty((b, d), dt), "dlogits": np.empty((b, D), dt),
                "denc": np.empty((b, 2 * d), dt),
                "var": np.empty((b, d), dt),
                "kl_i": np.empty(b, dt), "ll_rows": np.empty(b)}
        return buf

    # ------------------------------------------------------ objective
    def _forward_backward(self, x, eps, idx=None, update=False, noise=None):
        """One forward and backward pass of the objective on a minibatch.

        x: (B, D) binary inputs; eps: (B, d) standard-normal noise (consumed).
        Writes the gradients of the batch-mean objective into the networks'
        ``grads``; returns a dict of batch means (loss, recon, kl, ...).

        ``update=True`` (training): each network's Adam step is taken during its
        backward, a layer at a time (:meth:`MLP.backward` with ``optimizer``), and
        ``grads`` are not written.  The loss is checked first: a non-finite loss
        raises :class:`TrainingDivergedError` before any parameter moves.
        """
        B, d = x.shape[0], int(self.latent_dim)
        buf = self._buffers_for(B)
        enc = self.encoder_.forward(x, side=noise)     # noise: fills eps meanwhile
        mu, logvar = enc[:, :d], enc[:, d:]
        std, z, var, kl_i = buf["std"], buf["z"], buf["var"], buf["kl_i"]
        np.multiply(logvar, 0.5, out=std)
        np.exp(std, out=std)                            # std = exp(logvar / 2)
        # z = mu + std * eps, var = std^2 and the KL per example
        # 0.5 sum_d (mu^2 + var - 1 - logvar), one compiled pass (latent_forward_reference)
        _fused.latent_forward(enc, std, eps, z, var, kl_i)
        logits = self.decoder_.forward(z)

        # Bernoulli NLL sum_d softplus(l) - x l and its gradient (sigmoid(l) - x) / B,
        # one compiled pass (softplus(l) = max(l, 0) + log1p(exp(-|l|)), stable)
        ll, dlogits = buf["ll_rows"], buf["dlogits"]
        _fused.bernoulli_rows(x, logits, 1, ll, dlogits, 1.0 / B, self._nt)
        recon = -float(ll.sum()) / B
        kl = float(kl_i.mean())
        stats = {"recon": recon, "kl": kl}
        self._latent_extra_forward(z, idx, mu, logvar, kl_i, stats)
        beta = float(self.beta)
        stats["loss"] = recon + beta * kl + stats.pop("_extra_loss", 0.0)
        if update:
            self._check_loss(stats)                     # before any parameter moves
        extra = self._latent_extra_backward(update)
        opt = self.optimizers_ if update else {}
        dz = self.decoder_.backward(dlogits, optimizer=opt.get("decoder"))   # dL/dz (recon)
        if extra is not None:
            dz += extra
        # through z = mu + std * eps and the beta * KL term, one compiled pass:
        # dL/dmu = dz + beta mu / B, dL/dlogvar = dz eps std / 2 + beta (var - 1) / (2B)
        denc = buf["denc"]
        _fused.latent_backward(enc, std, eps, var, dz, denc, beta / B, 0.5 * beta / B)
        self.encoder_.backward(denc, need_input_grad=False, optimizer=opt.get("encoder"))
        return stats

    def _networks(self):
        """The model's MLPs (their fused kernels get the model's thread count)."""
        return [self.encoder_, self.decoder_]

    @contextlib.contextmanager
    def _threads(self):
        """``thread_limits(self.n_threads)`` with every network's compiled kernels (the
        GEMM included) on the same number of threads; yields it.  Evaluation of a model
        that was loaded, not fitted, in this process ran them on one thread before."""
        with thread_limits(self.n_threads) as nt:
            self._nt = nt
            for net in self._networks():
                net.n_threads = nt
            yield nt

    def _latent_extra_forward(self, z, idx, mu, logvar, kl_i, stats):
        """Hook for VAE-AS: the extra terms' forward on z (adds to ``stats``, with
        ``stats["_extra_loss"]`` for the loss).  Plain VAE: nothing."""

    def _latent_extra_backward(self, update):
        """Hook for VAE-AS: extra dL/dz (B, d) or None (with ``update``, the extra
        networks also take their step).  Plain VAE: nothing."""
        return None

    def _after_update(self):
        """Hook for VAE-AS: what a training step does after the networks' updates."""

    def _check_loss(self, stats):
        if not math.isfinite(stats["loss"]):
            raise TrainingDivergedError(
                f"the training loss became {stats['loss']} at epoch {self.epoch_ + 1}; "
                "parameters were not updated with it. Lower learning_rate, check the input "
                "data, or resume from the last good checkpoint.")

    def __getstate__(self):
        """Copies and pickles leave out the noise job (pointers into this model's
        generator and buffer); the copy makes its own on its first training step."""
        state = self.__dict__.copy()
        state.pop("_noise_jobs", None)
        return state

    def _noise_job(self, eps):
        """``rngs_["noise"].standard_normal(out=eps)`` as a job the encoder's forward runs
        on a spare thread (:class:`vaeas_np._ext.noise.NormalFill`, kept per buffer and
        generator); None without the compiled sampler."""
        gen = self.rngs_["noise"]
        job = self._noise_jobs.get(id(eps)) if hasattr(self, "_noise_jobs") else None
        if job is None or job.generator is not gen or job.out is not eps:
            if _noise is None:
                return None
            job = _noise.NormalFill(gen, eps)
            self._noise_jobs = {id(eps): job}
        return job

    def _train_step(self, x, idx):
        eps = self._buffers_for(x.shape[0])["eps"]
        job = self._noise_job(eps)
        if job is None:
            self.rngs_["noise"].standard_normal(out=eps, dtype=eps.dtype)
        with np.errstate(over="ignore", invalid="ignore"):   # divergence is reported below
            stats = self._forward_backward(x, eps, idx, update=True, noise=job)
        self._check_loss(stats)
        self._after_update()
        return stats

    # ------------------------------------------------------------- fit
    def _check_X(self, X, name="X"):
        X = check_array(X, name=name, dtype=np.dtype(self.dtype))
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"{name} has {X.shape[1]} features (columns) but the model was trained on "
                f"{self.n_features_in_}; pass data with the same layout as in fit")
        return X

    def fit(self, X, y=None, *, callbacks=(), warm_start=False):
        """Train on ``X`` ((n, d) intensities in [0, 1]) for ``epochs`` epochs.

        With ``warm_start=True`` (or after :func:`vaeas_np.load_model`) training
        continues from the current epoch up to ``epochs``.  ``callbacks`` are
        called as ``cb(model, epoch_record)`` after every epoch (checkpoints,
        logs); a callback returning ``False`` stops training.
        """
        self._validate_params()
        if not (warm_start and hasattr(self, "encoder_")):
            X = check_array(X, name="X", dtype=np.dtype(self.dtype))
            self._make_rngs()
            self._build(X.shape[1], pixel_mean=X.mean(axis=0))
            self._setup_fit(X)
        else:
            X = self._check_X(X)
            self._resume_fit(X)
        self._fit_epochs(X, callbacks)
        return self

    def _setup_fit(self, X):
        """Hook for subclasses: one-time setup that needs the training data."""

    def _resume_fit(self, X):
        """Hook for subclasses: checks when training continues."""

    def _fit_epochs(self, X, callbacks=()):
        verbose = self.verbose
        if verbose == "auto":
            verbose = sys.stderr.isatty()
        n_batches = math.ceil(X.shape[0] / self.batch_size)
        with self._threads():
            while self.epoch_ < self.epochs:
                t0 = time.perf_counter()          # seconds include tree rebuilds
                self._before_epoch(X)
                sums, seen = {}, 0
                batches = iterate_minibatches(
                    X, self.batch_size, shuffle_rng=self.rngs_["shuffle"],
                    binarize_rng=self.rngs_["binarize"], binarize=self.binarize,
                    reuse_buffer=True, dtype=self.dtype)
                bar = None
                if verbose:
                    from tqdm.auto import tqdm
                    bar = tqdm(total=n_batches, desc=f"epoch {self.epoch_ + 1}/{self.epochs}",
                               leave=False, file=sys.stderr)
                for i, (idx, xb) in enumerate(batches):
                    stats = self._train_step(xb, idx)
                    b = xb.shape[0]
                    for k, v in stats.items():
                        sums[k] = sums.get(k, 0.0) + v * b
                    seen += b
                    if bar is not None:
                        bar.update(1)
                        if i % 20 == 0:
                            bar.set_postfix({k: f"{sums[k] / seen:.2f}"
                                             for k in self._progress_keys() if k in sums})
                if bar is not None:
                    bar.close()
                self.epoch_ += 1
                record = {"epoch": self.epoch_, **{k: v / seen for k, v in sums.items()},
                          "seconds": time.perf_counter() - t0}
                self._after_epoch(X, record)
                self.history_.append(record)
                if verbose:
                    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in record.items()), file=sys.stderr)
                stop = False
                for cb in callbacks:
                    if cb(self, record) is False:
                        stop = True
                if stop:
                    break

    def _progress_keys(self):
        return ("loss", "kl")

    def _before_epoch(self, X):
        """Hook for subclasses (e.g. rebuilding the classifier's tree)."""

    def _after_epoch(self, X, record):
        """Hook for subclasses (extra per-epoch figures)."""

    # ------------------------------------------------------- inference
    def _check_fitted(self):
        if not hasattr(self, "encoder_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call "
                                 "fit(X) or load a saved model with vaeas_np.load_model(path)")

    def _eval_batches(self, n, size=1024):
        for s in range(0, n, size):
            yield slice(s, min(n, s + size))

    def encode(self, X, *, _checked=False):
        """Posterior parameters (mu, logvar), each (n, latent_dim) float arrays."""
        self._check_fitted()
        if not _checked:
            X = self._check_X(X)
        d = int(self.latent_dim)
        mu = np.empty((X.shape[0], d), X.dtype)
        logvar = np.empty_like(mu)
        with self._threads():
            for s in self._eval_batches(X.shape[0]):
                out = self.encoder_.forward(X[s])
                mu[s], logvar[s] = out[:, :d], out[:, d:]
        return mu, logvar

    def decode_logits(self, Z):
        """Bernoulli logits (m, n_features) of p(x | z); an internal buffer reused by
        the next call to this method (copy it if you keep it)."""
        self._check_fitted()
        Z = np.ascontiguousarray(Z, dtype=np.dtype(self.dtype))
        if Z.ndim != 2 or Z.shape[1] != int(self.latent_dim):
            raise InvalidInputError(f"Z must have shape (m, {self.latent_dim}) "
                                    f"(latent_dim), got {Z.shape}")
        with self._threads():
            return self.decoder_.forward(Z)

    def transform(self, X):
        """Posterior means E_q[z | x], (n, latent_dim)."""
        return self.encode(X)[0]

    def reconstruct(self, X):
        """Bernoulli means p(x | z = E_q[z | x]) for each row of X, (n, n_features)."""
        mu = self.transform(X)
        out = np.empty((mu.shape[0], self.n_features_in_), mu.dtype)
        for s in self._eval_batches(mu.shape[0]):
            out[s] = _sigmoid(self.decode_logits(mu[s]))
        return out

    def sample(self, n=1, *, rng=None, binary=False):
        """Draw ``n`` images from the model: z ~ N(0, I), then the Bernoulli means
        (``binary=True``: Bernoulli draws).  ``rng``: seed or Generator
        (default: the model's own evaluation stream)."""
        self._check_fitted()
        rng = self.rngs_["eval"] if rng is None else np.random.default_rng(rng)
        z = rng.standard_normal((int(n), int(self.latent_dim))).astype(self.dtype)
        out = np.empty((int(n), self.n_features_in_), z.dtype)
        for s in self._eval_batches(int(n)):
            out[s] = _sigmoid(self.decode_logits(z[s]))
        if binary:
            out = (rng.random(out.shape) < out).astype(out.dtype)
        return out

    def score(self, X, k=5000, *, rng=None):
        """Mean importance-weighted log-likelihood log p(x) (nats; higher is better),
        with ``k`` importance samples (Burda et al. 2015).  X should be binary (e.g.
        ``dataset.test_binary``); non-binary values are used as Bernoulli targets."""
        from ..metrics import iwae_nll
        self._check_fitted()
        X = self._check_X(X)
        return -iwae_nll(self, X, k=k, rng=self.rngs_["eval"] if rng is None else rng)

    def elbo(self, X, *, rng=None):
        """Mean ELBO (one z sample per example) over X; returns dict(elbo, recon, kl)."""
        self._check_fitted()
        X = self._check_X(X)
        rng = self.rngs_["eval"] if rng is None else np.random.default_rng(rng)
        mu, logvar = self.encode(X, _checked=True)
        recon = 0.0
        for s in self._eval_batches(X.shape[0]):
            eps = rng.standard_normal(mu[s].shape).astype(mu.dtype)
            logits = self.decode_logits(mu[s] + np.exp(0.5 * logvar[s]) * eps)
            recon -= float(bernoulli_loglik(X[s], logits, get_num_threads(self.n_threads)).sum())
        recon /= X.shape[0]
        kl = float((0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64))
                           - 1 - logvar)).sum(axis=1).mean())
        return {"elbo": -(recon + kl), "recon": recon, "kl": kl}

    # -------------------------------------------------------- saving
    def save(self, path):
        """Write the model (weights, optimizer state, config, RNG states, history) to
        an HDF5 file, atomically.  Load it with :func:`vaeas_np.load_model`."""
        from .io import save_model
        save_model(self, path)

    def _state_arrays(self):
        """name -> array, everything needed to resume training exactly."""
        arrays = {"encoder/params": self.encoder_.params, "decoder/params": self.decoder_.params}
        for name, opt in self.optimizers_.items():
            arrays[f"optim/{name}/m"] = opt.m
            arrays[f"optim/{name}/v"] = opt.v
        return arrays

    def _state_meta(self):
        return {"epoch": self.epoch_, "n_features": self.n_features_in_, "seed_": self.seed_,
                "history": self.history_,
                "optim_steps": {k: o.step_count for k, o in self.optimizers_.items()},
                "rngs": {k: g.bit_generator.state for k, g in self.rngs_.items()}}

    def _restore(self, arrays, meta):
        self._make_rngs()
        self.seed_ = meta["seed_"]
        self._build(meta["n_features"])
        self.encoder_.params[...] = arrays["encoder/params"]
        self.decoder_.params[...] = arrays["decoder/params"]
        for name, opt in self.optimizers_.items():
            opt.load_state(arrays[f"optim/{name}/m"], arrays[f"optim/{name}/v"],
                           meta["optim_steps"][name])
        for k, st in meta["rngs"].items():
            self.rngs_[k].bit_generator.state = st
        self.epoch_ = meta["epoch"]
        self.history_ = meta["history"]


def latent_forward_reference(enc, std, eps):
    """NumPy reference of ``_ext.fused.latent_forward``: (z, var, kl_i) from the encoder's
    output enc = [mu | logvar] (B, 2d), std = exp(logvar / 2) and the noise eps (B, d)."""
    d = enc.shape[1] // 2
    mu, logvar = enc[:, :d], enc[:, d:]
    z = np.multiply(std, eps)
    z += mu
    var = np.multiply(std, std)
    t = np.multiply(mu, mu)
    t += var
    t -= logvar
    kl_i = 0.5 * (t.sum(axis=1, dtype=np.float64) - d)
    return z, var, kl_i.astype(enc.dtype)


def latent_backward_reference(enc, std, eps, var, dz, beta, B):
    """NumPy reference of ``_ext.fused.latent_backward``: dL/d[mu | logvar] (B, 2d) from
    dL/dz and the beta * KL term of the batch-mean objective."""
    d = enc.shape[1] // 2
    mu = enc[:, :d]
    denc = np.empty_like(enc)
    dmu, dlv = denc[:, :d], denc[:, d:]
    np.multiply(mu, beta / B, out=dmu)
    dmu += dz                                       # dL/dmu = dz + beta mu / B
    np.multiply(dz, eps, out=dlv)
    dlv *= std
    dlv *= 0.5                                      # dz * eps * std / 2
    t = np.subtract(var, 1.0)
    t *= 0.5 * beta / B
    dlv += t                                        # + beta (e^logvar - 1) / (2B)
    return denc


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))

