"""Images as sequences: row-sequential (Fashion-)MNIST for recurrent and
attention classifiers (LSTM-F, TRF-F of ``../shared/BENCHMARKS.md``).

Each 28 x 28 image is read top to bottom as 28 time steps of 28 pixels, so a
batch is ``(N, 28, 28)`` = ``(N, T, F)`` for ``batch_first`` layers.

Example:
    >>> import numpy as np
    >>> images = np.zeros((2, 28, 28), np.uint8)
    >>> rows_as_sequences(images).shape
    (2, 28, 28)
"""

import numpy as np

from .datasets import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from .idx import DatasetError
from .prepare import normalize

__all__ = ["rows_as_sequences"]


def rows_as_sequences(images, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD, *, dtype=np.float32):
    """Images ``(N, H, W)`` (or ``(N, 1, H, W)``, or flat ``(N, 784)``) ->
    normalised sequences ``(N, H, W)``: ``H`` steps of ``W`` pixels.

    uint8 pixels are scaled to [0, 1] and standardised as ``normalize`` does;
    the result is a reshaped view of that one normalised array (no extra copy).
    Flat rows of 784 are read as 28 x 28.
    """
    x = np.asarray(images)
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(len(x), 28, 28)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise DatasetError(f"rows_as_sequences: expected images (N, H, W), (N, 1, H, W) or (N, 784), got {x.shape}")
    out = normalize(x, mean, std, dtype=dtype)  # (N, 1, H, W)
    return out.reshape(x.shape)
