"""Checks of integer parameters shared by the package (one message everywhere)."""
import numbers

from .errors import InvalidParameterError


def check_positive_int(value, name, minimum=1):
    """``value`` as an int; InvalidParameterError naming ``name`` unless it is an
    integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidParameterError(f"{name} must be {what}, got {value!r}.")
    return int(value)
