"""The ``nnumpy`` command: ``train``, ``evaluate``, ``info``, ``export``.

``nnumpy`` with no arguments trains CNN-F on Fashion-MNIST with the default
recipe (the full set when it is found, else the bundled sample). Errors are
one line on stderr and a non-zero exit status (set ``NNUMPY_DEBUG=1`` for
the traceback).
"""

import argparse
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from .. import data, distributed
from .._version import __version__
from ..export import onnx as nnumpy_onnx
from ..io import is_several_shapes
from ..models import MODELS, SCHEDULES
from ..parallel import get_num_threads, num_threads
from ..training import classification_report, confusion_matrix, evaluate
from .charlm import add_generate_parser, add_train_options, evaluate_charlm, is_char_model
from .common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    class_names,
    float_in,
    int_at_least,
    load_any,
    load_data,
    prepare,
)
from .train import cmd_train

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the whole usage; one line says it better
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


_positive_int = int_at_least(1, "a positive integer")
_non_negative_int = int_at_least(0)
_non_negative_float = float_in(0.0)
_positive_float = float_in(0.0, low_open=True)
_fraction = float_in(0.0, 1.0)  # [0, 1)


def build_parser():
    parser = _Parser(prog="nnumpy", description="Train and evaluate nnumpy models on (Fashion-)MNIST.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train MLP-F, CNN-F, LSTM-F, TRF-F or a character model (default: CNN-F on Fashion-MNIST)"
    )
    train.add_argument("--model", choices=sorted(MODELS), default="cnn", help="architecture (default cnn)")
    train.add_argument(
        "--dataset",
        default=None,
        help="fashion-mnist | mnist | sample | DIR of IDX files (default: fashion-mnist, else the bundled sample)",
    )
    train.add_argument("--epochs", type=_positive_int, help="total epochs (default: the recipe's: mlp 10, cnn 5)")
    train.add_argument(
        "--batch-size", type=_positive_int, help="mini-batch size (default: the recipe's: mlp 128, cnn 64)"
    )
    train.add_argument(
        "--optimizer",
        help="adam | adamw | sgd | momentum | rmsprop | adagrad | nadam | radam | adamax | adadelta | lion "
        "(default adamw)",
    )
    train.add_argument("--lr", type=_positive_float, help="(peak) learning rate, > 0")
    train.add_argument("--weight-decay", type=_non_negative_float, help="weight decay, >= 0")
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default onecycle)")
    train.add_argument("--label-smoothing", type=_fraction, help="label smoothing in [0, 1) (default 0.1)")
    train.add_argument(
        "--augment",
        choices=["none", "flip", "crop", "flip+crop"],
        help="batch augmentation: horizontal flips and/or random shifts of 2 pixels (default: the recipe's, none)",
    )
    train.add_argument(
        "--recipe",
        choices=("default", "fixed"),
        default="default",
        help="'fixed': BENCHMARKS.md's plain Adam 1e-3 recipe, for comparisons",
    )
    train.add_argument(
        "--seed", type=_non_negative_int, default=0, help="seed of initialisation, split, order (default 0)"
    )
    train.add_argument("--threads", type=_positive_int, help="nnumpy kernel and BLAS threads (default: all CPUs)")
    train.add_argument(
        "--val-size",
        type=_non_negative_int,
        help="validation images split off the training set (default 5000, or a tenth of a smaller set; 0: none)",
    )
    train.add_argument("--out", help="output directory (default runs/<timestamp>)")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint.npz")
    train.add_argument("--quiet", action="store_true", help="no progress, no per-epoch lines")
    train.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI ranks: mpiexec -n K nnumpy train --distributed (--batch-size stays global)",
    )
    train.add_argument("--per-rank-bn", action="store_true", help="with --distributed: BatchNorm statistics per rank")
    add_train_options(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy, loss and per-class table of a model or checkpoint")
    ev.add_argument("checkpoint", help="model.npz or checkpoint.npz")
    ev.add_argument("--dataset", default=None, help="fashion-mnist | mnist | sample | DIR (default: as trained)")
    ev.add_argument("--batch-size", type=_positive_int, default=1000)
    ev.add_argument("--threads", type=_positive_int, help="nnumpy kernel and BLAS threads (default: all CPUs)")
    ev.set_defaults(func=cmd_evaluate)

    add_generate_parser(sub)

    info = sub.add_parser("info", help="versions, BLAS, threads, where datasets were found")
    info.set_defaults(func=cmd_info)

    export = sub.add_parser("export", help="export a model or checkpoint to ONNX")
    export.add_argument("checkpoint", help="model.npz or checkpoint.npz")
    export.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write")
    export.add_argument("--opset", type=_positive_int, default=18, help="ONNX opset (default 18)")
    export.set_defaults(func=cmd_export)
    return parser


def _threads(n):
    """nnumpy's kernel threads and BLAS threads set to ``n`` for the command (None: defaults)."""
    return num_threads(n or None)


def one_input_shape(path, meta, command, purpose):
    """The recorded shape of the model's one input; a CommandError when none is recorded or there are several."""
    input_shape = meta.get("input_shape")
    if not input_shape:
        raise CommandError(f"{path}: no input shape recorded; cannot tell how to {purpose}")
    if is_several_shapes(input_shape):
        raise CommandError(f"{path}: the model takes {len(input_shape)} inputs; 'nnumpy {command}' handles models of "
                           "one input (use nnumpy.evaluate / nnumpy.onnx.export with a tuple of arrays)")  # fmt: skip
    return input_shape


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args):
    model, meta = load_any(args.checkpoint)
    if is_char_model(meta):
        return evaluate_charlm(args, model, meta)
    input_shape = one_input_shape(args.checkpoint, meta, "evaluate", "feed the images")
    name = args.dataset
    if name is None:  # the data the model was trained on
        extra, user = meta.get("extra"), meta.get("metadata")
        name = ((extra or {}).get("cli") or {}).get("data") if isinstance(extra, dict) else None
        name = name or ((user or {}).get("data") if isinstance(user, dict) else None)
    _, (x_test, y_test) = (loaded := load_data(name))[0]
    source = loaded[1]
    print(f"data: {source}" + ("  [the bundled sample, not the full dataset]" if source.is_sample else ""))
    x = prepare(x_test, input_shape)
    result = evaluate(model, (x, y_test), batch_size=args.batch_size, return_predictions=True)
    cm = confusion_matrix(y_test, result["predictions"], num_classes=result["predictions"].shape[1])
    print(classification_report(cm=cm, class_names=class_names(source, cm.shape[0])))
    print(f"test accuracy {result['accuracy']:.2%}, test loss {result['loss']:.4f} ({len(y_test)} images)")
    return 0


# ---------------------------------------------------------------- info
def _version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def cmd_info(args):
    print(f"nnumpy {__version__}")
    print(f"python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for package in ("numpy", "tqdm", "threadpoolctl", "matplotlib", "mpi4py", "onnx", "onnxruntime", "torch"):
        print(f"{package:<14}{_version(package)}")
    print(f"cpu cores     {os.cpu_count()}")
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "unset")
    print(f"{'threads':<14}nnumpy kernels={get_num_threads()} OPENBLAS_THREAD_TIMEOUT={timeout}")
    try:
        from threadpoolctl import threadpool_info

        pools = threadpool_info()
    except ImportError:
        pools = []
    if not pools:
        print("BLAS          unknown (threadpoolctl found no thread pools)")
    for pool in pools:
        print(
            f"{pool.get('user_api', '?'):<14}{pool.get('internal_api', '?')} {pool.get('version') or ''}"
            f" threads={pool.get('num_threads')} {pool.get('architecture') or ''}".rstrip()
        )
    for name in ("fashion-mnist", "mnist"):
        places = data.dataset_locations(name)
        found = [p for p in places if p["found"]]
        print(f"{name:<14}" + (f"found in {found[0]['path']} ({found[0]['where']})" if found else "not found"))
        for p in places:
            print(f"{'':<16}{'*' if p['found'] else '-'} {p['where']}: {p['path']}")
    print(f"{'sample':<14}bundled: {data.SAMPLE_PATH}")
    return 0


# ---------------------------------------------------------------- export
def cmd_export(args):
    # nnumpy.onnx imports the onnx package only when exporting; without it, export()
    # raises an ImportError naming the 'onnx' extra, which main() prints as one line
    model, meta = load_any(args.checkpoint)
    input_shape = one_input_shape(args.checkpoint, meta, "export", "build an example input")
    example, axes = nnumpy_onnx.example_input(model, input_shape)  # int64 ids for a character model
    if is_char_model(meta):  # any batch of any length (up to a Transformer's max_len)
        axes = {"input": {0: "N", 1: "T"}}
    nnumpy_onnx.export(model, example, args.onnx, opset=args.opset, dynamic_axes=axes)
    print(f"wrote {args.onnx} (opset {args.opset}, input (N, {', '.join(map(str, input_shape))}))")
    return 0


# ---------------------------------------------------------------- main
def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "train")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"nnumpy {__version__}")
        return 0
    threads = getattr(args, "threads", None)
    if getattr(args, "distributed", False):
        distributed.init()  # an uncaught error on any rank aborts the whole job
        threads = threads or distributed.threads_per_rank()
    try:
        with _threads(threads):
            return args.func(args)
    except KeyboardInterrupt:
        print("nnumpy: interrupted", file=sys.stderr)
        _end_other_ranks(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except Exception as error:  # one readable line, not a traceback
        if os.environ.get("NNUMPY_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, (KeyError, AttributeError, TypeError, IndexError)):
            message = f"{type(error).__name__}: {message}"
        print(f"nnumpy {args.command}: error: {message}", file=sys.stderr)
        _end_other_ranks(EXIT_ERROR)
        return EXIT_ERROR


def _end_other_ranks(code):
    """Under MPI, abort the job so the other ranks do not wait forever for this one."""
    if distributed.is_distributed():
        distributed.abort(code)


if __name__ == "__main__":
    sys.exit(main())
