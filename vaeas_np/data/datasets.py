"""Acquisition: :func:`load_dataset`, :func:`prepare` and the
:class:`Dataset` they give access to.

Raw files are looked for, in order, in ``data_dir`` and ``data_dir/<name>``
(read only: nothing is ever written there), then in the data home's
``raw/<name>/`` and the data home itself; missing files are downloaded into
``<data home>/raw/<name>/`` when ``download`` is true.  They are converted
once into the store ``<data home>/<name>.h5`` (see :mod:`.store`), which is
what every later call reads.

Omniglot: Burda et al.'s ``chardata.mat`` is used when present locally,
else the ``omniglot28.npz`` substitute when present locally, else
``chardata.mat`` is downloaded.  The store records which one was used
(``source`` attribute; :attr:`Dataset.title` is e.g.
``"Omniglot (omniglot28 substitute)"``).  ``Dataset.train`` holds all 24,345
training images; ``Dataset.valid`` is the last 1,345 of them (a subset of
train, not held out; ``Dataset.valid_in_train`` is True), for early-stopping
style monitoring only.  To rebuild from another source, run
``prepare("omniglot", DIR, force=True)``.
"""
from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataFileMissingError, StoreError
from . import store as _store
from .fetch import data_home, download_raw_file, ensure_writable, find_raw_file, verify_raw_file
from .sources import get_spec

__all__ = ["Dataset", "load_dataset", "prepare", "store_path", "locate_raw_files"]

log = logging.getLogger(__name__)


def store_path(name: str) -> Path:
    """Path of the store of data set ``name`` in the data home."""
    return data_home() / f"{get_spec(name).name}.h5"


def _search_dirs(name, data_dir):
    home = data_home()
    dirs = []
    if data_dir is not None:
        dirs += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name]
    dirs += [home / "raw" / name, home]
    return dirs


def _missing_message(spec, dirs, errors, download) -> str:
    lines = [f"the raw files of data set {spec.name!r} were not found"
             + (" and could not be downloaded (offline?)" if download else
                " (downloading was not allowed)") + "."]
    lines.append("Looked in: " + ", ".join(str(d) for d in dirs) + ".")
    alt = len(spec.variants) > 1
    for i, v in enumerate(spec.variants):
        head = (("Either" if i == 0 else "or") + f" ({v.title}):") if alt else "Needed:"
        lines.append(head)
        for rf in v.files.values():
            where = (f"from {rf.urls[0]}" if rf.urls else "no public URL")
            lines.append(f"  - {rf.name} ({rf.checksum_text()}; {where})")
        if v.note:
            lines.append("  " + v.note)
    lines.append(
        f"Put them in {data_home() / 'raw' / spec.name} (the data home; set VAEAS_NP_DATA "
        f"to change it), or in a directory DIR and run `vaeas-np data prepare {spec.name} "
        f"--from DIR` or load_dataset({spec.name!r}, data_dir=DIR).")
    if errors:
        lines.append("Download errors: " + " | ".join(errors[-6:]))
    return "\n".join(lines)


def locate_raw_files(name: str, data_dir=None, download: bool = True):
    """Find (and if allowed download) the raw files of ``name``, verify their
    checksums and return ``(variant, {role: path}, {file name: sha256})``.

    Raises :class:`ChecksumMismatchError` for a file that is there but wrong
    (it is never used), :class:`DataFileMissingError` when files are missing
    and cannot be downloaded.
    """
    spec = get_spec(name)
    dirs = _search_dirs(spec.name, data_dir)

    def verified(v, paths):
        sums = {}
        for role, p in paths.items():
            sums[Path(p).name] = verify_raw_file(p, v.files[role])
        return v, paths, sums

    found_any = {}
    for v in spec.variants:
        found = {role: find_raw_file(rf, dirs) for role, rf in v.files.items()}
        if all(p is not None for p in found.values()):
            return verified(v, found)
        found_any[id(v)] = found
    errors = []
    if download:
        dest = data_home() / "raw" / spec.name
        for v in spec.variants:
            if not v.downloadable:
                continue
            found = found_any[id(v)]
            for role, p in found.items():      # refuse bad local files before downloading
                if p is not None:
                    verify_raw_file(p, v.files[role])
            try:
                paths = {role: (p if p is not None else download_raw_file(v.files[role], dest))
                         for role, p in found.items()}
            except DataFileMissingError as exc:
                errors.append(str(exc))
                continue
            return verified(v, paths)
    raise DataFileMissingError(_missing_message(spec, dirs, errors, download))


def _store_state(path: Path) -> str:
    """'missing', 'outdated' (older format: rebuild) or 'current'."""
    if not path.exists():
        return "missing"
    attrs = _store.read_attrs(path)
    if attrs.get("format_version") != _store.FORMAT_VERSION:
        log.warning("store %s has format version %s, current is %s: rebuilding it",
                    path, attrs.get("format_version"), _store.FORMAT_VERSION)
        return "outdated"
    return "current"


def _build(name, data_dir, download, path, force=False, binarize_seed=None):
    home = ensure_writable(path.parent)
    with _store.store_lock(home, name):
        # another process may have built it while we waited for the lock
        if not force and _store_state(path) == "current":
            return path
        variant, paths, sums = locate_raw_files(name, data_dir, download)
        content = variant.build(variant, paths)
        seed = _store.DEFAULT_BINARIZE_SEED if binarize_seed is None else binarize_seed
        _store.write_store(path, get_spec(name).name, content, sums, binarize_seed=seed)
        log.info("built %s from %s", path, ", ".join(sums))
    return path


def load_dataset(name: str, data_dir=None, download: bool = True) -> "Dataset":
    """Load data set ``name`` (``"mnist"``, ``"binarized_mnist"`` or
    ``"omniglot"``), building its store on first use.

    Parameters
    ----------
    name : data set name.
    data_dir : optional directory holding the raw files (read only).
    download : download missing raw files from their public mirrors.

    Once the store exists it is what is read: ``data_dir`` and ``download``
    only matter when the store is missing or of an older format version
    (use :func:`prepare` with ``force=True`` to rebuild from other files).

    Returns a :class:`Dataset`.  Raises :class:`DataFileMissingError` (files
    missing, offline: the message names them, their checksums and where to
    put them), :class:`ChecksumMismatchError`, :class:`CorruptFileError`,
    :class:`StoreError` (a damaged store is refused, not rebuilt silently),
    :class:`CacheNotWritableError`.
    """
    spec = get_spec(name)
    path = data_home() / f"{spec.name}.h5"
    if _store_state(path) != "current":
        _build(spec.name, data_dir, download, path)
    return Dataset(path)


def prepare(name: str, from_dir, *, force: bool = False, download: bool = False) -> Path:
    """Build the store of ``name`` from the raw files in ``from_dir`` (read
    only) and return its path.

    An existing current store built from the same raw files (same checksums)
    is kept unless ``force``; otherwise the store is rebuilt.
    """
    spec = get_spec(name)
    path = data_home() / f"{spec.name}.h5"
    if not force and _store_state(path) == "current":
        _, _, sums = locate_raw_files(spec.name, from_dir, download=False)
        if _store.read_attrs(path).get("source_files") == sums:
            _store.verify_store(path)
            return path
        force = True
    return _build(spec.name, from_dir, download, path, force=force)


def _float01(raw: np.ndarray, scale: float) -> np.ndarray:
    out = raw.astype(np.float32)
    if scale != 1.0:
        out *= np.float32(1.0 / scale)
    return out


class Dataset:
    """A data set in its store.

    Attributes: ``name`` (``"mnist"``...), ``title`` (human label, e.g.
    ``"Omniglot (omniglot28 substitute)"``), ``source`` (``"mnist-idx"``,
    ``"larochelle-amat"``, ``"chardata.mat"`` or ``"omniglot28.npz"``),
    ``is_substitute``, ``source_files`` ({file name: sha256}),
    ``binarize_seed``, ``image_shape`` (28, 28), ``valid_in_train``, ``path``.

    ``train``, ``valid``, ``test`` are float32 (n, 784) in [0, 1];
    ``test_binary``/``valid_binary`` the fixed-binarised float32 0/1 copies;
    ``train_labels``/``valid_labels``/``test_labels`` int64 or None.  Each is
    read from the store on first access and kept.  :meth:`split` gives a
    :class:`~vaeas_np.data.store.LazySplit` instead, for streaming.
    """

    def __init__(self, path):
        self.path = Path(path)
        _store.verify_store(self.path)
        attrs = _store.read_attrs(self.path)
        self.attrs = attrs
        self.name = attrs["name"]
        self.title = attrs["title"]
        self.source = attrs["source"]
        self.is_substitute = self.source == "omniglot28.npz"
        self.source_files = attrs["source_files"]
        self.split_sizes = attrs["split_sizes"]
        self.binarize_seed = int(attrs["binarize_seed"])
        self.format_version = int(attrs["format_version"])
        self.valid_in_train = bool(attrs.get("valid_in_train", False))
        self.image_shape = tuple(int(v) for v in attrs["image_shape"])

    def _read(self, key) -> Optional[np.ndarray]:
        import h5py
        with h5py.File(self.path, "r") as f:
            if key not in f:
                return None
            ds = f[key]
            return ds[()], float(ds.attrs.get("scale", 1.0))

    def _pixels(self, key):
        got = self._read(key)
        if got is None:
            raise StoreError(f"the store {self.path} has no dataset {key!r}")
        return _float01(*got)

    def _labels(self, key):
        got = self._read(key)
        return None if got is None else got[0].astype(np.int64)

    def raw(self, key) -> np.ndarray:
        """A dataset of the store in its stored dtype and values."""
        got = self._read(key)
        if got is None:
            raise StoreError(f"the store {self.path} has no dataset {key!r}")
        return got[0]

    def split(self, key: str) -> "_store.LazySplit":
        """A lazily read split (float32 in [0, 1]) for streaming."""
        return _store.LazySplit(self.path, key)

    train = cached_property(lambda self: self._pixels("train"))
    valid = cached_property(lambda self: self._pixels("valid"))
    test = cached_property(lambda self: self._pixels("test"))
    test_binary = cached_property(lambda self: self._pixels("test_binary"))
    valid_binary = cached_property(lambda self: self._pixels("valid_binary"))
    train_labels = cached_property(lambda self: self._labels("train_labels"))
    valid_labels = cached_property(lambda self: self._labels("valid_labels"))
    test_labels = cached_property(lambda self: self._labels("test_labels"))

    def __repr__(self):
        sizes = ", ".join(f"{k}={v}" for k, v in self.split_sizes.items())
        return f"<Dataset {self.title} ({sizes}) at {self.path}>"

    def __str__(self):
        return self.title
