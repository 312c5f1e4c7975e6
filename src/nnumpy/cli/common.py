"""What the ``nnumpy`` commands share: exit codes, ``CommandError``, loading
data and model files, printing on the main process only."""

import argparse
import math

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
    "int_at_least",
    "float_in",
]

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


# ---------------------------------------------------------------- option types
def int_at_least(low, wanted=None):
    """An argparse type: an integer >= ``low``; the error says it expected
    ``wanted`` (default ``"an integer >= low"``)."""
    wanted = wanted or f"an integer >= {low}"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def float_in(low, high=math.inf, *, low_open=False, high_open=True):
    """An argparse type: a finite number in the range (NaN and inf are refused at parse time)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    if math.isfinite(high):
        wanted = f"a finite number in {left}{low:g}, {high:g}{right}"
    else:
        wanted = f"a finite number {'>' if low_open else '>='} {low:g}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        inside = math.isfinite(value) and (value > low if low_open else value >= low)
        inside = inside and (value < high if high_open else value <= high)
        if not inside:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


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
