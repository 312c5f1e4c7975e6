"""Data files shipped inside nnumpy.

``fashion_mnist_sample.npz`` (arrays ``x_train``, ``y_train``, ``x_test``,
``y_test``; read by ``nnumpy.data.load_sample``) holds the first 500 training
and the first 100 test images of each Fashion-MNIST class, in file order. It
was made from the official files by ``make_sample``:

    python -c "from nnumpy.datasets import make_sample; make_sample('/usr/share/datasets/fashion-mnist')"
"""

from pathlib import Path

import numpy as np

SAMPLE_FILE = Path(__file__).parent / "fashion_mnist_sample.npz"


def _first_per_class(labels, per_class):
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    return np.sort(keep)


def make_sample(source_dir, out=SAMPLE_FILE, train_per_class=500, test_per_class=100):
    """Write the bundled sample from the full Fashion-MNIST IDX files in ``source_dir``."""
    from ..data import _read_split

    (x, y), (xt, yt) = _read_split(Path(source_dir), "fashion-mnist")
    train, test = _first_per_class(y, train_per_class), _first_per_class(yt, test_per_class)
    np.savez_compressed(
        out, x_train=x[train], y_train=y[train].astype(np.uint8), x_test=xt[test], y_test=yt[test].astype(np.uint8)
    )
