"""Preparing arrays for training: ``normalize`` images, ``one_hot`` and
``to_labels`` targets, ``train_val_split``."""

import numpy as np

from .datasets import FASHION_MNIST_MEAN, FASHION_MNIST_STD

__all__ = ["one_hot", "to_labels", "normalize", "train_val_split"]


def one_hot(labels, n_classes=None, dtype=np.float32):
    """``(N,)`` integer labels -> ``(N, n_classes)`` one-hot rows
    (``n_classes`` defaults to ``max(labels) + 1``).

    Example:
        >>> one_hot([0, 2], 3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"one_hot: expected a 1-D array of integer labels, got {labels.dtype} {labels.shape}")
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"one_hot: labels must be in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def to_labels(y):
    """Class labels ``(N,)`` int64 from one-hot / probability rows ``(N, C)``
    (argmax) or from labels already."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim == 1:
        return y.astype(np.int64)
    raise ValueError(f"to_labels: expected (N,) labels or (N, C) rows, got shape {y.shape}")


def normalize(images, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD, *, flatten=False, dtype=np.float32):
    """Images -> standardised floats ``(x / 255 - mean) / std``.

    uint8 input is scaled to [0, 1] first; float input is taken as already in
    [0, 1]. ``(N, H, W)`` becomes ``(N, 1, H, W)`` (for convolutions), or
    ``(N, H*W)`` with ``flatten=True`` (for an MLP).
    """
    x = np.asarray(images)
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype(dtype) * dtype(scale / std) - dtype(mean / std)
    if flatten:
        return x.reshape(x.shape[0], -1)
    return x[:, None] if x.ndim == 3 else x


def train_val_split(x, y, val_size=5000, seed=0, *, rng=None):
    """Split off a random validation set: returns ``((x_train, y_train), (x_val, y_val))``.

    ``val_size`` is a count or a fraction in (0, 1); the split is a seeded
    permutation (``seed``, or the Generator ``rng``), so it is reproducible.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"train_val_split: {n} examples but {len(y)} labels")
    count = int(round(val_size * n)) if isinstance(val_size, float) and 0 < val_size < 1 else int(val_size)
    if not 0 <= count < n:
        raise ValueError(f"train_val_split: val_size must leave training data: got {val_size!r} for {n} examples")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(seed if rng is None else rng)
    order = generator.permutation(n)
    val, train = np.sort(order[:count]), np.sort(order[count:])
    return (x[train], y[train]), (x[val], y[val])
