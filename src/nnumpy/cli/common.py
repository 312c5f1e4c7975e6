"""What the ``nnumpy`` commands share: exit codes, ``CommandError``, loading
data and model files, printing on the main process only."""

import numpy as np

from .. import data
from ..distributed import is_main
from ..io import load_model, read_metadata

__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "CommandError",
    "is_main_process",
    "printer",
    "load_data",
    "prepare",
    "class_names",
    "load_any",
]

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class CommandError(Exception):
    """A problem the user can fix; printed as one line."""


def is_main_process():
    """True where this process prints and writes files (rank 0 under MPI)."""
    return is_main()


def printer(enabled):
    """``print`` (flushed) when ``enabled``, else a function that prints nothing."""
    return (lambda *a: print(*a, flush=True)) if enabled else (lambda *a: None)


def load_data(name, quiet=False):
    """``((train), (test)), source``; no name: Fashion-MNIST if found, else the sample."""
    if name is not None:
        return data.load_dataset(name)
    try:
        return data.load_dataset("fashion-mnist", download=False)
    except data.DatasetError:
        if not quiet:
            print(
                "Fashion-MNIST not found (nnumpy info shows where it looks; --dataset fashion-mnist downloads it): "
                "using the bundled sample",
                flush=True,
            )
        return data.load_dataset("sample")


def prepare(images, input_shape):
    """Normalised images reshaped to the model's ``input_shape`` (CommandError when they do not fit)."""
    x = data.normalize(images)
    if int(np.prod(x.shape[1:])) != int(np.prod(input_shape)):
        raise CommandError(f"the dataset's images {x.shape[1:]} do not fit the model's input {tuple(input_shape)}")
    return x.reshape((len(x), *input_shape))


def class_names(source, n):
    """The class names of ``source`` (Fashion-MNIST's, else "0".."n-1")."""
    if getattr(source, "name", "") in ("fashion-mnist", "sample") and n == len(data.FASHION_MNIST_CLASSES):
        return list(data.FASHION_MNIST_CLASSES)
    return [str(i) for i in range(n)]


def load_any(path):
    """A model file or checkpoint: ``(model, metadata)``."""
    meta = read_metadata(path)
    return load_model(path), meta
