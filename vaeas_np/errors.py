"""The library's exceptions.

Every error the library raises on purpose is a ``VaeasError``; each message
says what is wrong and what to do about it.  The classes also derive from
the matching built-in (``ValueError``, ``OSError``, ...) so that generic
``except ValueError`` code keeps working.
"""


class VaeasError(Exception):
    """Base class of all vaeas_np errors."""


class InvalidInputError(VaeasError, ValueError):
    """User data with the wrong shape, dtype, NaN/inf, or values outside [0, 1]."""


class InvalidParameterError(VaeasError, ValueError):
    """An impossible hyperparameter (negative width, batch size 0, unknown option...)."""


class NotFittedError(VaeasError, AttributeError):
    """A model method that needs a trained model was called before ``fit``."""


class DataError(VaeasError, OSError):
    """Base class of data acquisition and storage errors."""


class DataFileMissingError(DataError, FileNotFoundError):
    """A raw data file is not where it was looked for and cannot be downloaded."""


class ChecksumMismatchError(DataError):
    """A file's checksum differs from the registered one; the file is refused."""


class CorruptFileError(DataError):
    """A file cannot be parsed: truncated, wrong magic number, wrong length..."""


class StoreError(DataError):
    """An HDF5 store (or model file) is missing a dataset, has a bad format or bad content."""


class CacheNotWritableError(DataError, PermissionError):
    """The data home or output directory cannot be written."""


class TrainingDivergedError(VaeasError, FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class ExtensionNotBuiltError(VaeasError, ImportError):
    """The compiled core is missing (package used from a source tree without building)."""
