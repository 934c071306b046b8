"""Training runs in a run directory: config, per-epoch checkpoint and metric logs,
resume after an interruption, and a clean stop when the loss diverges.

Layout of ``run_dir``::

    config.json      what was trained on what (model class, parameters, data)
    checkpoint.h5    the model after the last completed epoch (atomic)
    metrics.jsonl    one JSON object per epoch
    metrics.csv      the same, one row per epoch
    model.h5         the final model (written when all epochs are done)
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .._version import __version__
from ..errors import (CacheNotWritableError, InvalidParameterError, StoreError,
                      TrainingDivergedError)
from .callbacks import CheckpointCallback, MetricsLogger, atomic_write_text, json_default

__all__ = ["train", "RunDivergedError", "CONFIG_NAME", "CHECKPOINT_NAME", "MODEL_NAME",
           "JSONL_NAME", "CSV_NAME", "read_config", "write_config", "RESUMABLE_PARAMS"]

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.h5"
MODEL_NAME = "model.h5"
JSONL_NAME = "metrics.jsonl"
CSV_NAME = "metrics.csv"

#: parameters that may differ between a checkpoint and the run that continues it
RESUMABLE_PARAMS = ("epochs", "verbose", "n_threads")


class RunDivergedError(TrainingDivergedError):
    """Training diverged inside :func:`train`; ``checkpoint`` is the last good
    checkpoint (or None when no epoch completed) and ``epoch`` its epoch."""

    def __init__(self, message, checkpoint=None, epoch=0):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.epoch = epoch


def write_config(run_dir, config):
    """Write ``config`` (a JSON-able dict) to ``run_dir/config.json`` atomically."""
    atomic_write_text(Path(run_dir) / CONFIG_NAME,
                      json.dumps(config, indent=2, sort_keys=True, default=json_default) + "\n")


def read_config(run_dir):
    """The dict in ``run_dir/config.json``, or None when there is none."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as e:
        raise StoreError(f"{path} cannot be read as JSON ({e}); fix or delete it") from e


@contextlib.contextmanager
def _run_lock(run_dir):
    """Hold an exclusive lock on the run directory (two trainings in one run
    directory would overwrite each other's checkpoints)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CacheNotWritableError(
                f"another training is running in {run_dir} (it holds the run directory's "
                "lock); wait for it or use another run directory") from None
        yield
    finally:
        os.close(fd)


def _remove_stale_temporaries(run_dir):
    """Temporary files of saves interrupted by a kill (``.tmp-<name>-*``)."""
    for p in Path(run_dir).glob(".tmp-*"):
        with contextlib.suppress(OSError):
            p.unlink()


def _default_config(model):
    return {"model": type(model).__name__.lower(), "params": model.get_params()}


def train(model, X, *, run_dir, resume=False, config=None, checkpoint_every=1,
          callbacks=()):
    """Fit ``model`` on ``X`` as a run in ``run_dir`` and return the trained model.

    Writes ``config.json`` (``config``, default: the model's class and
    parameters), ``checkpoint.h5`` after every epoch (atomically), the epoch
    records to ``metrics.jsonl`` and ``metrics.csv``, and ``model.h5`` at the end.

    ``resume=True`` continues the run from ``run_dir/checkpoint.h5`` when it
    exists (``warm_start``, bit-identical to an uninterrupted run) up to
    ``model.epochs``; the checkpoint's parameters are kept, except
    ``epochs``, ``verbose`` and ``n_threads``, which are taken from ``model``.
    Without a checkpoint it starts from scratch.  ``resume=False`` refuses a
    run directory that already holds a checkpoint or a final model.

    If the loss becomes NaN or infinite, :class:`RunDivergedError` (a
    :class:`~vaeas_np.errors.TrainingDivergedError`) is raised; the model was
    not updated with it and ``checkpoint.h5`` still holds the last good epoch.
    ``callbacks`` are extra epoch callbacks, called after the checkpoint and logs.
    """
    from ..models.io import load_model

    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheNotWritableError(f"cannot create the run directory {str(run_dir)!r}: "
                                    f"{e.strerror}") from e
    ckpt_path = run_dir / CHECKPOINT_NAME
    with _run_lock(run_dir):
        _remove_stale_temporaries(run_dir)
        if not resume and (ckpt_path.exists() or (run_dir / MODEL_NAME).exists()):
            raise InvalidParameterError(
                f"{run_dir} already holds a run ({CHECKPOINT_NAME} / {MODEL_NAME}); continue it "
                "with resume=True (--resume) or choose another run directory")
        warm = False
        if resume and ckpt_path.exists():
            restored = load_model(ckpt_path)
            if type(restored) is not type(model):
                raise InvalidParameterError(
                    f"the checkpoint in {run_dir} holds a {type(restored).__name__}, not a "
                    f"{type(model).__name__}; resume it with the same model")
            mine, theirs = model.get_params(), restored.get_params()
            changed = [k for k in mine if k not in RESUMABLE_PARAMS
                       and _normal(mine[k]) != _normal(theirs.get(k))]
            if changed:
                raise InvalidParameterError(
                    "cannot change " + ", ".join(f"{k} ({theirs.get(k)!r} -> {mine[k]!r})"
                                                 for k in changed)
                    + f" when resuming the run in {run_dir}; only {', '.join(RESUMABLE_PARAMS)}"
                    " may change (start a new run to change the others)")
            restored.set_params(**{k: mine[k] for k in RESUMABLE_PARAMS})
            model = restored
            warm = True
        logger = MetricsLogger(run_dir / JSONL_NAME, run_dir / CSV_NAME)
        if warm:
            logger.sync(model.history_, model.epoch_)
        else:
            logger.sync([], 0)                # a fresh run starts fresh logs
        cfg = dict(config) if config is not None else _default_config(model)
        cfg.setdefault("library_version", __version__)
        write_config(run_dir, cfg)
        checkpoint = CheckpointCallback(ckpt_path, every=checkpoint_every)
        try:
            model.fit(X, callbacks=[checkpoint, logger, *callbacks], warm_start=warm)
        except TrainingDivergedError as exc:
            last = int(getattr(model, "epoch_", 0) or 0)
            if ckpt_path.exists():
                where = (f"The last good checkpoint ({ckpt_path}, epoch {_ckpt_epoch(ckpt_path)})"
                         " is kept untouched; fix the cause (e.g. a lower learning rate in a "
                         "new run) or inspect it with `vaeas-np evaluate`")
                kept = ckpt_path
            else:
                where = "No epoch completed, so there is no checkpoint"
                kept = None
            raise RunDivergedError(f"training diverged: {exc} {where}.", kept, last) from exc
        model.save(run_dir / MODEL_NAME)
    return model


def _ckpt_epoch(path):
    try:
        import h5py
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs["state"])["epoch"]
    except Exception:  # pragma: no cover - informational only
        return "?"


def _normal(v):
    """Compare parameters across a JSON round trip (lists vs tuples, ints vs floats)."""
    if isinstance(v, (list, tuple)):
        return tuple(_normal(x) for x in v)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return v
