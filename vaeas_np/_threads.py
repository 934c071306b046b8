"""One ``n_threads`` knob for BLAS and the compiled kernels.

``set_num_threads(n)`` sets the library-wide default; models take their own
``n_threads`` and apply it with :func:`thread_limits` around their work, which
limits BLAS through threadpoolctl and passes the same number to every
``prange`` in the compiled core, so the two never oversubscribe the cores.
"""
import contextlib
import os

from threadpoolctl import ThreadpoolController

from .errors import InvalidParameterError

_default = None
_controller = None          # one ThreadpoolController: scanning the loaded libraries costs ~2 ms


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


def get_num_threads(n=None):
    """Resolve ``n`` (None -> library default -> all cores) to a positive int."""
    if n is not None:
        return check_n_threads(n)
    if _default is not None:
        return _default
    return cpu_count()


def check_n_threads(n):
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise InvalidParameterError(f"n_threads must be a positive integer or None, got {n!r}.")
    n = int(n)
    if n < 1:
        raise InvalidParameterError(f"n_threads must be >= 1 (or None for all cores), got {n}.")
    return n


@contextlib.contextmanager
def thread_limits(n):
    """Limit BLAS to ``n`` threads inside the block; yields ``n`` for the kernels."""
    global _controller
    n = get_num_threads(n)
    if _controller is None:
        _controller = ThreadpoolController()
    with _controller.limit(limits=n, user_api="blas"):
        yield n
