"""One ``n_threads`` knob for BLAS and the compiled kernels.

``set_num_threads(n)`` sets the library-wide default; models take their own
``n_threads`` and apply it with :func:`thread_limits` around their work, which
limits BLAS through threadpoolctl and passes the same number to every
``prange`` in the compiled core, so the two never oversubscribe the cores.

Inside ``thread_limits`` numpy's OpenBLAS also runs its jobs on the compiled
core's OpenMP threads (``_ext/blas_pool.h``): otherwise OpenBLAS's own workers
spin on the cores after every GEMM and a kernel between two GEMMs gets one core,
not ``n``.  Set ``VAEAS_NP_SHARED_BLAS_POOL=0`` to keep OpenBLAS's own threads.
BLAS builds without the hook (OpenBLAS < 0.3.27, MKL, Accelerate) are left as
they are.  On entering a block OpenBLAS's own workers may still spin for up to
~0.1 s after the caller's last GEMM.

GNU OpenMP's threads do not survive ``fork``: in a child forked after the
parent ran a parallel kernel, a parallel region hangs.  Such a child runs the
kernels on one thread (BLAS keeps its own threads, which OpenBLAS restarts
after fork) and warns once; the 'spawn' or 'forkserver' start methods of
multiprocessing keep every process parallel.
"""
import contextlib
import os
import sys
import warnings

from threadpoolctl import ThreadpoolController

from .errors import InvalidParameterError

_default = None
_controller = None          # one ThreadpoolController: scanning the loaded libraries costs ~2 ms
_pool_depth = 0             # nesting of shared_blas_pool blocks (the hook is process-wide)
_pool_setters = None        # addresses of openblas_set_threads_callback_function, per library
_openmp_started = False     # a kernel or BLAS call may have run on > 1 OpenMP thread here
_openmp_lost = False        # forked from a process whose OpenMP threads had started


def cpu_count():
    """Cores this process may use (respects affinity masks / cgroups where visible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def set_num_threads(n):
    """Set the default number of threads (None = all cores) for BLAS and kernels."""
    global _default
    _default = None if n is None else check_n_threads(n)


def _resolve(n):
    """``n`` (None -> library default -> all cores) as a positive int."""
    if n is not None:
        return check_n_threads(n)
    if _default is not None:
        return _default
    return cpu_count()


def get_num_threads(n=None):
    """Threads for the compiled kernels: ``n`` (None -> library default -> all cores)
    as a positive int; 1 in a process forked after its parent's OpenMP threads
    started (see the module notes)."""
    return _kernel_threads(_resolve(n))


def _kernel_threads(n):
    """The kernels' share of a resolved count ``n``: 1 after a fork that lost OpenMP."""
    global _openmp_started
    if n > 1:
        if _openmp_lost:
            _warn_openmp_lost()
            return 1
        _openmp_started = True
    return n


_warned_lost = False


def _warn_openmp_lost():
    global _warned_lost
    if not _warned_lost:
        _warned_lost = True
        warnings.warn(
            "vaeas_np: this process was forked after its parent ran parallel kernels; GNU "
            "OpenMP cannot start threads here (they would hang), so the compiled kernels run "
            "on one thread in this process. Use multiprocessing's 'spawn' or 'forkserver' "
            "start method to keep them parallel.", RuntimeWarning, stacklevel=4)


def _after_fork_in_child():
    global _openmp_lost, _pool_depth
    if _openmp_started:
        _openmp_lost = True
    if _pool_depth:            # forked inside a shared block: OpenBLAS gets its threads back
        _install_callback(False)
        _pool_depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def check_n_threads(n):
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise InvalidParameterError(f"n_threads must be a positive integer or None, got {n!r}.")
    n = int(n)
    if n < 1:
        raise InvalidParameterError(f"n_threads must be >= 1 (or None for all cores), got {n}.")
    return n


def _get_controller():
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def _callback_setters():
    """Addresses of ``openblas_set_threads_callback_function`` in the pthreads builds
    of OpenBLAS loaded in this process (OpenMP builds already share a pool)."""
    global _pool_setters
    if _pool_setters is None:
        import ctypes
        setters = []
        for lib in _get_controller().lib_controllers:
            if lib.internal_api != "openblas" or getattr(lib, "threading_layer", "") != "pthreads":
                continue
            fn = lib._get_symbol("openblas_set_threads_callback_function")
            if fn is not None:
                setters.append(ctypes.cast(fn, ctypes.c_void_p).value)
        _pool_setters = setters
    return _pool_setters


def env_switched_off(name):
    """True when the environment variable ``name`` says 0, false, no or off."""
    return os.environ.get(name, "1").strip().lower() in ("0", "false", "no", "off")


def shared_pool_possible():
    """True unless switched off (``VAEAS_NP_SHARED_BLAS_POOL=0``) or no loaded
    OpenBLAS has the threads callback.  Does not load the compiled core."""
    if env_switched_off("VAEAS_NP_SHARED_BLAS_POOL"):
        return False
    if sys.platform == "win32":         # the callback's fallback needs pthreads
        return False
    return not _openmp_lost and bool(_callback_setters())


def shared_pool_enabled():
    """True when :func:`shared_blas_pool` will route OpenBLAS onto the OpenMP pool."""
    if not shared_pool_possible():
        return False
    from ._ext import blas_pool
    return blas_pool.has_openmp()


def _install_callback(on):
    """Point every hookable OpenBLAS at our OpenMP callback, or back at its own threads."""
    from ._ext import blas_pool
    for setter in _callback_setters():
        blas_pool.install(setter, on)


@contextlib.contextmanager
def shared_blas_pool():
    """Inside the block, numpy's OpenBLAS runs its jobs on our OpenMP threads
    (yields whether it does).  On entry OpenBLAS's own workers may still spin for
    ~0.1 s after the caller's last GEMM.  Nested blocks are fine; the hook is
    removed when the outermost block exits, even on an exception.
    """
    global _pool_depth
    if not shared_pool_enabled():
        yield False
        return
    if _pool_depth == 0:
        _install_callback(True)
    _pool_depth += 1
    try:
        yield True
    finally:
        _pool_depth = max(0, _pool_depth - 1)       # 0 already in a child forked in the block
        if _pool_depth == 0:
            _install_callback(False)


@contextlib.contextmanager
def thread_limits(n, share_pool=True):
    """Limit BLAS to ``n`` threads inside the block; yields the kernels' thread
    count (``n``, or 1 in a child forked after parallel kernels: module notes).

    With ``share_pool`` (the default) BLAS also runs on the kernels' OpenMP
    threads (:func:`shared_blas_pool`).
    """
    n_blas = _resolve(n)
    n = _kernel_threads(n_blas)
    with _get_controller().limit(limits=n_blas, user_api="blas"):
        if share_pool and n > 1:
            with shared_blas_pool():
                yield n
        else:
            yield n
