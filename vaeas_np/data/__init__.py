"""The data layer of vaeas_np: readers, acquisition, the HDF5 store,
minibatches and validation of user data.

Public API
----------
load_dataset(name, data_dir=None, download=True) -> Dataset
prepare(name, from_dir, *, force=False, download=False) -> Path
iterate_minibatches(X, batch_size, *, shuffle_rng=None, binarize_rng=None,
                    binarize="dynamic", drop_last=False, max_memory_bytes=None,
                    reuse_buffer=False, dtype=np.float32)
check_array(X, name="X", dtype=np.float32) -> ndarray
load_array(path, dataset="X") -> ndarray
data_home() -> Path

See the submodules ``readers``, ``fetch``, ``sources``, ``store``,
``datasets``, ``batches`` and ``validation`` for details.
"""
from .batches import iterate_minibatches
from .datasets import Dataset, load_dataset, locate_raw_files, prepare, store_path
from .fetch import data_home
from .store import FORMAT_VERSION, LazySplit
from .validation import check_array, load_array

__all__ = ["load_dataset", "prepare", "iterate_minibatches", "check_array", "load_array",
           "data_home", "Dataset", "LazySplit", "FORMAT_VERSION", "store_path",
           "locate_raw_files", "DATASET_NAMES"]

DATASET_NAMES = ("mnist", "binarized_mnist", "omniglot")
