"""numpy's own OpenBLAS GEMM, for the one product numpy cannot ask for: ``C += A^T B``.

:func:`add_at_b` accumulates a weight gradient into a buffer that the fused Adam
keeps zeroed (see ``_ext/blas.pyx``), which skips OpenBLAS's zeroing pass of
``np.matmul``'s beta = 0.  It is used only when numpy's BLAS is an OpenBLAS
shipped inside numpy's own installation (the wheels' ``scipy_openblas``), found
through threadpoolctl; with any other BLAS, or ``VAEAS_NP_DIRECT_GEMM=0``,
:func:`available` is False and the layers call ``np.matmul`` as before.
"""
import os

import numpy as np

from .._ext import blas as _blas_ext

_state = None       # None: not looked up yet; then True / False


def _numpy_openblas():
    """threadpoolctl's controller of the OpenBLAS inside numpy's installation, or None."""
    from .._threads import _get_controller
    np_root = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    for lib in _get_controller().lib_controllers:
        if lib.internal_api != "openblas" or not lib.filepath:
            continue
        path = os.path.abspath(lib.filepath)
        parts = os.path.relpath(path, np_root).split(os.sep)
        if parts[0] in ("numpy.libs", "numpy") and ".." not in parts:
            return lib
    return None


def _setup():
    global _state
    from .._threads import env_switched_off
    lib = None if env_switched_off("VAEAS_NP_DIRECT_GEMM") else _numpy_openblas()
    # numpy's wheels ship a 64-bit-integer OpenBLAS (symbols suffixed 64_); any other
    # build keeps np.matmul
    if lib is None or "64" not in (getattr(lib, "_symbol_suffix", "") or ""):
        _state = False
        return
    import ctypes
    addr = []
    for name in ("cblas_sgemm", "cblas_dgemm"):
        fn = lib._get_symbol(name)
        addr.append(0 if fn is None else ctypes.cast(fn, ctypes.c_void_p).value or 0)
    _blas_ext.set_gemm(addr[0], addr[1])
    _state = bool(addr[0] or addr[1])


def available(dtype):
    """True when :func:`add_at_b` runs for arrays of ``dtype``."""
    if _state is None:
        _setup()
    return _state and _blas_ext.available(np.dtype(dtype).char)


def add_at_b(A, B, C):
    """``C += A.T @ B`` (C-contiguous arrays of one dtype; RuntimeError where
    :func:`available` is False)."""
    if _state is None:
        _setup()
    _blas_ext.add_at_b(A, B, C)
