"""Small file helpers shared by model files, run directories and experiments:
temporary files beside their target (renamed over it when complete), and JSON
encoding of NumPy values."""
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import CacheNotWritableError


def json_default(o):
    """``json.dumps`` default: NumPy scalars and arrays, paths, tuples."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot store {type(o).__name__} as JSON")


def temp_beside(path, suffix=""):
    """Create an empty temporary file in ``path``'s folder (made if missing), with
    the mode ``open()`` would give it; returns ``(fd, tmp_path)``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-" + path.name + "-", suffix=suffix,
                                   dir=path.parent)
    except OSError as e:
        raise CacheNotWritableError(f"cannot write {str(path)!r}: {e.strerror}; choose a "
                                    "writable location") from e
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)            # mkstemp creates 0600
    return fd, tmp


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
