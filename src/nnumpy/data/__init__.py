"""Data: IDX files, (Fashion-)MNIST and the bundled sample, preparing
arrays, batching, augmentation.

Files: ``idx.py`` (``read_idx``, ``DatasetError``), ``datasets.py`` (where
the datasets are found, the download, ``load_fashion_mnist``,
``load_sample``, ``load_dataset``), ``prepare.py`` (``normalize``,
``one_hot``, ``train_val_split``), ``loader.py`` (``DataLoader``;
``num_examples`` and ``take`` for one array or a tuple of them),
``augment.py`` (``Augment``), ``sequences.py`` (``rows_as_sequences``:
images as 28 steps of 28 pixels), ``text.py`` (character corpora: fortunes
or a text file, ``Vocabulary``, windows, truncated-BPTT ``BPTTBatches``).

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
from .loader import DataLoader, is_several_inputs, num_examples, take
from .prepare import normalize, one_hot, to_labels, train_val_split
from .sequences import rows_as_sequences
from .text import BPTTBatches, Vocabulary, load_text, read_fortunes, unigram_entropy

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
    "num_examples",
    "take",
    "is_several_inputs",
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
    "rows_as_sequences",
    "Vocabulary",
    "BPTTBatches",
    "load_text",
    "read_fortunes",
    "unigram_entropy",
]
