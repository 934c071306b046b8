"""VAE-AS: a VAE with an auxiliary softmax multiclassifier (SPEC sections 2-4).

Each training example i carries a label e_i (``labels_[i]``, e_i = pi(i) mod V).
A classifier s_w(e | z) (an MLP then a hierarchical or full softmax over V
labels) is trained on (z_i, e_i) to minimise the softmax cross-entropy SC; its
log-probabilities give the mutual-information estimate
``I_hat = log V + mean_i log s(e_i | z_i)`` (Barber-Agakov), and the marginal
KL ``MD_hat = mean_i KL_i - I_hat``.  Encoder and decoder minimise::

    recon + alpha * I_hat + beta * MD_hat = recon + beta * KL + (alpha - beta) * I_hat

One forward and one backward through the classifier give both gradients:
d(sum_i log s_i)/d(.) is computed once, then scaled by -1/B for the
classifier's weights and by (alpha - beta)/B for z.
"""
import math

import numpy as np

from ..errors import InvalidInputError, InvalidParameterError
from ..nn import MLP, Adam
from ..nn.layers import LayerNorm
from ..softmax import FullSoftmax, HierarchicalSoftmax
from .._validation import check_positive_int
from ..softmax.tree import KD_SPLITS, assign_labels, kd_order, random_order
from .vae import VAE

_LEAF_ORDERS = ("kd", "random")
_SOFTMAX = ("hierarchical", "full")
_KD_SPACES = ("snr", "mean")
_FULL_STATE = ("W", "b", "_mW", "_vW", "_mb", "_vb")   # FullSoftmax parameters and moments


class VAEAS(VAE):
    """VAE with an auxiliary softmax multiclassifier (VAE-AS).

    Parameters (besides those of :class:`VAE`)
    -------------------------------------------
    alpha : float
        Weight of the mutual information I(x; z) in the objective.
    beta : float
        Weight of the marginal KL(q(z) || p(z)).  alpha = beta is the beta-VAE.
    n_labels : int or None
        V, the number of labels (None: one per training example, V = N).
    softmax : {"hierarchical", "full"}
        Binary-tree softmax (O(h log V) per example) or the full softmax (O(h V)).
    classifier_layers : tuple of int
        Hidden widths of the classifier MLP on z.
    classifier_learning_rate : float or None
        Adam learning rate of the classifier MLP (None: ``learning_rate``).
    node_learning_rate : float or None
        Learning rate of the (lazy, sparse) Adam on the softmax layer's rows
        (None: ``classifier_learning_rate``).
    classifier_steps : int
        Classifier updates per minibatch (the first shares the forward/backward
        with the encoder's gradient; extra ones reuse the batch's z, or draw a new
        z per update with ``classifier_resample``).
    leaf_order : {"kd", "random"}
        Where labels sit in the tree: "kd" (default) a balanced recursive median
        split of the posterior means (SPEC section 2, "Leaf placement"; see
        ``kd_space`` and ``kd_split``), rebuilt on
        ``rebuild_epochs``; "random" the paper's literal random placement.
    rebuild_epochs : tuple of int
        For ``leaf_order="kd"``: the epochs (0 = before the first) at whose start
        the order is rebuilt from the current posterior means.  Each rebuild costs
        the MI estimate up to 2 nats for an epoch or two when the node rows keep their
        old values (they no longer match their subtrees); with the warm start
        (``warm_start_gain``) a rebuild costs little.  Measured on MNIST (V = 55,000):
        without the warm start, alpha = beta = 1 after 30 epochs, (0, 1) reached 7.56
        nats, (0, 1, 2) 7.69 and (0, 1, 2, 4) 7.62, and at alpha = 1, beta = 0.5 (0, 1, 2)
        dipped after its third rebuild.  With the warm start (gain 0.25): (0, 1) 7.91,
        (0, 1, 2) 8.07 (seed 0), and (0, 1, 2) rises in every epoch at beta = 0.5 too.
    classifier_lr_decay : float in (0, 1]
        The classifier's learning rates (MLP and node rows) are multiplied by this
        factor at every epoch: epoch e (0-based) trains at lr * decay**e.  1: constant
        (default).  Measured (MNIST, alpha = beta = 1, 30 epochs, seed 0): 0.95: 8.02 nats,
        0.9: 7.72, against 8.10 constant: the classifier needs its rate to follow the
        moving encoder (on a frozen encoder a lower rate does gain faster).
    layer_norm : bool
        Layer normalisation without affine parameters on the classifier's last
        hidden layer.
    classifier_resample : bool
        Extra classifier steps (``classifier_steps`` > 1) draw a new z from each
        example's posterior q(z|x) instead of reusing the batch's z (more distinct
        (z, label) pairs per epoch for the classifier; the noise comes from the
        training-noise stream).  Off by default.
    classifier_skip : bool
        Feed z itself to the softmax layer beside the MLP's output (node scores
        w . [MLP(z), z] + b: a k-d split of z is then one exact hyperplane).
        Measured (MNIST, 30 epochs, seed 0): 7.98 nats against 8.07 without; off.
    deep_node_lr_factor, deep_node_max_leaves : float, int
        Nodes whose subtree holds at most ``deep_node_max_leaves`` labels (the bottom
        levels) learn at ``deep_node_lr_factor`` times the node learning rate.
        Measured (same setting, bottom 4 levels): factor 3: 8.10 nats, 10: 7.92,
        against 8.07 with 1 (the default): the lost nats are not in the deep levels
        (``bench/mi_by_depth.py``: the loss per level peaks at levels 8-11 of 16).
    kd_space : {"snr", "mean"}
        The k-d order splits the posterior means divided by each dimension's average
        posterior std ("snr", default: splits fall where the codes' noise blurs the
        examples least) or the plain posterior means ("mean").
    kd_split : {"pca", "axis"}
        The k-d order splits each subtree along its first principal direction ("pca",
        default) or along the coordinate of largest spread ("axis").  Measured on MNIST
        (V = 55,000, alpha = beta = 1, 30 epochs): "snr" + "pca" 8.14 / 8.07 nats
        (seeds 0 / 1) against 8.07 / 8.02 for "mean" + "axis", ahead in all but one of
        the 60 epochs.
    warm_start_gain : float or None
        On each rebuild, re-initialise every node row from its new subtrees: the
        perpendicular bisector of the mean classifier features of the examples
        left and right of it, with logit +-2 * gain at the two means
        (:meth:`HierarchicalSoftmax.warm_start`; Adam moments reset).  None or 0:
        rows keep their values across a rebuild.  Measured on MNIST (V = 55,000,
        alpha = beta = 1, seed 0, rebuilds (0, 1)), classifier MI after 30 epochs:
        no warm start 7.56 nats, gain 1: 7.60, 0.5: 7.79, 0.25: 7.91 (and ahead of
        no warm start in every epoch: 4.51 against 3.13 nats after epoch 2).
    """

    _kind = "VAEAS"

    def __init__(self, latent_dim=40, encoder_layers=(500, 500), decoder_layers=(500,) * 5,
                 activation="relu", beta=1.0, learning_rate=1e-3, batch_size=128, epochs=300,
                 binarize="dynamic", seed=None, n_threads=None, verbose="auto",
                 dtype="float32", alpha=1.0, n_labels=None, softmax="hierarchical",
                 classifier_layers=(500, 500), classifier_learning_rate=None,
                 node_learning_rate=None, classifier_steps=1, leaf_order="kd",
                 rebuild_epochs=(0, 1, 2), layer_norm=False, warm_start_gain=0.25,
                 deep_node_lr_factor=1.0, deep_node_max_leaves=16, kd_space="snr",
                 kd_split="pca", classifier_skip=False, classifier_lr_decay=1.0,
                 classifier_resample=False):
        super().__init__(latent_dim, encoder_layers, decoder_layers, activation, beta,
                         learning_rate, batch_size, epochs, binarize, seed, n_threads,
                         verbose, dtype)
        self.alpha = alpha
        self.n_labels = n_labels
        self.softmax = softmax
        self.classifier_layers = classifier_layers
        self.classifier_learning_rate = classifier_learning_rate
        self.node_learning_rate = node_learning_rate
        self.classifier_steps = classifier_steps
        self.leaf_order = leaf_order
        self.rebuild_epochs = rebuild_epochs
        self.layer_norm = layer_norm
        self.warm_start_gain = warm_start_gain
        self.deep_node_lr_factor = deep_node_lr_factor
        self.deep_node_max_leaves = deep_node_max_leaves
        self.kd_space = kd_space
        self.kd_split = kd_split
        self.classifier_skip = classifier_skip
        self.classifier_lr_decay = classifier_lr_decay
        self.classifier_resample = classifier_resample

    def _validate_params(self):
        super()._validate_params()
        if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha)):
            raise InvalidParameterError(f"alpha must be a finite number, got {self.alpha!r}")
        if self.n_labels is not None and (isinstance(self.n_labels, bool) or not isinstance(
                self.n_labels, (int, np.integer)) or self.n_labels < 2):
            raise InvalidParameterError(
                f"n_labels must be an integer >= 2 or None (one label per example), "
                f"got {self.n_labels!r}")
        _check_choice("softmax", self.softmax, _SOFTMAX)
        _check_choice("leaf_order", self.leaf_order, _LEAF_ORDERS)
        _check_choice("kd_space", self.kd_space, _KD_SPACES)
        _check_choice("kd_split", self.kd_split, KD_SPLITS)
        for w in tuple(self.classifier_layers):
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
                raise InvalidParameterError(
                    f"classifier_layers must be positive widths, got {self.classifier_layers!r}")
        for name in ("classifier_learning_rate", "node_learning_rate"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise InvalidParameterError(f"{name} must be > 0 or None, got {v!r}")
        check_positive_int(self.classifier_steps, "classifier_steps")
        check_positive_int(self.deep_node_max_leaves, "deep_node_max_leaves", minimum=2)
        g = self.warm_start_gain
        if g is not None and not (_is_real(g) and g >= 0):
            raise InvalidParameterError(
                f"warm_start_gain must be a finite number >= 0 or None, got {g!r}")
        for name in ("classifier_skip", "classifier_resample"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise InvalidParameterError(f"{name} must be True or False, "
                                            f"got {getattr(self, name)!r}")
        g = self.classifier_lr_decay
        if not (_is_real(g) and 0 < g <= 1):
            raise InvalidParameterError(
                f"classifier_lr_decay must be a number in (0, 1], got {g!r}")
        f = self.deep_node_lr_factor
        if not (_is_real(f) and f > 0):
            raise InvalidParameterError(
                f"deep_node_lr_factor must be a finite number > 0, got {f!r}")
        if any(int(e) < 0 for e in tuple(self.rebuild_epochs)):
            raise InvalidParameterError(
                f"rebuild_epochs must be epoch numbers >= 0, got {self.rebuild_epochs!r}")

    # ------------------------------------------------------------ build
    def _setup_fit(self, X):
        n = X.shape[0]
        V = n if self.n_labels is None else int(self.n_labels)
        if V > n:
            raise InvalidParameterError(f"n_labels = {V} is more than the {n} training "
                                        "examples; use n_labels <= n (or None for n)")
        self.n_train_ = n
        self.labels_ = assign_labels(n, V, self.seed_ % (2**63))
        self._build_classifier(V)
        if self.leaf_order == "random":
            self.output_.set_order(random_order(V, self.seed_ % (2**63) + 1))

    def _resume_fit(self, X):
        if X.shape[0] != self.n_train_:
            raise InvalidInputError(
                f"this VAEAS was trained on {self.n_train_} examples with one label per row; "
                f"got {X.shape[0]} rows: continue training on the same data")

    def _build_classifier(self, V):
        dt = np.dtype(self.dtype)
        self.n_labels_ = V
        layers = tuple(self.classifier_layers)
        sizes = (int(self.latent_dim), *layers)
        self.classifier_ = MLP(sizes, self.activation, self.activation, dt)
        self.classifier_.initialize(self.rngs_["init"])
        h = sizes[-1]
        self.norm_ = LayerNorm(h, dt) if self.layer_norm else None
        if self.classifier_skip:        # the softmax layer also sees z itself
            h += int(self.latent_dim)
        self._skip_buf = None
        if self.softmax == "hierarchical":
            self.output_ = HierarchicalSoftmax(h, V, dtype=dt, rng=self.rngs_["init"],
                                               n_threads=self.n_threads)
            if self.deep_node_lr_factor != 1:
                deep = self.output_.subtree_sizes() <= int(self.deep_node_max_leaves)
                self.output_.set_row_learning_rates(
                    np.where(deep, float(self.deep_node_lr_factor), 1.0))
        else:
            self.output_ = FullSoftmax(h, V, dtype=dt, rng=self.rngs_["init"],
                                       n_threads=self.n_threads)
        self.optimizers_["classifier"] = Adam(self.classifier_.params, self._classifier_lr)

    @property
    def _lr_scale(self):
        """The classifier's learning-rate factor in the current epoch (0-based)."""
        return float(self.classifier_lr_decay) ** getattr(self, "epoch_", 0)

    @property
    def _classifier_lr(self):
        """Learning rate of the classifier MLP in the current epoch."""
        return (self.classifier_learning_rate or self.learning_rate) * self._lr_scale

    @property
    def _node_lr(self):
        base = self.node_learning_rate or self.classifier_learning_rate or self.learning_rate
        return base * self._lr_scale

    # ------------------------------------------------------ objective
    def _hidden(self, z):
        """The softmax layer's input for a batch of codes z: the classifier MLP, then
        the layer normalisation if any (the layers' own buffers: copy to keep)."""
        h = self.classifier_.forward(z)
        h = h if self.norm_ is None else self.norm_.forward(h)
        if not self.classifier_skip:
            return h
        B, nh = h.shape
        buf = self._skip_buf
        if buf is None or buf.shape[0] < B:
            buf = self._skip_buf = np.empty((B, nh + z.shape[1]), h.dtype)
        buf = buf[:B]
        buf[:, :nh] = h
        buf[:, nh:] = z
        return buf

    def _classifier_forward(self, z, labels, with_grad=False):
        """log s(labels | z); ``with_grad`` when :meth:`_classifier_backward` follows."""
        return self.output_.forward(self._hidden(z), labels, with_grad)

    def _classifier_backward(self, need_dz=True, update=False):
        """Backprop d(sum_i log s_i); returns d(sum log s)/dz (B, d) or None.

        ``update``: the output layer takes its step (:meth:`_classifier_step`) right
        after its backward, and the classifier MLP its Adam step (on SC = -mean log s)
        during the backward, a layer at a time.  The tree's node rows are then still in
        cache from the forward (the step reads them again with their moments), not
        pushed out by the decoder's and encoder's backward; the updates touch
        separate parameters, so the order does not change the numbers."""
        dh = self.output_.backward(1.0)
        B = dh.shape[0]
        if update:
            self._classifier_step(B)
        dz_skip = None
        if self.classifier_skip:
            nh = dh.shape[1] - int(self.latent_dim)
            dh, dz_skip = np.ascontiguousarray(dh[:, :nh]), dh[:, nh:]
        if self.norm_ is not None:
            dh = self.norm_.backward(dh)
        opt = self.optimizers_["classifier"] if update else None
        dz = self.classifier_.backward(dh, need_input_grad=need_dz, optimizer=opt,
                                       scale=-1.0 / B)
        if need_dz and dz_skip is not None:
            dz += dz_skip
        return dz

    def _networks(self):
        return super()._networks() + [self.classifier_]

    def _latent_extra_forward(self, z, idx, mu, logvar, kl_i, stats):
        labels = self.labels_[idx]
        logp = self._classifier_forward(z, labels, with_grad=True)
        mean_logp = float(logp.mean(dtype=np.float64))
        mi = math.log(self.n_labels_) + mean_logp
        stats["mi"] = mi
        stats["md"] = stats["kl"] - mi
        stats["sc"] = -mean_logp
        w = float(self.alpha) - float(self.beta)
        stats["_extra_loss"] = w * mi
        self._classifier_batch = (z, labels, mu)

    def _latent_extra_backward(self, update):
        B = self._classifier_batch[0].shape[0]
        w = float(self.alpha) - float(self.beta)
        if w == 0:                                   # alpha = beta: nothing flows into z
            self._classifier_backward(need_dz=False, update=update)
            return None
        dz = self._classifier_backward(need_dz=True, update=update)
        dz *= w / B                                  # (alpha - beta)/B * d(sum log s)/dz
        return dz

    def _classifier_step(self, B):
        # the output layer's step on SC = -mean log s (gradient -1/B * d(sum log s));
        # the MLP stepped in _classifier_backward(update=True)
        self.output_.step(-1.0 / B, self._node_lr)

    def _after_update(self):
        # the extra classifier-only updates (every network and the output layer took
        # their step during the backward)
        z, labels, mu = self._classifier_batch
        B = z.shape[0]
        for _ in range(int(self.classifier_steps) - 1):    # extra classifier-only updates
            if self.classifier_resample:                   # z ~ q(z|x) again: mu and std
                buf = self._buffers_for(B)                 # are still this batch's
                if "z_extra" not in buf:                   # (setdefault would allocate
                    buf["z_extra"] = np.empty_like(buf["z"])   # on every step)
                z = buf["z_extra"]
                self.rngs_["noise"].standard_normal(out=z, dtype=z.dtype)
                z *= buf["std"]
                z += mu
            self._classifier_forward(z, labels, with_grad=True)
            self._classifier_backward(need_dz=False, update=True)

    def _progress_keys(self):
        return ("loss", "kl", "mi")

    # --------------------------------------------------------- epochs
    def _before_epoch(self, X):
        self.optimizers_["classifier"].lr = self._classifier_lr
        if (self.leaf_order == "kd" and self.softmax == "hierarchical"
                and self.epoch_ in {int(e) for e in self.rebuild_epochs}):
            self.rebuild_tree(X)

    def rebuild_tree(self, X):
        """Re-place the labels in the tree by a k-d split of the posterior means of X
        (the training data, row i carrying ``labels_[i]``)."""
        mu, logvar = self.encode(X, _checked=True)
        points = mu
        if self.kd_space == "snr":
            # each latent dimension in units of its average posterior std: splits then
            # fall where the codes' noise blurs the examples least
            points = mu / np.sqrt(np.exp(logvar.astype(np.float64)).mean(0))
        self.output_.set_order(kd_order(points, self.labels_, self.n_labels_,
                                        split=self.kd_split))
        if self.warm_start_gain:
            self.output_.warm_start(self._classifier_features(mu), self.labels_,
                                    gain=float(self.warm_start_gain))

    def _classifier_features(self, z, batch=4096):
        """The softmax layer's inputs (N, h) for latent points z (N, d), in batches."""
        z = np.asarray(z, dtype=np.dtype(self.dtype))
        out = np.empty((z.shape[0], self.output_.n_in), np.dtype(self.dtype))
        with self._threads():
            for i in range(0, z.shape[0], batch):
                out[i:i + batch] = self._hidden(z[i:i + batch])
        return out

    def fit_classifier(self, X=None, *, epochs=1, posteriors=None, rng=None):
        """Train only the classifier, the encoder held fixed, for ``epochs`` passes.

        The codes are z_i ~ q(z | x_i) drawn afresh each pass, from the posteriors of
        the training data ``X`` (row i carrying ``labels_[i]``) or from given
        ``posteriors=(mu, logvar)`` (N, d) arrays.  Returns the per-epoch mean MI
        estimate log V + mean log s(e_i | z_i).
        """
        self._check_fitted()
        if posteriors is None:
            mu, logvar = self.encode(self._check_X(X), _checked=True)
        else:
            mu, logvar = (np.ascontiguousarray(a, dtype=np.dtype(self.dtype)) for a in posteriors)
        if mu.shape[0] != self.n_train_:
            raise InvalidInputError(f"fit_classifier needs one posterior per training example "
                                    f"({self.n_train_}), got {mu.shape[0]}")
        rng = self.rngs_["noise"] if rng is None else np.random.default_rng(rng)
        std = np.exp(0.5 * logvar)
        logV, history = math.log(self.n_labels_), []
        with self._threads():
            for _ in range(int(epochs)):
                total, order = 0.0, rng.permutation(mu.shape[0])
                for s in range(0, mu.shape[0], self.batch_size):
                    idx = order[s:s + self.batch_size]
                    z = mu[idx] + std[idx] * rng.standard_normal(
                        (len(idx), mu.shape[1])).astype(mu.dtype)
                    logp = self._classifier_forward(z, self.labels_[idx])
                    total += float(logp.sum(dtype=np.float64))
                    self._classifier_backward(need_dz=False, update=True)
                history.append(logV + total / mu.shape[0])
        return history

    # ------------------------------------------------------ estimators
    def estimates(self, X, *, entropy=True, entropy_examples=None, rng=None, batch_size=512):
        """Classifier-based estimates over a full pass of the training data ``X``.

        Returns a dict: ``MI`` (Barber-Agakov, the training form), ``MI_entropy``
        (log V - mean entropy of s(.|z); O(V h) per example), ``MI_fano`` (log V -
        mean H_b(P_e,i), P_e,i = 1 - s(e_i|z_i)), ``fano_bound`` (P_e log V, the
        bound of Theorem 3.3 on MI_fano's excess), ``MD`` and ``SC``, plus ``KL``.
        One z ~ q(z|x_i) per example.  The entropy form costs O(V h) per example;
        ``entropy_examples=n`` averages it over the first n examples only (the other
        estimates always use all of X).
        """
        self._check_fitted()
        X = self._check_X(X)
        if X.shape[0] != self.n_train_:
            raise InvalidInputError(
                f"estimates() needs the training data (row i carries label labels_[i]); "
                f"got {X.shape[0]} rows, trained on {self.n_train_}")
        rng = self.rngs_["eval"] if rng is None else np.random.default_rng(rng)
        logV = math.log(self.n_labels_)
        sums = dict(logp=0.0, ent=0.0, hb=0.0, pe=0.0, kl=0.0)
        n = X.shape[0]
        n_ent = n if entropy_examples is None else max(1, min(n, int(entropy_examples)))
        for s in self._eval_batches(n, batch_size):
            mu, logvar = self.encode(X[s], _checked=True)
            z = (mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)).astype(mu.dtype)
            labels = self.labels_[np.arange(s.start, s.stop)]
            logp = self._classifier_forward(z, labels).astype(np.float64)
            sums["logp"] += logp.sum()
            p = np.exp(logp)
            pe = np.clip(1.0 - p, 0.0, 1.0)
            sums["pe"] += pe.sum()
            sums["hb"] += _binary_entropy(p).sum()
            if entropy and s.start < n_ent:
                h = self._hidden(z[:n_ent - s.start])
                sums["ent"] += float(np.sum(self.output_.entropy(h), dtype=np.float64))
            sums["kl"] += float((0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar) - 1
                                        - logvar)).sum())
        mi = logV + sums["logp"] / n
        out = {"MI": mi, "MI_fano": logV - sums["hb"] / n, "fano_bound": sums["pe"] / n * logV,
               "KL": sums["kl"] / n}
        out["MD"] = out["KL"] - mi
        out["SC"] = -sums["logp"] / n
        if entropy:
            out["MI_entropy"] = logV - sums["ent"] / n_ent
        return out

    # -------------------------------------------------------- saving
    def _state_arrays(self):
        arrays = super()._state_arrays()
        arrays["classifier/params"] = self.classifier_.params
        arrays["labels"] = self.labels_
        out = self.output_
        if isinstance(out, HierarchicalSoftmax):
            arrays.update({"output/Wb": out.Wb, "output/m": out.m, "output/v": out.v,
                           "output/order": out.tree.order})
        else:
            arrays.update({f"output/{k}": getattr(out, k) for k in _FULL_STATE})
        return arrays

    def _state_meta(self):
        meta = super()._state_meta()
        meta.update(n_train=self.n_train_, n_labels=self.n_labels_, output_step=self.output_.t)
        return meta

    def _restore(self, arrays, meta):
        super()._restore(arrays, meta)
        self.n_train_ = meta["n_train"]
        self.labels_ = arrays["labels"]
        self._build_classifier(meta["n_labels"])
        self.classifier_.params[...] = arrays["classifier/params"]
        opt = self.optimizers_["classifier"]
        opt.load_state(arrays["optim/classifier/m"], arrays["optim/classifier/v"],
                       meta["optim_steps"]["classifier"])
        out = self.output_
        if isinstance(out, HierarchicalSoftmax):
            out.Wb[...] = arrays["output/Wb"]
            out.m[...] = arrays["output/m"]
            out.v[...] = arrays["output/v"]
            out.set_order(arrays["output/order"])
        else:
            for k in _FULL_STATE:
                getattr(out, k)[...] = arrays[f"output/{k}"]
        out.t = meta["output_step"]


def _is_real(v):
    """A finite Python int or float (not a bool)."""
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _check_choice(name, value, choices):
    if value not in choices:
        raise InvalidParameterError(f"{name} must be one of {choices}, got {value!r}")


def _binary_entropy(p):
    p = np.clip(p, 0.0, 1.0)
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(q > 0, q * np.log(q), 0.0))
    return h
