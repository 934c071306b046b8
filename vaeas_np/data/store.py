"""The HDF5 store: one file per data set, ``<data home>/<name>.h5``.

Layout
------
Datasets (rows are flattened 28x28 images, chunked by rows, gzip-compressed):

* ``train``, ``valid``, ``test``: the pixels in the source's exact values and
  dtype (uint8 0..255 for MNIST and omniglot28.npz, uint8 0/1 for binarised
  MNIST, float for chardata.mat).  Attribute ``scale``: divide by it for
  [0, 1] intensities.  Attribute ``sha256``: SHA-256 of the C-order bytes.
* ``valid_binary``, ``test_binary``: fixed binarised evaluation copies
  (uint8 0/1), drawn once as ``u < x / scale`` with
  ``u = np.random.default_rng([binarize_seed, k]).random(shape)``,
  k = 0 for valid and 1 for test.  (Binarised MNIST, already binary, gives
  copies identical to its splits.)
* ``train_labels``, ``valid_labels``, ``test_labels`` where the source has
  labels; ``*_alphabet`` for Omniglot.

Root attributes: ``format_version`` (:data:`FORMAT_VERSION`), ``name``,
``title``, ``source``, ``source_files`` (JSON ``{file name: sha256}``),
``split_sizes`` (JSON), ``n_train``/``n_valid``/``n_test``,
``binarize_seed``, ``valid_in_train``, ``image_shape``, ``created_by``.

Writing is atomic: a temporary file in the same directory is written,
verified, fsync'ed and renamed over the target with :func:`os.replace`,
under a lock file (``<home>/.locks/<name>.lock``) so that two processes
preparing at once leave one good store.  On open the checksums of every
dataset are verified once per process (keyed by path, size, mtime and inode).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

import numpy as np

from ..errors import StoreError

__all__ = ["FORMAT_VERSION", "DEFAULT_BINARIZE_SEED", "write_store", "read_attrs",
           "verify_store", "store_lock", "LazySplit", "array_sha256"]

#: Version of the store layout; a store with another version is rebuilt.
FORMAT_VERSION = 1
#: Seed of the fixed binarisation of the evaluation sets.
DEFAULT_BINARIZE_SEED = 20150101

_VERIFIED: dict = {}
_VERIFIED_LOCK = threading.Lock()

_HASH_BLOCK_BYTES = 16 << 20


def array_sha256(a) -> str:
    """SHA-256 of the C-order bytes of an array (or h5py dataset, read in
    row blocks)."""
    h = hashlib.sha256()
    n = a.shape[0]
    row_bytes = max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize)
    step = max(1, _HASH_BLOCK_BYTES // row_bytes)
    for s in range(0, n, step):
        h.update(np.ascontiguousarray(a[s:s + step]).tobytes())
    return h.hexdigest()


def _chunk_rows(row_bytes: int, n: int) -> int:
    rows = 1
    while rows * 2 * row_bytes <= (1 << 20):
        rows *= 2
    return max(1, min(rows, n))


def binarize_fixed(x: np.ndarray, scale: float, seed: int, k: int) -> np.ndarray:
    """The fixed binarisation: uint8 ``u < x / scale``, u ~ U[0, 1) from
    ``default_rng([seed, k])`` (float64 draws, in one block)."""
    rng = np.random.default_rng([int(seed), int(k)])
    u = rng.random(x.shape)
    return (u < np.asarray(x, dtype=np.float64) / scale).astype(np.uint8)


def _fsync_dir(directory) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def store_lock(home, name):
    """Exclusive inter-process lock for building ``name``'s store
    (``fcntl.flock`` on ``<home>/.locks/<name>.lock``; a no-op where fcntl is
    missing, the atomic rename still keeps the store whole)."""
    lock_dir = Path(home) / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_dir / f"{name}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_store(path, name: str, content, source_files: dict, *,
                binarize_seed: int = DEFAULT_BINARIZE_SEED) -> Path:
    """Write ``content`` (a :class:`.sources.Content`) atomically to ``path``.

    Nothing is left behind on failure: the temporary file is removed.
    """
    import h5py
    from .. import __version__

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with h5py.File(tmp, "w") as f:
            sizes = {k: int(v.shape[0]) for k, v in content.splits.items()}
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["name"] = name
            f.attrs["title"] = content.title
            f.attrs["source"] = content.source
            f.attrs["source_files"] = json.dumps(source_files, sort_keys=True)
            f.attrs["split_sizes"] = json.dumps(sizes)
            for k, v in sizes.items():
                f.attrs[f"n_{k}"] = v
            f.attrs["binarize_seed"] = int(binarize_seed)
            f.attrs["image_shape"] = np.array([28, 28], dtype=np.int64)
            f.attrs["created_by"] = f"vaeas_np {__version__}"
            for k, v in content.attrs.items():
                f.attrs[k] = v

            def put(key, arr, **attrs):
                arr = np.ascontiguousarray(arr)
                kw = {}
                if arr.ndim == 2 and arr.shape[0] > 0:
                    row_bytes = arr.shape[1] * arr.dtype.itemsize
                    kw = dict(chunks=(_chunk_rows(row_bytes, arr.shape[0]), arr.shape[1]),
                              compression="gzip", compression_opts=4,
                              shuffle=arr.dtype.itemsize > 1)
                ds = f.create_dataset(key, data=arr, **kw)
                ds.attrs["sha256"] = array_sha256(arr)
                for a, val in attrs.items():
                    ds.attrs[a] = val

            for k, x in content.splits.items():
                put(k, x, scale=float(content.scale))
            for k, kk in (("valid", 0), ("test", 1)):
                if k in content.splits:
                    put(f"{k}_binary", binarize_fixed(content.splits[k], content.scale,
                                                      binarize_seed, kk),
                        scale=1.0, binarize_seed=int(binarize_seed))
            for k, y in content.labels.items():
                put(f"{k}_labels", y)
            for k, a in content.extra.items():
                put(k, a)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        verify_store(tmp, use_cache=False)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        with _VERIFIED_LOCK:  # verified just above, under its temporary name
            _VERIFIED[_key(path)] = True
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def read_attrs(path) -> dict:
    """Root attributes of a store (``source_files``/``split_sizes`` decoded).

    Raises :class:`StoreError` if the file cannot be opened as a store.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise StoreError(
            f"the store {path} cannot be opened ({exc}); delete it and run "
            f"`vaeas-np data prepare` again (or prepare(..., force=True))") from exc
    for k in ("source_files", "split_sizes"):
        if isinstance(attrs.get(k), (str, bytes)):
            attrs[k] = json.loads(attrs[k])
    return attrs


def _key(path):
    st = os.stat(path)
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def verify_store(path, *, use_cache: bool = True) -> None:
    """Check every dataset of the store against its recorded ``sha256`` and
    the split sizes; raise :class:`StoreError` if anything differs.

    The result is cached per process (path, size, mtime, inode), so a store
    is hashed once per process however often it is opened.
    """
    import h5py

    key = _key(path)
    if use_cache:
        with _VERIFIED_LOCK:
            if _VERIFIED.get(key):
                return
    fix = ("delete it and rebuild it with `vaeas-np data prepare NAME --from DIR` "
           "or vaeas_np.data.prepare(name, from_dir, force=True)")
    try:
        with h5py.File(path, "r") as f:
            sizes = json.loads(f.attrs["split_sizes"])
            for k, n in sizes.items():
                keys = [k] + ([f"{k}_binary"] if k in ("valid", "test") else [])
                for kk in keys:
                    if kk not in f or f[kk].shape[0] != n:
                        raise StoreError(
                            f"the store {path} lacks dataset {kk!r} of {n} rows; {fix}")
            for k, ds in f.items():
                want = ds.attrs.get("sha256")
                if want is None:
                    raise StoreError(f"the store {path}: dataset {k!r} has no recorded checksum; {fix}")
                got = array_sha256(ds)
                if got != want:
                    raise StoreError(
                        f"the store {path} is damaged or was modified: dataset {k!r} does not "
                        f"match its recorded checksum (sha256 {got}, recorded {want}); it is "
                        f"refused; {fix}")
    except StoreError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"the store {path} cannot be read ({exc}); {fix}") from exc
    if use_cache:
        with _VERIFIED_LOCK:
            _VERIFIED[key] = True


class LazySplit:
    """A split of a store read on demand, as float32 in [0, 1].

    ``len``, ``shape``, ``dtype`` (float32), ``chunk_rows`` and
    ``X[a:b]`` / ``X[index_array]`` / :meth:`read` (rows ``start:stop``)
    behave like an array; only what is asked for is read.  Hand it to
    :func:`~vaeas_np.data.iterate_minibatches` to stream a data set that does
    not fit in memory.  Holds an open HDF5 handle until :meth:`close`.
    """

    def __init__(self, path, key: str):
        import h5py
        self.path = Path(path)
        self.key = key
        self._file = h5py.File(self.path, "r")
        if key not in self._file:
            self._file.close()
            raise StoreError(f"the store {self.path} has no dataset {key!r}")
        self._ds = self._file[key]
        self.scale = float(self._ds.attrs.get("scale", 1.0))
        self.source_dtype = self._ds.dtype
        self.shape = tuple(self._ds.shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)
        self.chunk_rows = (self._ds.chunks or (max(1, self.shape[0]),))[0]

    def __len__(self):
        return self.shape[0]

    def _convert(self, raw):
        out = raw.astype(np.float32)
        if self.scale != 1.0:
            out *= np.float32(1.0 / self.scale)
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as float32 (n, d)."""
        return self._convert(self._ds[start:stop])

    def read_raw(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` in the stored dtype."""
        return self._ds[start:stop]

    def __getitem__(self, item):
        if isinstance(item, slice):
            return self._convert(self._ds[item])
        idx = np.asarray(item)
        if idx.ndim == 0:
            return self._convert(self._ds[int(idx)])
        order = np.argsort(idx, kind="stable")
        uniq, inv = np.unique(idx[order], return_inverse=True)
        rows = self._ds[uniq]
        out = np.empty((len(idx),) + self.shape[1:], dtype=np.float32)
        out[order] = self._convert(rows)[inv]
        return out

    def to_numpy(self) -> np.ndarray:
        return self.read(0, self.shape[0])

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"LazySplit({str(self.path)!r}, {self.key!r}, shape={self.shape})"
