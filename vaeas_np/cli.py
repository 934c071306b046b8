"""The ``vaeas-np`` command line.

Commands::

    vaeas-np data prepare|info ...        build / inspect the HDF5 data stores
    vaeas-np train [options]              train a VAE or VAE-AS in a run directory
    vaeas-np evaluate MODEL [options]     the metrics table of a trained model
    vaeas-np reproduce ...                the paper's experiments (when installed)

Exit status: 0 success, 1 an error of the library or of the input (printed as
``error: <message>`` on stderr, no traceback), 2 training diverged (the last
good checkpoint is kept) or a command-line usage error (argparse), 130
interrupted.  ``python -m vaeas_np.cli`` is the same as ``vaeas-np``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

DATASETS = ("mnist", "binarized_mnist", "omniglot")

# constructor parameter -> how to read it from a string (flags and config files)
_INT, _FLOAT, _STR, _WIDTHS, _BOOL, _EPOCHS = "int", "float", "str", "widths", "bool", "epochs"
PARAM_TYPES = {
    "latent_dim": _INT, "encoder_layers": _WIDTHS, "decoder_layers": _WIDTHS,
    "activation": _STR, "beta": _FLOAT, "learning_rate": _FLOAT, "batch_size": _INT,
    "epochs": _INT, "binarize": _STR, "seed": _INT, "n_threads": _INT, "dtype": _STR,
    "alpha": _FLOAT, "n_labels": _INT, "softmax": _STR, "classifier_layers": _WIDTHS,
    "classifier_learning_rate": _FLOAT, "node_learning_rate": _FLOAT,
    "classifier_steps": _INT, "leaf_order": _STR, "rebuild_epochs": _EPOCHS,
    "layer_norm": _BOOL, "warm_start_gain": _FLOAT,
}
VAEAS_ONLY = ("alpha", "n_labels", "softmax", "classifier_layers", "classifier_learning_rate",
              "node_learning_rate", "classifier_steps", "leaf_order", "rebuild_epochs",
              "layer_norm", "warm_start_gain")
DATA_KEYS = ("dataset", "data", "data_key", "data_dir", "download")


def _errors():
    from . import errors
    return errors


# ====================================================================== parser
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's examples as written; descriptions are wrapped by :func:`_wrap`."""


def _wrap(text):
    import textwrap
    return textwrap.fill(" ".join(text.split()), width=79)


def _add_data_source(p, *, evaluate=False):
    g = p.add_argument_group("data (a registered data set, or an HDF5 file of your own)")
    g.add_argument("--dataset", choices=DATASETS, default=None,
                   help="registered data set" + ("" if evaluate else " (default: mnist)"))
    g.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder that already holds the raw files of --dataset (only read; "
                        "otherwise they are downloaded into the data home on first use)")
    g.add_argument("--no-download", dest="download", action="store_false", default=None,
                   help="never download missing raw files")
    g.add_argument("--data", metavar="FILE.h5", default=None,
                   help="user data: an HDF5 file with an (n, d) array of values in [0, 1]"
                        + (" (the evaluation set)" if evaluate else ""))
    g.add_argument("--data-key", metavar="KEY", default=None,
                   help="dataset name inside --data (default: X)")
    return g


def _add_train_parser(sub):
    p = sub.add_parser(
        "train", formatter_class=_Formatter, help="train a VAE or VAE-AS in a run directory",
        description=_wrap("Train a VAE or VAE-AS. The run directory receives config.json, "
                    "checkpoint.h5 (after every epoch, atomically), metrics.jsonl and "
                    "metrics.csv (one record per epoch) and, at the end, model.h5. "
                    "Parameters come from --config (TOML or JSON, keys = constructor "
                    "parameter names, e.g. latent_dim = 40) and are overridden by flags."),
        epilog="examples:\n"
               "  vaeas-np train --model vaeas --dataset mnist --alpha 1 --beta 0.5 "
               "--epochs 300 --run-dir runs/a\n"
               "  vaeas-np train --run-dir runs/a --resume          # continue after a kill\n"
               "  vaeas-np train --data my.h5 --data-key X --model vae --epochs 20\n"
               "exit status: 0 done, 1 error, 2 diverged (last good checkpoint kept).")
    p.add_argument("--model", choices=("vae", "vaeas"), default=None,
                   help="plain VAE or VAE-AS (default: vaeas)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="TOML (.toml) or JSON file of constructor parameters (and optionally "
                        "model, dataset, data, data_key, data_dir); flags override it")
    _add_data_source(p)
    r = p.add_argument_group("run")
    r.add_argument("--run-dir", metavar="DIR", default=None,
                   help="run directory (default: runs/<timestamp>)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its checkpoint (its config.json "
                        "supplies the model, parameters and data; --epochs may raise the "
                        "epoch count)")
    r.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                   help="write checkpoint.h5 every N epochs (default: 1)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")

    m = p.add_argument_group("model (defaults: the library's)")
    m.add_argument("--epochs", type=int, default=None)
    m.add_argument("--latent-dim", type=int, default=None)
    m.add_argument("--encoder-layers", metavar="W,W,...", default=None,
                   help="hidden widths of the encoder, e.g. 500,500 ('' for none)")
    m.add_argument("--decoder-layers", metavar="W,W,...", default=None,
                   help="hidden widths of the decoder, e.g. 500,500,500,500,500")
    m.add_argument("--activation", choices=("relu", "tanh", "sigmoid", "identity"),
                   default=None)
    m.add_argument("--beta", type=float, default=None, help="weight of KL (VAE) / MD (VAE-AS)")
    m.add_argument("--learning-rate", type=float, default=None)
    m.add_argument("--batch-size", type=int, default=None)
    m.add_argument("--binarize", choices=("dynamic", "static", "threshold"), default=None)
    m.add_argument("--seed", type=int, default=None)
    m.add_argument("--threads", dest="n_threads", type=int, default=None,
                   help="threads for BLAS and the compiled kernels (default: all cores)")
    m.add_argument("--dtype", choices=("float32", "float64"), default=None)
    a = p.add_argument_group("VAE-AS only")
    a.add_argument("--alpha", type=float, default=None, help="weight of the mutual information")
    a.add_argument("--n-labels", type=int, default=None,
                   help="V, number of labels (default: one per training example)")
    a.add_argument("--softmax", choices=("hierarchical", "full"), default=None)
    a.add_argument("--classifier-layers", metavar="W,W,...", default=None)
    a.add_argument("--classifier-learning-rate", type=float, default=None)
    a.add_argument("--node-learning-rate", type=float, default=None)
    a.add_argument("--classifier-steps", type=int, default=None)
    a.add_argument("--leaf-order", choices=("kd", "random"), default=None)
    a.add_argument("--rebuild-epochs", metavar="E,E,...", default=None,
                   help="epochs at whose start the k-d leaf order is rebuilt, e.g. 0,1,2,4")
    a.add_argument("--layer-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="layer normalisation on the classifier's last hidden layer")
    p.set_defaults(func=run_train)
    return p


def _add_evaluate_parser(sub):
    p = sub.add_parser(
        "evaluate", formatter_class=_Formatter, help="print the metrics table of a trained model",
        description=_wrap("Evaluate a trained model: test NLL (IWAE, on the fixed-binarised test "
                    "set), test negative ELBO, KL_test, active units (test set), NLL_train "
                    "(reconstruction term on the training set), KL_train and, for VAE-AS, "
                    "the classifier's MI, MI_entropy, MI_fano, fano_bound, MD and SC over "
                    "the training set. Training-set metrics use the training inputs "
                    "binarised as in training (one fixed draw for binarize='dynamic'). "
                    "Without --dataset/--data, the data of the run (config.json beside "
                    "MODEL) is used."),
        epilog="example:\n  vaeas-np evaluate runs/a/model.h5 --dataset mnist "
               "--nll-samples 5000 --nll-examples 1000")
    p.add_argument("model", metavar="MODEL",
                   help="a model file (model.h5, checkpoint.h5) or a run directory")
    _add_data_source(p, evaluate=True)
    p.add_argument("--train-key", metavar="KEY", default=None,
                   help="with --data: dataset name of the training set in the same file "
                        "(default: the evaluation set is also used for the training metrics)")
    p.add_argument("--nll-samples", type=int, default=5000,
                   help="importance samples per test example for the IWAE NLL (default: 5000)")
    p.add_argument("--nll-examples", type=int, default=None, metavar="N",
                   help="use only the first N test examples for the NLL (default: all)")
    p.add_argument("--no-entropy", action="store_true",
                   help="skip MI_entropy (VAE-AS; it is O(V h) per example, so O(N V h) over "
                        "the training set: minutes to hours for MNIST with V = N)")
    p.add_argument("--au-threshold", type=float, default=0.01,
                   help="variance threshold of an active unit (default: 0.01)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation's random draws (default: 0)")
    p.add_argument("--threads", dest="n_threads", type=int, default=None,
                   help="threads for BLAS and the compiled kernels (default: all cores)")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run_evaluate)
    return p


def _add_reproduce_parser(sub):
    """Register ``reproduce`` when vaeas_np.experiments.cli provides it."""
    import importlib
    try:
        exp_cli = importlib.import_module("vaeas_np.experiments.cli")
    except Exception:   # missing (ImportError) or not importable: the CLI works without it
        return None
    add = getattr(exp_cli, "add_reproduce_parser", None)
    run = getattr(exp_cli, "run_reproduce", None)
    if add is None or run is None:
        return None
    p = add(sub)
    if p is not None:
        p.set_defaults(func=run)
    return p


def build_parser():
    from ._version import __version__
    from .cli_data import add_data_parser, run_data

    parser = argparse.ArgumentParser(
        prog="vaeas-np", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="VAE and VAE-AS (VAE with an auxiliary softmax multiclassifier) in NumPy.",
        epilog="Run `vaeas-np COMMAND --help` for the options of a command.")
    parser.add_argument("--version", action="version", version=f"vaeas-np {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    dp = add_data_parser(sub)
    dp.set_defaults(func=run_data)
    _add_train_parser(sub)
    _add_evaluate_parser(sub)
    _add_reproduce_parser(sub)
    return parser


# ================================================================ helpers
def _parse_value(name, value):
    """Convert a flag / config value for constructor parameter ``name``."""
    errors = _errors()
    kind = PARAM_TYPES.get(name)
    if value is None or kind is None:
        return value
    try:
        if kind in (_WIDTHS, _EPOCHS):
            if isinstance(value, str):
                parts = [s.strip() for s in value.replace(";", ",").split(",") if s.strip()]
                return tuple(int(s) for s in parts)
            if isinstance(value, (list, tuple)):
                return tuple(int(v) if float(v) == int(v) else v for v in value)
            raise TypeError
        if kind == _INT:
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            return int(value)
        if kind == _FLOAT:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind == _BOOL:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if not isinstance(value, bool):
                raise TypeError
            return value
        return str(value)
    except (TypeError, ValueError):
        what = {"widths": "comma-separated layer widths such as 500,500",
                "epochs": "comma-separated epoch numbers such as 0,1,2,4"}.get(kind, f"a {kind}")
        raise errors.InvalidParameterError(f"{name} must be {what}, got {value!r}") from None


def _read_config_file(path):
    errors = _errors()
    path = Path(path)
    if not path.is_file():
        raise errors.DataFileMissingError(f"config file {path} does not exist; check the path")
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # pragma: no cover - Python < 3.11
                import tomli as tomllib
            with open(path, "rb") as fh:
                cfg = tomllib.load(fh)
        else:
            with open(path, encoding="utf-8") as fh:
                cfg = json.load(fh)
    except (ValueError, OSError) as e:    # JSONDecodeError / TOMLDecodeError are ValueErrors
        raise errors.InvalidParameterError(
            f"config file {path} cannot be parsed ({e}); write TOML (.toml) or JSON") from e
    if not isinstance(cfg, dict):
        raise errors.InvalidParameterError(f"config file {path} must hold a table/object "
                                           "of parameter = value")
    return _flatten_config(cfg, str(path))


def _flatten_config(cfg, where):
    """Accept flat keys, or the layout of a run's config.json (model / params / data)."""
    errors = _errors()
    flat = {}
    for k, v in cfg.items():
        if k == "params" and isinstance(v, dict):
            flat.update(v)
        elif k == "data" and isinstance(v, dict):
            flat.update(v)
        elif k == "library_version":
            continue
        else:
            flat[k] = v
    flat.pop("verbose", None)
    valid = set(PARAM_TYPES) | set(DATA_KEYS) | {"model"}
    unknown = sorted(set(flat) - valid)
    if unknown:
        raise errors.InvalidParameterError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {where}; "
            f"valid keys: model, {', '.join(PARAM_TYPES)}, {', '.join(DATA_KEYS)}")
    return flat


def _resolve_train_config(args):
    """The run's settings: run config.json (on --resume) < --config < flags."""
    from .training import read_config
    errors = _errors()
    settings = {}
    if args.resume:
        saved = read_config(args.run_dir)
        if saved is not None:
            settings.update(_flatten_config(saved, str(Path(args.run_dir) / "config.json")))
    if args.config:
        settings.update(_read_config_file(args.config))
    for k in ("model", *DATA_KEYS, *PARAM_TYPES):
        v = getattr(args, k, None)
        if v is not None:
            settings[k] = v
    model = settings.pop("model", None) or "vaeas"
    if model not in ("vae", "vaeas"):
        raise errors.InvalidParameterError(f"model must be 'vae' or 'vaeas', got {model!r}")
    data = {k: settings.pop(k) for k in DATA_KEYS if k in settings}
    params = {k: _parse_value(k, v) for k, v in settings.items()}
    if model == "vae":
        extra = [k for k in VAEAS_ONLY if params.get(k) is not None]
        if extra:
            raise errors.InvalidParameterError(
                f"{', '.join(extra)} only appl{'y' if len(extra) > 1 else 'ies'} to --model vaeas (the plain VAE has no "
                "classifier); drop them or use --model vaeas")
        for k in VAEAS_ONLY:
            params.pop(k, None)
    return model, params, data


def _data_spec(data, *, default_dataset="mnist"):
    """Normalise a data description: {'dataset', 'data_dir', 'download'} or {'data', 'data_key'}."""
    errors = _errors()
    if data.get("data") and data.get("dataset"):
        raise errors.InvalidParameterError(
            "give either --dataset (a registered data set) or --data FILE.h5 (your own), "
            "not both")
    if data.get("data"):
        return {"data": str(Path(data["data"]).expanduser().resolve()),
                "data_key": data.get("data_key") or "X"}
    name = data.get("dataset") or default_dataset
    if name is None:
        return None
    if name not in DATASETS:
        raise errors.InvalidParameterError(f"dataset must be one of {DATASETS}, got {name!r}")
    spec = {"dataset": name, "download": True if data.get("download") is None
            else bool(data["download"])}
    if data.get("data_dir"):
        spec["data_dir"] = str(Path(data["data_dir"]).expanduser().resolve())
    return spec


def _load_data_source(spec):
    """(training array, description) for a data spec."""
    from .data import load_array, load_dataset
    if "data" in spec:
        X = load_array(spec["data"], spec["data_key"])
        return X, f"{spec['data']}:{spec['data_key']}"
    ds = load_dataset(spec["dataset"], data_dir=spec.get("data_dir"),
                      download=spec.get("download", True))
    return ds.train, ds.title


def _default_run_dir():
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def _fmt(v):
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


# ================================================================== train
def run_train(args) -> int:
    from . import VAE, VAEAS
    from .training import MODEL_NAME, train
    errors = _errors()

    if args.resume and not args.run_dir:
        raise errors.InvalidParameterError("--resume needs --run-dir DIR (the run to continue)")
    run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir()
    kind, params, data = _resolve_train_config(args)
    spec = _data_spec(data)
    X, title = _load_data_source(spec)
    cls = VAEAS if kind == "vaeas" else VAE
    model = cls(**params)
    model.set_params(verbose=not args.quiet)
    if args.checkpoint_every < 1:
        raise errors.InvalidParameterError("--checkpoint-every must be >= 1")
    config = {"model": kind, "params": {k: v for k, v in params.items()}, "data": spec}
    if not args.quiet:
        what = "resuming" if args.resume and (run_dir / "checkpoint.h5").exists() else "training"
        print(f"{what} {cls.__name__} on {title} ({X.shape[0]} x {X.shape[1]}) "
              f"for {model.epochs} epochs in {run_dir}", file=sys.stderr)
    model = train(model, X, run_dir=run_dir, resume=args.resume, config=config,
                  checkpoint_every=args.checkpoint_every)
    last = model.history_[-1] if model.history_ else {}
    summary = " ".join(f"{k}={_fmt(v)}" for k, v in last.items() if k not in ("seconds",))
    print(f"done: {cls.__name__} epoch {model.epoch_}/{model.epochs}"
          + (f" ({summary})" if summary else "") + f" -> {run_dir / MODEL_NAME}")
    return 0


# ================================================================ evaluate
_DESCRIPTIONS = {
    "NLL_test": "IWAE negative log-likelihood, test set (nats)",
    "neg_ELBO_test": "negative ELBO, test set (nats)",
    "KL_test": "mean KL(q(z|x) || p(z)), test set",
    "AU": "active units, test set",
    "NLL_train": "reconstruction -log p(x|z), training set",
    "KL_train": "mean KL(q(z|x) || p(z)), training set",
    "MI": "classifier MI estimate (Barber-Agakov), training set",
    "MI_entropy": "log V - mean entropy of s(.|z)",
    "MI_fano": "log V - mean H_b(P_e)",
    "fano_bound": "P_e log V (Theorem 3.3)",
    "MD": "marginal KL(q(z) || p(z)) = KL_train - MI",
    "SC": "softmax cross-entropy of the classifier",
}


def _binarize_like_training(model, X, rng):
    import numpy as np
    if model.binarize == "dynamic":
        return (rng.random(X.shape, dtype=np.float32) < X).astype(np.float32)
    if model.binarize == "threshold":
        return (X > 0.5).astype(np.float32)
    return X


def _resolve_model_path(path):
    errors = _errors()
    p = Path(path)
    if p.is_dir():
        for name in ("model.h5", "checkpoint.h5"):
            if (p / name).is_file():
                return p / name
        raise errors.DataFileMissingError(f"{p} holds neither model.h5 nor checkpoint.h5; "
                                          "pass a model file or a run directory")
    if not p.is_file():
        raise errors.DataFileMissingError(f"model file {p} does not exist; check the path")
    return p


def run_evaluate(args) -> int:
    import numpy as np
    from . import load_model
    from .data import load_array
    from .metrics import active_units, iwae_nll, kl_divergence, negative_elbo, reconstruction
    from .training import read_config
    errors = _errors()

    model_path = _resolve_model_path(args.model)
    model = load_model(model_path)
    model.set_params(verbose=False)
    if args.n_threads is not None:
        model.set_params(n_threads=args.n_threads)
    for name in ("nll_samples", "nll_examples"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise errors.InvalidParameterError(f"--{name.replace('_', '-')} must be >= 1, "
                                               f"got {v}")

    data = {k: getattr(args, k) for k in DATA_KEYS if getattr(args, k, None) is not None}
    if not data.get("dataset") and not data.get("data"):
        saved = read_config(model_path.parent)
        if saved and isinstance(saved.get("data"), dict):
            data = {**saved["data"], **data}
        else:
            raise errors.InvalidParameterError(
                "which data? give --dataset NAME or --data FILE.h5 (no config.json of a run "
                f"beside {model_path})")
    spec = _data_spec(data, default_dataset=None)
    notes = []
    if "data" in spec:
        test = load_array(spec["data"], spec["data_key"])
        if args.train_key:
            train_X = load_array(spec["data"], args.train_key)
        else:
            train_X = test
            notes.append("training-set metrics computed on the evaluation data (no --train-key)")
        title = f"{spec['data']}:{spec['data_key']}"
        test_nll = test
    else:
        from .data import load_dataset
        ds = load_dataset(spec["dataset"], data_dir=spec.get("data_dir"),
                          download=spec.get("download", True))
        test, train_X, title = ds.test_binary, ds.train, ds.title
        test_nll = test
    n_nll = test_nll.shape[0] if args.nll_examples is None else min(args.nll_examples,
                                                                     test_nll.shape[0])
    ss = np.random.SeedSequence(args.seed)
    seeds = [np.random.default_rng(s) for s in ss.spawn(5)]
    t0 = time.perf_counter()
    train_bin = _binarize_like_training(model, train_X, seeds[0])
    test = model._check_X(test, "test data")
    train_bin = model._check_X(train_bin, "training data")
    metrics = {}

    def stage(what, fn):
        t = time.perf_counter()
        if not args.quiet:
            print(f"{what} ...", end="", file=sys.stderr, flush=True)
        out = fn()
        if not args.quiet:
            print(f" {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
        return out

    metrics["NLL_test"] = stage(
        f"NLL_test (k = {args.nll_samples}, {n_nll} examples)",
        lambda: iwae_nll(model, test_nll[:n_nll], k=args.nll_samples, rng=seeds[1]))
    metrics["neg_ELBO_test"] = stage("neg_ELBO_test",
                                     lambda: negative_elbo(model, test, rng=seeds[2]))
    mu_test, lv_test = model.encode(test)
    metrics["KL_test"] = kl_divergence(mu_test, lv_test)
    metrics["AU"] = active_units(mu_test, threshold=args.au_threshold)
    metrics["NLL_train"] = stage("NLL_train",
                                 lambda: reconstruction(model, train_bin, rng=seeds[3]))
    metrics["KL_train"] = kl_divergence(*model.encode(train_bin))
    if hasattr(model, "estimates"):
        if train_bin.shape[0] == getattr(model, "n_train_", -1):
            what = "classifier MI, MD, SC" + ("" if args.no_entropy else
                                              " (with MI_entropy: O(N V h), --no-entropy skips)")
            est = stage(what, lambda: model.estimates(train_bin, entropy=not args.no_entropy,
                                                      rng=seeds[4]))
            for k in ("MI", "MI_entropy", "MI_fano", "fano_bound", "MD", "SC"):
                if k in est:
                    metrics[k] = est[k]
        else:
            notes.append(f"classifier metrics skipped: they need the {model.n_train_} training "
                         f"examples the model was trained on, got {train_bin.shape[0]}")
    seconds = time.perf_counter() - t0
    result = {
        "model": str(model_path), "class": type(model).__name__, "epoch": int(model.epoch_),
        "data": title, "n_test": int(test.shape[0]), "n_train": int(train_bin.shape[0]),
        "nll_samples": int(args.nll_samples), "nll_examples": int(n_nll), "seed": args.seed,
        "metrics": {k: (int(v) if k == "AU" else float(v)) for k, v in metrics.items()},
        "notes": notes, "seconds": seconds}
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"**{result['class']}** `{model_path}` (epoch {result['epoch']}) on {title}: "
              f"NLL with k = {args.nll_samples} on {n_nll} test examples\n")
        print("| metric | value | meaning |")
        print("|---|---:|---|")
        for k, v in result["metrics"].items():
            print(f"| {k} | {_fmt(v)} | {_DESCRIPTIONS.get(k, '')} |")
        for n in notes:
            print(f"\nNote: {n}")
    return 0


# ==================================================================== main
def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    if argv is not None:                  # paths and numbers are welcome (tests, scripts)
        argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in argv]
    args = parser.parse_args(argv)
    from .errors import TrainingDivergedError, VaeasError
    try:
        return int(args.func(args) or 0)
    except TrainingDivergedError as exc:
        msg = str(exc)
        if "checkpoint" not in msg:
            msg += " The last good checkpoint is kept."
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except VaeasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint (if any) is kept: continue with "
              "`vaeas-np train --run-dir DIR --resume`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
