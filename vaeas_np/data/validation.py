"""Validation of user data: :func:`check_array` and :func:`load_array`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CorruptFileError, DataFileMissingError, InvalidInputError, StoreError

__all__ = ["check_array", "load_array"]


def _first_position(mask: np.ndarray) -> str:
    flat = int(np.flatnonzero(mask.ravel())[0])
    row, col = divmod(flat, mask.shape[1])
    return f"row {row}, column {col}"


def check_array(X, name: str = "X", dtype=np.float32) -> np.ndarray:
    """Validate user data and return it as a C-contiguous array of ``dtype``.

    ``X`` may be a NumPy array, any array-like (nested lists...) or an h5py
    dataset (read whole).  It must be 2-D ``(n, d)`` with ``n >= 1`` and
    ``d >= 1``, numeric (bool allowed), free of NaN and inf, with every value
    in [0, 1] (pixel intensities or binary pixels).

    Raises :class:`~vaeas_np.errors.InvalidInputError` saying what is wrong
    and how to fix it.
    """
    try:
        import h5py
        if isinstance(X, h5py.Dataset):
            X = X[()]
    except ImportError:  # pragma: no cover - h5py is a dependency
        pass
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{name} cannot be converted to a numeric array ({exc}); pass a 2-D "
            "array of shape (n_samples, n_features)") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidInputError(
            f"{name} has non-numeric dtype {arr.dtype}; pass a numeric 2-D array "
            "of pixel intensities in [0, 1]")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidInputError(f"{name} is complex ({arr.dtype}); pass real pixel intensities in [0, 1]")
    if arr.ndim != 2:
        hint = ""
        if arr.ndim >= 3:
            hint = (f"; flatten images first, e.g. {name}.reshape(len({name}), -1) "
                    f"gives shape ({arr.shape[0]}, {int(np.prod(arr.shape[1:]))})")
        elif arr.ndim == 1:
            hint = f"; a single example needs shape (1, {arr.shape[0]}): use {name}.reshape(1, -1)"
        raise InvalidInputError(
            f"{name} must be 2-D (n_samples, n_features) but has shape {arr.shape}{hint}")
    n, d = arr.shape
    if n < 1 or d < 1:
        raise InvalidInputError(
            f"{name} has shape {arr.shape}; it needs at least one sample and one feature")
    if np.issubdtype(arr.dtype, np.floating):
        nan = np.isnan(arr)
        n_nan = int(nan.sum())
        if n_nan:
            raise InvalidInputError(
                f"{name} contains {n_nan} NaN value{'s' if n_nan > 1 else ''} (first at "
                f"{_first_position(nan)}); clean or impute them before fitting")
        inf = np.isinf(arr)
        n_inf = int(inf.sum())
        if n_inf:
            raise InvalidInputError(
                f"{name} contains {n_inf} infinite value{'s' if n_inf > 1 else ''} (first "
                f"at {_first_position(inf)}); clean or clip them before fitting")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > 1:
        hint = "scale pixel intensities to [0, 1]"
        if hi > 1 and hi <= 255 and lo >= 0:
            hint += ", e.g. divide uint8 images by 255"
        elif lo < 0:
            hint += ", e.g. (X - X.min()) / (X.max() - X.min())"
        raise InvalidInputError(
            f"{name} has values outside [0, 1] (min {float(lo):g}, max {float(hi):g}); {hint}")
    return np.ascontiguousarray(arr, dtype=dtype)


def load_array(path, dataset: str = "X", *, dtype=np.float32) -> np.ndarray:
    """Read the 2-D dataset ``dataset`` of the user HDF5 file ``path`` and
    validate it with :func:`check_array`.

    Raises :class:`DataFileMissingError` if the file is missing,
    :class:`CorruptFileError` if it is not an HDF5 file, :class:`StoreError` if
    it has no such dataset, :class:`InvalidInputError` for bad content.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataFileMissingError(f"HDF5 file {path} does not exist; check the path")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(
            f"{path} cannot be opened as an HDF5 file ({exc}); write your data with "
            f"h5py, e.g. h5py.File(path, 'w').create_dataset({dataset!r}, data=X)") from exc
    with f:
        obj = f.get(dataset)
        if not isinstance(obj, h5py.Dataset):
            found = []
            f.visititems(lambda k, v: found.append(k) if isinstance(v, h5py.Dataset) else None)
            raise StoreError(
                f"{path} has no dataset {dataset!r} (datasets found: {found or 'none'}); "
                "pass dataset=<name> with one of those names")
        return check_array(obj[()], name=f"{path.name}:{dataset}", dtype=dtype)
