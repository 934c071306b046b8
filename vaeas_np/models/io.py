"""Model files: HDF5 with JSON attributes, written atomically, no pickle.

Layout: root attributes ``format`` ("vaeas_np.model"), ``format_version``,
``library_version``, ``class`` (VAE / VAEAS), ``config`` (JSON of the
constructor parameters) and ``state`` (JSON: epoch, RNG states, history,
optimizer step counts ...); one dataset per array of the model's state
(weights, optimizer moments, labels, tree order ...).
"""
import json
import os

import h5py
import numpy as np

from .._version import __version__
from .._files import json_default, temp_beside
from ..errors import DataFileMissingError, StoreError

FORMAT = "vaeas_np.model"
FORMAT_VERSION = 1


def atomic_h5(path):
    """Context manager: an h5py.File open on a temporary name beside ``path``,
    renamed over ``path`` only if the block finishes without error."""
    return _AtomicH5(path)


class _AtomicH5:
    def __init__(self, path):
        self.path = os.fspath(path)

    def __enter__(self):
        fd, self.tmp = temp_beside(self.path, suffix=".h5")
        os.close(fd)
        self.f = h5py.File(self.tmp, "w")
        return self.f

    def __exit__(self, et, ev, tb):
        try:
            self.f.close()
            if et is None:
                with open(self.tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False


def save_model(model, path):
    """Write ``model`` (fitted) to ``path`` atomically."""
    model._check_fitted()
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["library_version"] = __version__
        f.attrs["class"] = model._kind
        f.attrs["config"] = json.dumps(model.get_params(), default=json_default)
        f.attrs["state"] = json.dumps(model._state_meta(), default=json_default)
        for name, arr in model._state_arrays().items():
            f.create_dataset(name, data=np.asarray(arr))


def _model_classes():
    from .vae import VAE
    classes = {"VAE": VAE}
    try:
        from .vaeas import VAEAS
        classes["VAEAS"] = VAEAS
    except ImportError:  # pragma: no cover
        pass
    return classes


def load_model(path):
    """Load a model written by ``model.save(path)`` (or a training checkpoint)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFileMissingError(f"no model file at {path!r}; check the path (models are "
                                   "written by model.save(path) or `vaeas-np train`)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"{path!r} is not a readable HDF5 model file ({e}); it may be "
                         "truncated or corrupt: save the model again") from e
    with f:
        if f.attrs.get("format") != FORMAT:
            raise StoreError(f"{path!r} is not a vaeas_np model file (format attribute "
                             f"{f.attrs.get('format')!r})")
        version = int(f.attrs["format_version"])
        if version > FORMAT_VERSION:
            raise StoreError(f"{path!r} has model format {version}, newer than this library "
                             f"reads ({FORMAT_VERSION}); upgrade vaeas_np")
        kind = f.attrs["class"]
        classes = _model_classes()
        if kind not in classes:
            raise StoreError(f"{path!r} holds an unknown model class {kind!r}")
        config = json.loads(f.attrs["config"])
        for k, v in config.items():
            if isinstance(v, list):
                config[k] = tuple(v)
        meta = json.loads(f.attrs["state"])
        arrays = {}
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    model = classes[kind](**config)
    model._restore(arrays, meta)
    return model
