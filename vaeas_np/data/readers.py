"""Readers of the raw data formats, each validating what it reads.

Every reader raises :class:`~vaeas_np.errors.DataFileMissingError` for a file
that is not there and :class:`~vaeas_np.errors.CorruptFileError` for one that
cannot be parsed (truncated gzip stream, wrong magic number, wrong dimensions,
wrong length, values out of range); the message names the file, says what is
wrong and what to do.

Formats
-------
* IDX (LeCun's MNIST files), gzip-compressed or raw: :func:`read_idx`,
  :func:`read_idx_images`, :func:`read_idx_labels`; :func:`write_idx` writes one.
* Larochelle & Murray's binarised MNIST ``.amat`` text, gzip or raw:
  :func:`read_amat`.
* Burda et al.'s Omniglot ``chardata.mat`` (MATLAB v5, read with scipy.io):
  :func:`read_chardata_mat`.
* The Omniglot 28x28 substitute ``omniglot28.npz``: :func:`read_omniglot28_npz`.

No reader uses pickle.
"""
from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import CorruptFileError, DataFileMissingError

__all__ = [
    "read_bytes",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "write_idx",
    "read_amat",
    "read_chardata_mat",
    "read_omniglot28_npz",
]

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type codes -> big-endian numpy dtypes
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_TYPES.items()}


def _redownload_hint(path) -> str:
    return (f"delete {path} and download or copy it again "
            "(see `vaeas-np data prepare --help`)")


def _check_exists(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFileMissingError(
            f"data file {path} does not exist; check the path, or let "
            "vaeas_np.data.load_dataset download it")
    return path


def is_gzip(path) -> bool:
    """True if the file starts with the gzip magic number."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def read_bytes(path) -> bytes:
    """Return the whole content of ``path``, decompressed if it is gzip.

    gzip is detected from the magic number, not the file name.  A truncated
    or damaged gzip stream raises :class:`CorruptFileError`.
    """
    path = _check_exists(path)
    if not is_gzip(path):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except EOFError as exc:
        raise CorruptFileError(
            f"{path} is truncated: its gzip stream ends before the end-of-stream "
            f"marker ({exc}); the download or copy was incomplete: "
            + _redownload_hint(path)) from exc
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise CorruptFileError(
            f"{path} is a damaged gzip file ({exc}): " + _redownload_hint(path)) from exc


# --------------------------------------------------------------------- IDX
def read_idx(path, *, expected_ndim=None) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian array.

    The header (magic ``00 00 <type> <ndim>``, then ``ndim`` big-endian
    int32 sizes) is checked, and the data length must match it exactly.
    """
    content = read_bytes(path)
    if len(content) < 4:
        raise CorruptFileError(
            f"{path} is too short to be an IDX file ({len(content)} bytes): "
            + _redownload_hint(path))
    zero, code, ndim = struct.unpack(">HBB", content[:4])
    if zero != 0 or code not in _IDX_TYPES or ndim == 0:
        raise CorruptFileError(
            f"{path} has the wrong magic number 0x{content[:4].hex()} for an IDX "
            "file (expected 0x0000 then a type code 08/09/0B/0C/0D/0E and the "
            "number of dimensions); it is not an IDX file or its header is "
            "damaged: " + _redownload_hint(path))
    if expected_ndim is not None and ndim != expected_ndim:
        raise CorruptFileError(
            f"{path} has {ndim} dimensions in its IDX header, expected "
            f"{expected_ndim}; is it the right file (images vs labels)?")
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise CorruptFileError(
            f"{path} is truncated inside its IDX header: " + _redownload_hint(path))
    dims = struct.unpack(">" + "I" * ndim, content[4:header_len])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(content) - header_len
    if got != expected:
        what = "truncated" if got < expected else "too long"
        raise CorruptFileError(
            f"{path} is {what}: its IDX header announces shape {tuple(dims)} "
            f"({expected} data bytes) but it holds {got} data bytes: "
            + _redownload_hint(path))
    arr = np.frombuffer(content, dtype=dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path, array, *, compress=None) -> None:
    """Write ``array`` as an IDX file; gzip it if ``compress`` (default: the
    name ends with ``.gz``)."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=")
    if key not in _IDX_CODES:
        raise ValueError(f"dtype {array.dtype} cannot be written as IDX")
    code = _IDX_CODES[key]
    header = struct.pack(">HBB", 0, code, array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    Path(path).write_bytes(payload)


def read_idx_images(path, *, n=None, rows=28, cols=28) -> np.ndarray:
    """Read an IDX3 uint8 image file: returns uint8 (n, rows, cols)."""
    arr = read_idx(path, expected_ndim=3)
    if arr.dtype != np.uint8:
        raise CorruptFileError(f"{path} holds {arr.dtype} values, expected uint8 images")
    if arr.shape[1:] != (rows, cols):
        raise CorruptFileError(
            f"{path} holds images of {arr.shape[1]}x{arr.shape[2]} pixels, expected "
            f"{rows}x{cols}; is it the right file?")
    if n is not None and arr.shape[0] != n:
        raise CorruptFileError(
            f"{path} holds {arr.shape[0]} images, expected {n}; is it the right "
            "file (train vs t10k)? " + _redownload_hint(path))
    return arr


def read_idx_labels(path, *, n=None, num_classes=10) -> np.ndarray:
    """Read an IDX1 uint8 label file: returns uint8 (n,), values checked
    to lie in ``0..num_classes-1``."""
    arr = read_idx(path, expected_ndim=1)
    if arr.dtype != np.uint8:
        raise CorruptFileError(f"{path} holds {arr.dtype} values, expected uint8 labels")
    if n is not None and arr.shape[0] != n:
        raise CorruptFileError(
            f"{path} holds {arr.shape[0]} labels, expected {n}; is it the right "
            "file (train vs t10k)? " + _redownload_hint(path))
    if num_classes is not None and arr.size and int(arr.max()) >= num_classes:
        raise CorruptFileError(
            f"{path} holds label {int(arr.max())}, expected 0..{num_classes - 1}: "
            + _redownload_hint(path))
    return arr


# -------------------------------------------------------------------- amat
def read_amat(path, *, n=None, d=784) -> np.ndarray:
    """Read a binarised-MNIST ``.amat`` text file (gzip or raw).

    Each line holds ``d`` space-separated ``0``/``1`` values.  Returns uint8
    (n, d) with values in {0, 1}.  The common fixed-width layout (single
    spaces, ``\\n`` line ends) is parsed without tokenising; anything else
    falls back to :func:`numpy.loadtxt`.
    """
    content = read_bytes(path)
    if not content.strip():
        raise CorruptFileError(f"{path} is empty: " + _redownload_hint(path))
    width = 2 * d
    raw = np.frombuffer(content, dtype=np.uint8)
    arr = None
    if raw.size % width == 0:
        lines = raw.reshape(-1, width)
        digits = lines[:, 0::2]
        if (np.all(lines[:, 1:-1:2] == ord(" ")) and np.all(lines[:, -1] == ord("\n"))
                and np.all((digits == ord("0")) | (digits == ord("1")))):
            arr = (digits - ord("0")).astype(np.uint8)
    if arr is None:
        try:
            vals = np.loadtxt(content.decode("ascii").splitlines(), dtype=np.float64, ndmin=2)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptFileError(
                f"{path} is not a valid .amat file (rows of {d} space-separated "
                f"0/1 values): {exc}; " + _redownload_hint(path)) from exc
        if vals.shape[1] != d:
            raise CorruptFileError(
                f"{path} has {vals.shape[1]} values per line, expected {d}: "
                + _redownload_hint(path))
        if not np.all((vals == 0) | (vals == 1)):
            raise CorruptFileError(
                f"{path} holds values other than 0 and 1; binarised MNIST is binary: "
                + _redownload_hint(path))
        arr = vals.astype(np.uint8)
    if n is not None and arr.shape[0] != n:
        raise CorruptFileError(
            f"{path} holds {arr.shape[0]} rows, expected {n}; the file is truncated "
            "or is the wrong split: " + _redownload_hint(path))
    return arr


# ------------------------------------------------------- Omniglot (Burda)
def read_chardata_mat(path, *, n_train=None, n_test=None):
    """Read Burda et al.'s Omniglot ``chardata.mat``.

    The file holds ``data`` (784 x 24345) and ``testdata`` (784 x 8070), one
    image per column, stored column-major: each column is reshaped with
    Fortran order to get an upright 28x28 image.  Returns a dict with
    ``train`` and ``test`` as (n, 784) row-major upright images in the file's
    own dtype and values (checked to lie in [0, 1]), plus ``train_labels`` /
    ``test_labels`` (alphabet index) when the file's ``target`` /
    ``testtarget`` one-hot matrices are present.
    """
    import scipy.io

    path = _check_exists(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5) files
        raise CorruptFileError(
            f"{path} is a MATLAB v7.3 file; chardata.mat is a v5 file: "
            + _redownload_hint(path)) from exc
    except (ValueError, TypeError, OSError, zlib.error, EOFError, struct.error) as exc:
        raise CorruptFileError(
            f"{path} cannot be read as a MATLAB file ({exc}): " + _redownload_hint(path)) from exc
    out = {}
    for key, split, n in (("data", "train", n_train), ("testdata", "test", n_test)):
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise CorruptFileError(
                f"{path} has no variable '{key}' (found {found}); is it Burda's "
                "chardata.mat? " + _redownload_hint(path))
        a = np.asarray(mat[key])
        if a.ndim != 2 or a.shape[0] != 784 or (n is not None and a.shape[1] != n):
            want = f"(784, {n})" if n is not None else "(784, n)"
            raise CorruptFileError(
                f"{path}: '{key}' has shape {a.shape}, expected {want}: "
                + _redownload_hint(path))
        if not np.issubdtype(a.dtype, np.number):
            raise CorruptFileError(f"{path}: '{key}' is not numeric ({a.dtype})")
        if a.size and (not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1):
            raise CorruptFileError(
                f"{path}: '{key}' has values outside [0, 1] or NaN: " + _redownload_hint(path))
        cnt = a.shape[1]
        # column j is a column-major 28x28 image: reshape(order='F') == reshape().T
        imgs = a.T.reshape(cnt, 28, 28).transpose(0, 2, 1).reshape(cnt, 784)
        out[split] = np.ascontiguousarray(imgs)
        tkey = "target" if split == "train" else "testtarget"
        t = mat.get(tkey)
        if t is not None and np.ndim(t) == 2 and t.shape[1] == cnt:
            out[split + "_labels"] = np.argmax(t, axis=0).astype(np.int64)
        elif t is not None and np.ndim(t) == 2 and t.shape[0] == cnt:
            out[split + "_labels"] = np.argmax(t, axis=1).astype(np.int64)
    return out


# ---------------------------------------------------- Omniglot substitute
def read_omniglot28_npz(path, *, n_train=None, n_test=None):
    """Read the Omniglot 28x28 substitute ``omniglot28.npz`` (no pickle).

    Returns a dict with ``train``/``test`` uint8 (n, 784) (upright,
    row-major, strokes 255; divide by 255), ``train_labels``/``test_labels``
    (character id 0..1622) and ``train_alphabet``/``test_alphabet`` when
    present.
    """
    path = _check_exists(path)
    out = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            for split, n in (("train", n_train), ("test", n_test)):
                if split not in files:
                    raise CorruptFileError(
                        f"{path} has no array '{split}' (found {sorted(files)}); is it "
                        "omniglot28.npz? " + _redownload_hint(path))
                a = z[split]
                if a.dtype != np.uint8 or a.ndim != 3 or a.shape[1:] != (28, 28) \
                        or (n is not None and a.shape[0] != n):
                    want = f"uint8 ({n if n is not None else 'n'}, 28, 28)"
                    raise CorruptFileError(
                        f"{path}: '{split}' is {a.dtype} {a.shape}, expected {want}: "
                        + _redownload_hint(path))
                out[split] = np.ascontiguousarray(a.reshape(a.shape[0], 784))
                for extra, key in (("character", "labels"), ("alphabet", "alphabet")):
                    name = f"{split}_{extra}"
                    if name in files:
                        v = z[name]
                        if v.shape != (a.shape[0],):
                            raise CorruptFileError(
                                f"{path}: '{name}' has shape {v.shape}, expected "
                                f"({a.shape[0]},): " + _redownload_hint(path))
                        out[f"{split}_{key}"] = v.astype(np.int64)
    except CorruptFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, KeyError) as exc:
        raise CorruptFileError(
            f"{path} cannot be read as an .npz archive ({type(exc).__name__}: {exc}): "
            + _redownload_hint(path)) from exc
    return out


def file_size(path) -> int:
    return os.stat(path).st_size
