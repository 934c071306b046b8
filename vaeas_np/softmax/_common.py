"""Shared plumbing of the softmax output layers: argument checks and grow-only buffers."""
import numpy as np

from .._threads import get_num_threads
from ..errors import InvalidInputError, InvalidParameterError
from .._validation import check_positive_int

try:
    from .._ext import hsoftmax as _hs_ext, softmax_full as _sm_ext, optim as _optim_ext
except ImportError as exc:  # pragma: no cover - source tree without a build
    from ..errors import ExtensionNotBuiltError
    raise ExtensionNotBuiltError(
        "vaeas_np's compiled core is not built: run `python setup.py build_ext --inplace` "
        "(or `pip install .`).") from exc

__all__ = ["_hs_ext", "_sm_ext", "_optim_ext", "check_dtype", "OutputLayerBase"]


def check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise InvalidParameterError(f"dtype must be float32 or float64, got {dt}.")
    return dt


class OutputLayerBase:
    """Input checks, the per-batch-size buffers and the dlogp broadcast."""

    n_in: int
    n_labels: int
    dtype: np.dtype

    def _init_common(self, n_in, n_labels, dtype, n_threads, seed, rng):
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_labels = check_positive_int(n_labels, "n_labels", 2)
        self.dtype = check_dtype(dtype)
        get_num_threads(n_threads)  # validate now
        self.n_threads = n_threads
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.t = 0                  # Adam step counter (number of step() calls)
        self._cap = 0               # batch capacity of the buffers
        self._H = self._labels = None
        self._B = 0
        self._have_grad = False

    @property
    def threads(self):
        """Resolved thread count used by the kernels (None -> library default)."""
        return get_num_threads(self.n_threads)

    def _check_input(self, H, labels=None):
        H = np.asarray(H)
        if H.ndim != 2 or H.shape[1] != self.n_in:
            raise InvalidInputError(f"H must have shape (B, {self.n_in}), got {H.shape}.")
        if H.dtype != self.dtype or not H.flags.c_contiguous:
            H = np.ascontiguousarray(H, dtype=self.dtype)
        if labels is None:
            return H
        labels = np.asarray(labels)
        if labels.shape != (H.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise InvalidInputError(f"labels must be integers of shape ({H.shape[0]},), got "
                                    f"{labels.dtype} {labels.shape}.")
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_labels):
            raise InvalidInputError(f"labels must lie in [0, {self.n_labels}).")
        return H, labels

    def _ensure_capacity(self, B):
        if B > self._cap:
            self._cap = B
            self._dlogp_buf = np.empty(B, self.dtype)
            self._logp_buf = np.empty(B, self.dtype)
            self._dH_buf = np.empty((B, self.n_in), self.dtype)
            self._alloc(B)

    def _dlogp(self, dlogp):
        if self._H is None:
            raise RuntimeError("backward() needs a forward() first.")
        buf = self._dlogp_buf[:self._B]
        d = np.asarray(dlogp)
        if d.ndim == 0:
            buf.fill(d)
        elif d.shape == (self._B,):
            buf[...] = d
        else:
            raise InvalidInputError(f"dlogp must be a scalar or shape ({self._B},), got {d.shape}.")
        return buf

    def _check_step(self, lr, beta1, beta2, eps):
        if not self._have_grad:
            raise RuntimeError("step() needs a backward() first (each backward feeds one step).")
        if not (lr >= 0 and 0 <= beta1 < 1 and 0 <= beta2 < 1 and eps >= 0):
            raise InvalidParameterError("Adam needs lr >= 0, 0 <= beta1, beta2 < 1, eps >= 0.")

    def _rows_chunk(self, chunk_elems):
        return max(1, int(chunk_elems) // self.n_labels)
