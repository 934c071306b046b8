"""Import of the compiled kernels with a clear error when they are not built."""
from ..errors import ExtensionNotBuiltError

try:
    from .._ext import mixture
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ExtensionNotBuiltError(
        "vaeas_np's compiled core is not built (vaeas_np._ext.mixture is missing). "
        "Run `python setup.py build_ext --inplace` in the source tree, or install the "
        "package with pip.") from exc

__all__ = ["mixture"]
