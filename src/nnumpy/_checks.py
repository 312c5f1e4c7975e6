"""One shared place that validates inputs, so every layer words errors the same way:
who (the layer's repr), what was expected, what came."""

import numpy as np

__all__ = ["as_shape", "check_float_array", "check_input", "check_positive_int", "check_real", "check_shape",
           "shape_probe"]


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
    check_shape(owner, x.shape, ndim, features, feature_axis, layout)


def check_shape(owner, shape, ndim=None, features=None, feature_axis=1, layout=None):
    """``check_input``'s shape checks on a shape alone (what ``output_shape``
    validates, with the very message ``forward`` would raise); returns the
    shape as a tuple of ints."""
    shape = tuple(map(int, shape))
    if ndim is not None:  # a range or tuple of ranks is used as it is (no tuple of range(2, 33) per call)
        accepted = (ndim,) if isinstance(ndim, int) else ndim if isinstance(ndim, (tuple, range)) else tuple(ndim)
        if len(shape) not in accepted:
            want = layout or " or ".join(f"{d}-D" for d in accepted)
            raise ValueError(f"{owner!r}: expected input of shape {want}, got {shape}")
    if features is not None and (len(shape) <= feature_axis or shape[feature_axis] != features):
        want = layout or f"(N, {features})"
        raise ValueError(f"{owner!r}: expected input of shape {want}, got {shape}")
    return shape


def shape_probe(shape, dtype=np.float32):
    """A read-only zero array of ``shape`` that holds no memory (every stride 0):
    what ``output_shape`` hands to a layer's own input checks, so that they
    raise the very error ``forward`` would."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def as_shape(owner, shape):
    """``shape`` as a tuple of ints, or a TypeError naming ``owner`` (a module)
    when it is not one (a structure of shapes, for a layer taking one array)."""
    if isinstance(shape, (tuple, list)) and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                                for s in shape):
        return tuple(int(s) for s in shape)
    raise TypeError(f"{owner!r}: expected the shape of one array (a tuple of ints), got {shape!r}")


def check_positive_int(owner_name, name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner_name}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(owner_name, name, value):
    """``float(value)``, or a TypeError naming the layer when ``value`` is not a real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner_name}: {name} must be a real number, got {value!r}")
    return float(value)
