"""Array backend selection and the seeded random generator shared by all layers.

Kernels call ``get_array_module(x)`` and use only the NumPy API that CuPy also
implements, so module code never branches on the backend (the Chainer/CuPy way).
"""

import numpy as np

__all__ = ["get_array_module", "manual_seed", "default_rng", "resolve_rng", "DEFAULT_DTYPE"]

DEFAULT_DTYPE = np.float32

_default_rng = np.random.default_rng()


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        module = type(a).__module__
        if module.startswith("cupy"):
            import cupy

            return cupy
    return np


def manual_seed(seed):
    """Seed the default generator used by layers that were not given ``rng=``.

    The generator is reseeded in place, so modules built earlier that hold it
    (``Dropout(rng=None)``) follow the new seed too, as with ``torch.manual_seed``.

    Example:
        >>> import nnumpy
        >>> nnumpy.manual_seed(0)
        >>> a = nnumpy.Linear(2, 3).W.copy(); nnumpy.manual_seed(0)
        >>> bool((a == nnumpy.Linear(2, 3).W).all())
        True
    """
    _default_rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state


def default_rng():
    """The generator that ``manual_seed`` controls."""
    return _default_rng


def resolve_rng(rng):
    """``rng`` may be None (the default generator), an int seed or a Generator."""
    if rng is None:
        return _default_rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")
