"""One shared place that validates inputs, so every layer words errors the same way:
who (the layer's repr), what was expected, what came."""

import numpy as np

__all__ = ["check_float_array", "check_input", "check_positive_int", "check_real"]


def _describe(x):
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__}" if shape is None else f"{tuple(shape)}"


def check_float_array(owner, x, what="input"):
    """Raise TypeError unless ``x`` is a floating-point array (NumPy or CuPy)."""
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"{owner!r}: expected {what} to be a float array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{owner!r}: expected {what} of a floating dtype (float32 or float64), got dtype {x.dtype}")


def check_input(owner, x, ndim=None, features=None, feature_axis=1, layout=None):
    """Validate a layer input before any state changes.

    Args:
        owner: the module (its repr names it in the message).
        x: the input array.
        ndim: an int or a tuple of accepted ranks.
        features: expected size along ``feature_axis`` (None: any).
        layout: text such as ``"(N, 3, H, W)"`` used in the message.
    """
    check_float_array(owner, x)
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in accepted:
            want = layout or " or ".join(f"{d}-D" for d in accepted)
            raise ValueError(f"{owner!r}: expected input of shape {want}, got {_describe(x)}")
    if features is not None and (x.ndim <= feature_axis or x.shape[feature_axis] != features):
        want = layout or f"(N, {features})"
        raise ValueError(f"{owner!r}: expected input of shape {want}, got {_describe(x)}")


def check_positive_int(owner_name, name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner_name}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(owner_name, name, value):
    """``float(value)``, or a TypeError naming the layer when ``value`` is not a real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner_name}: {name} must be a real number, got {value!r}")
    return float(value)
