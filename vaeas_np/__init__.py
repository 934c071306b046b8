"""vaeas_np: VAE-AS (VAE with an auxiliary softmax multiclassifier) in NumPy."""
from ._version import __version__
from ._threads import get_num_threads, set_num_threads

__all__ = ["__version__", "get_num_threads", "set_num_threads"]
