"""Minibatch iteration: :func:`iterate_minibatches`.

Two paths:

* **In memory** (``X`` a NumPy array, or an HDF5 dataset / store split that
  fits in ``max_memory_bytes`` as float32 and is therefore read whole): the
  epoch order is ``shuffle_rng.permutation(n)``; rows are gathered with
  ``np.take`` into a preallocated buffer.
* **Streamed** (an HDF5 dataset or :class:`~vaeas_np.data.store.LazySplit`
  larger than ``max_memory_bytes``): rows are read in windows of whole
  blocks (aligned to the HDF5 chunks).  With shuffling, the order of the
  blocks is permuted and the rows of each window are permuted; this is a
  *two-level* shuffle, deterministic given ``shuffle_rng`` but not the same
  order as the in-memory path.  Peak memory of the Python-side buffers
  (measured with tracemalloc in the tests) stays under ``max_memory_bytes``;
  HDF5's own chunk cache (a few MiB, C-allocated) comes on top.

Binarisation: ``"dynamic"``: ``x = (u < p)`` with
``u = binarize_rng.random((b, d), dtype=np.float32)`` drawn afresh for every
minibatch (Burda et al. 2015); ``"static"`` or ``None``: values unchanged;
``"threshold"``: ``x = (p > 0.5)``.

Yielded arrays: by default each ``x`` is a fresh array that the caller may
keep.  With ``reuse_buffer=True`` the same output buffer is overwritten by
the next minibatch (slightly faster; copy what you keep).  ``indices`` is
always a fresh int64 array.

``X`` is not re-validated on every epoch: validate user data once with
:func:`~vaeas_np.data.check_array`.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError, InvalidParameterError
from .._validation import check_positive_int

__all__ = ["iterate_minibatches", "DEFAULT_MAX_MEMORY_BYTES"]

#: Budget for HDF5-backed inputs when ``max_memory_bytes`` is None.
DEFAULT_MAX_MEMORY_BYTES = 512 << 20

_MODES = ("dynamic", "static", None, "threshold")


def _is_lazy(X) -> bool:
    try:
        import h5py
        if isinstance(X, h5py.Dataset):
            return True
    except ImportError:  # pragma: no cover
        pass
    from .store import LazySplit
    return isinstance(X, LazySplit)


class _Source:
    """Uniform row reader for h5py datasets and LazySplit (float32 out)."""

    def __init__(self, X):
        from .store import LazySplit
        self.X = X
        if isinstance(X, LazySplit):
            self.read = X.read
            self.itemsize = X.source_dtype.itemsize
            self.chunk_rows = X.chunk_rows
        else:
            self.read = lambda a, b: np.asarray(X[a:b], dtype=np.float32)
            self.itemsize = X.dtype.itemsize
            self.chunk_rows = (X.chunks or (max(1, X.shape[0]),))[0]


def iterate_minibatches(X, batch_size, *, shuffle_rng=None, binarize_rng=None,
                        binarize="dynamic", drop_last=False, max_memory_bytes=None,
                        reuse_buffer=False, dtype=np.float32):
    """Yield ``(indices, x)`` minibatches of the rows of ``X``.

    Parameters
    ----------
    X : (n, d) NumPy array with values in [0, 1], h5py Dataset, or a store
        split (:meth:`Dataset.split`).
    batch_size : int >= 1.
    shuffle_rng : numpy Generator; a new row order per call (epoch).  None:
        rows in order.
    binarize_rng : numpy Generator for ``binarize="dynamic"`` (required then).
    binarize : "dynamic", "static"/None or "threshold" (see module doc).
    drop_last : skip a last, smaller minibatch.
    max_memory_bytes : memory budget for HDF5-backed ``X`` (default 512 MiB):
        read whole if it fits as float32, else streamed in windows.  Ignored
        for NumPy arrays (already in memory).
    reuse_buffer : overwrite one output buffer instead of yielding fresh arrays.
    dtype : float32 (default) or float64, the yielded batches' dtype (a float64
        model's training); the values are the same.

    Yields
    ------
    indices : int64 (b,) row ids in ``X``.
    x : (b, d) of ``dtype``.

    The sequence is a deterministic function of the generators' states.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if binarize not in _MODES:
        raise InvalidParameterError(
            f"binarize must be one of 'dynamic', 'static', None or 'threshold', got {binarize!r}")
    if binarize == "dynamic" and binarize_rng is None:
        raise InvalidParameterError(
            "binarize='dynamic' needs binarize_rng, e.g. np.random.default_rng(seed); "
            "or pass binarize='static' to keep the values")
    for nm, g in (("shuffle_rng", shuffle_rng), ("binarize_rng", binarize_rng)):
        if g is not None and not isinstance(g, np.random.Generator):
            raise InvalidParameterError(f"{nm} must be a numpy.random.Generator, got {type(g).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InvalidParameterError(f"dtype must be float32 or float64, got {dtype}")
    if _is_lazy(X):
        if len(X.shape) != 2:
            raise InvalidInputError(f"X must be 2-D (n, d), got shape {X.shape}")
        budget = DEFAULT_MAX_MEMORY_BYTES if max_memory_bytes is None else int(max_memory_bytes)
        n, d = X.shape
        if n * d * 4 * 2 <= budget:
            src = _Source(X)
            return _in_memory(src.read(0, n), batch_size, shuffle_rng, binarize_rng,
                              binarize, drop_last, reuse_buffer, dtype)
        return _streamed(_Source(X), (n, d), batch_size, shuffle_rng, binarize_rng,
                         binarize, drop_last, budget, dtype)
    X = np.asarray(X)
    if X.ndim != 2:
        raise InvalidInputError(
            f"X must be 2-D (n, d), got shape {X.shape}; flatten images with X.reshape(len(X), -1)")
    return _in_memory(X, batch_size, shuffle_rng, binarize_rng, binarize, drop_last, reuse_buffer,
                      dtype)


def _finish(xb, out, binarize, binarize_rng, ubuf):
    """Binarise/copy gathered float32 rows ``xb`` into ``out``."""
    if binarize == "dynamic":
        u = binarize_rng.random(xb.shape, dtype=np.float32, out=ubuf)
        np.less(u, xb, out=out)
    elif binarize == "threshold":
        np.greater(xb, np.float32(0.5), out=out)
    else:
        if out is not xb:
            out[...] = xb
    return out


def _in_memory(X, bs, shuffle_rng, binarize_rng, binarize, drop_last, reuse_buffer, dtype):
    n, d = X.shape
    order = shuffle_rng.permutation(n) if shuffle_rng is not None else None
    f32 = X.dtype == np.float32 and X.flags.c_contiguous
    gbuf = np.empty((min(bs, n), d), dtype=np.float32)
    ubuf = np.empty((min(bs, n), d), dtype=np.float32)
    obuf = np.empty((min(bs, n), d), dtype=dtype)
    for start in range(0, n, bs):
        stop = min(start + bs, n)
        b = stop - start
        if drop_last and b < bs:
            break
        if order is None:
            idx = np.arange(start, stop, dtype=np.int64)
            if f32:
                xb = X[start:stop]
            else:
                xb = gbuf[:b]
                xb[...] = X[start:stop]
        else:
            idx = order[start:stop].astype(np.int64, copy=True)
            xb = gbuf[:b]
            if f32:
                np.take(X, idx, axis=0, out=xb)
            else:
                xb[...] = X[idx]
        out = obuf[:b] if reuse_buffer else np.empty((b, d), dtype=dtype)
        yield idx, _finish(xb, out, binarize, binarize_rng, ubuf[:b])


def _streamed(src, shape, bs, shuffle_rng, binarize_rng, binarize, drop_last, budget, dtype):
    """Check the budget now (not at the first ``next``), then stream."""
    n, d = shape
    # Peak memory per row held: window float32 (4) + raw read (itemsize) +
    # carried rows concatenated with the window (4) + permuted copy (4).
    per_row = d * (12 + src.itemsize)
    fixed = bs * d * (12 + dtype.itemsize) + (1 << 16)   # batch buffers + slack
    window = (budget - fixed) // per_row
    if window < bs:
        need = fixed + bs * per_row
        raise InvalidParameterError(
            f"max_memory_bytes={budget} is too small for batch_size={bs} with d={d}; "
            f"it needs at least {need} bytes")
    return _stream_gen(src, n, d, bs, shuffle_rng, binarize_rng, binarize, drop_last, window,
                       dtype)


def _stream_gen(src, n, d, bs, shuffle_rng, binarize_rng, binarize, drop_last, window, dtype):
    block = max(1, min(src.chunk_rows, window))
    blocks_per_window = max(1, window // block)
    starts = np.arange(0, n, block, dtype=np.int64)
    if shuffle_rng is not None:
        starts = starts[shuffle_rng.permutation(len(starts))]
    ubuf = np.empty((bs, d), dtype=np.float32)
    carry_idx = np.empty(0, dtype=np.int64)
    carry_x = np.empty((0, d), dtype=np.float32)
    for w in range(0, len(starts), blocks_per_window):
        parts_idx, parts_x = [carry_idx], [carry_x]
        for s in starts[w:w + blocks_per_window]:
            e = min(int(s) + block, n)
            parts_idx.append(np.arange(s, e, dtype=np.int64))
            parts_x.append(src.read(int(s), e))
        idx = np.concatenate(parts_idx)
        del parts_idx
        xw = np.concatenate(parts_x)
        del parts_x
        if shuffle_rng is not None:
            p = shuffle_rng.permutation(len(idx))
            idx = idx[p]
            xw = xw[p]
        last_window = w + blocks_per_window >= len(starts)
        full = (len(idx) // bs) * bs
        end = len(idx) if last_window else full
        for a in range(0, end, bs):
            b = min(a + bs, end)
            if drop_last and b - a < bs:
                break
            out = np.empty((b - a, d), dtype=dtype)
            yield idx[a:b].copy(), _finish(xw[a:b], out, binarize, binarize_rng, ubuf[:b - a])
        carry_idx, carry_x = idx[full:].copy(), xw[full:].copy()
        del xw, idx
