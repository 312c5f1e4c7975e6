"""Data: IDX files, (Fashion-)MNIST and the bundled sample, preparing
arrays, batching, augmentation.

Files: ``idx.py`` (``read_idx``, ``DatasetError``), ``datasets.py`` (where
the datasets are found, the download, ``load_fashion_mnist``,
``load_sample``, ``load_dataset``), ``prepare.py`` (``normalize``,
``one_hot``, ``train_val_split``), ``loader.py`` (``DataLoader``),
``augment.py`` (``Augment``).

Example:
    >>> (x, y), (xt, yt) = load_sample()
    >>> xb, yb = next(iter(DataLoader(normalize(x), y, batch_size=32, shuffle=True, rng=0)))
    >>> xb.shape, yb.shape
    ((32, 1, 28, 28), (32,))
"""

from .augment import Augment, random_crop, random_flip
from .datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    SAMPLE_PATH,
    DataSource,
    dataset_locations,
    find_dataset,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    load_sample,
    make_sample,
    read_split,
)
from .idx import DatasetError, read_idx
from .loader import DataLoader
from .prepare import normalize, one_hot, to_labels, train_val_split

__all__ = [
    "DatasetError",
    "DataSource",
    "read_idx",
    "read_split",
    "load_fashion_mnist",
    "load_mnist",
    "load_sample",
    "load_dataset",
    "find_dataset",
    "dataset_locations",
    "make_sample",
    "DataLoader",
    "one_hot",
    "to_labels",
    "normalize",
    "train_val_split",
    "Augment",
    "random_flip",
    "random_crop",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "SAMPLE_PATH",
]
