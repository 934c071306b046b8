"""vaeas_np: VAE-AS (VAE with an auxiliary softmax multiclassifier) in NumPy.

Public API: :class:`VAE`, :class:`VAEAS`, :func:`load_dataset`,
:func:`load_model`, :func:`set_num_threads`.
"""
from ._version import __version__
from ._threads import get_num_threads, set_num_threads
from .data import load_dataset
from .models.io import load_model
from .models.vae import VAE
from .models.vaeas import VAEAS

__all__ = ["__version__", "VAE", "VAEAS", "load_dataset", "load_model", "get_num_threads",
           "set_num_threads"]
