"""The ``nnumpy`` command: ``train``, ``evaluate``, ``info``, ``export``.

``nnumpy`` with no arguments trains CNN-F on Fashion-MNIST with the default
recipe (the full set when it is found, else the bundled sample). Errors are
one line on stderr and a non-zero exit status (set ``NNUMPY_DEBUG=1`` for
the traceback).
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class CommandError(Exception):
    """A problem the user can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the whole usage; one line says it better
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def build_parser():
    from .models import MODELS, SCHEDULES

    parser = _Parser(prog="nnumpy", description="Train and evaluate nnumpy models on (Fashion-)MNIST.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    train = sub.add_parser("train", help="train MLP-F or CNN-F (default: CNN-F on Fashion-MNIST)")
    train.add_argument("--model", choices=sorted(MODELS), default="cnn", help="architecture (default cnn)")
    train.add_argument(
        "--dataset",
        default=None,
        help="fashion-mnist | mnist | sample | DIR of IDX files (default: fashion-mnist, else the bundled sample)",
    )
    train.add_argument("--epochs", type=_positive_int, help="total epochs (default: the recipe's: mlp 10, cnn 5)")
    train.add_argument("--batch-size", type=_positive_int, help="mini-batch size (default 128)")
    train.add_argument("--optimizer", help="adam | adamw | sgd | momentum | rmsprop | adagrad | nadam (default adamw)")
    train.add_argument("--lr", type=_non_negative_float, help="(peak) learning rate")
    train.add_argument("--weight-decay", type=_non_negative_float, help="weight decay")
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default onecycle)")
    train.add_argument("--label-smoothing", type=_non_negative_float, help="label smoothing (default 0.1)")
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
    train.add_argument("--seed", type=int, default=0, help="seed of initialisation, split, order (default 0)")
    train.add_argument("--threads", type=_positive_int, help="nnumpy kernel and BLAS threads (default: all CPUs)")
    train.add_argument(
        "--val-size",
        type=int,
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
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy, loss and per-class table of a model or checkpoint")
    ev.add_argument("checkpoint", help="model.npz or checkpoint.npz")
    ev.add_argument("--dataset", default=None, help="fashion-mnist | mnist | sample | DIR (default: as trained)")
    ev.add_argument("--batch-size", type=_positive_int, default=1000)
    ev.add_argument("--threads", type=_positive_int, help="nnumpy kernel and BLAS threads (default: all CPUs)")
    ev.set_defaults(func=cmd_evaluate)

    info = sub.add_parser("info", help="versions, BLAS, threads, where datasets were found")
    info.set_defaults(func=cmd_info)

    export = sub.add_parser("export", help="export a model or checkpoint to ONNX")
    export.add_argument("checkpoint", help="model.npz or checkpoint.npz")
    export.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write")
    export.add_argument("--opset", type=_positive_int, default=18, help="ONNX opset (default 18)")
    export.set_defaults(func=cmd_export)
    return parser


# ---------------------------------------------------------------- helpers
def is_main_process():
    """True where this process prints and writes files (rank 0 under MPI)."""
    from .distributed import is_main

    return is_main()


def _printer(enabled):
    return (lambda *a: print(*a, flush=True)) if enabled else (lambda *a: None)


def _threads(n):
    """nnumpy's kernel threads and BLAS threads set to ``n`` for the command (None: defaults)."""
    from .parallel import num_threads

    return num_threads(n or None)


def _load_data(name, quiet=False):
    """``((train), (test)), source``; no name: Fashion-MNIST if found, else the sample."""
    from . import data

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


def _prepare(images, input_shape):
    from .data import normalize

    x = normalize(images)
    if int(np.prod(x.shape[1:])) != int(np.prod(input_shape)):
        raise CommandError(f"the dataset's images {x.shape[1:]} do not fit the model's input {tuple(input_shape)}")
    return x.reshape((len(x), *input_shape))


def _class_names(source, n):
    from .data import FASHION_MNIST_CLASSES

    if getattr(source, "name", "") in ("fashion-mnist", "sample") and n == len(FASHION_MNIST_CLASSES):
        return list(FASHION_MNIST_CLASSES)
    return [str(i) for i in range(n)]


def _epoch_table(history):
    h = history.to_dict()
    head = f"{'epoch':>5}  {'loss':>8}  {'acc':>7}  {'val_loss':>8}  {'val_acc':>7}  {'lr':>9}  {'samples/s':>10}"
    lines = [head]
    for i in range(len(h["loss"])):

        def col(key, fmt, width, i=i):
            values = h[key]
            return format(values[i], fmt) if i < len(values) else "-".rjust(width)

        lines.append(
            f"{i + 1:>5}  {col('loss', '8.4f', 8)}  {col('accuracy', '7.2%', 7)}  {col('val_loss', '8.4f', 8)}  "
            f"{col('val_accuracy', '7.2%', 7)}  {col('lr', '9.2e', 9)}  {col('samples_per_s', '10,.0f', 10)}"
        )
    return "\n".join(lines)


def _write_json(path, obj):
    from .serialization import atomic_write

    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1)


# ---------------------------------------------------------------- train
def _train_config(args, ckpt):
    """The run's settings: from the checkpoint when resuming, else from the options and the recipe."""
    from .models import FIXED, RECIPES

    if ckpt is not None:
        config = (ckpt.extra or {}).get("cli")
        if not config:
            raise CommandError(f"{args.resume}: this checkpoint was not written by 'nnumpy train' (no run settings)")
        if args.epochs:
            config["recipe"]["epochs"] = args.epochs
        return config
    base = FIXED.replace(epochs=RECIPES[args.model].epochs) if args.recipe == "fixed" else RECIPES[args.model]
    recipe = base.replace(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        label_smoothing=args.label_smoothing,
    )
    if args.augment is not None:
        recipe = recipe.replace(flip="flip" in args.augment, crop_padding=2 if "crop" in args.augment else 0)
    return {
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "val_size": args.val_size,
        "recipe": recipe.to_dict(),
    }


def cmd_train(args):
    from . import backend
    from . import distributed as dist
    from .augment import Augment
    from .data import FASHION_MNIST_MEAN, FASHION_MNIST_STD, train_val_split
    from .metrics import classification_report, confusion_matrix
    from .models import MODELS, Recipe, make_schedule
    from .plots import plot_confusion_matrix, plot_history
    from .serialization import load_checkpoint, save_model
    from .training import ModelCheckpoint, evaluate, fit, get_optimizer, summary

    if dist.is_distributed() and not args.distributed:
        raise CommandError(f"running on {dist.size()} MPI ranks: add --distributed to train data-parallel")
    main_process = is_main_process()
    tell = _printer(main_process)  # what even --quiet prints
    say = _printer(main_process and not args.quiet)
    ckpt = load_checkpoint(args.resume) if args.resume and main_process else None
    ckpt = dist.broadcast_object(ckpt)  # read on rank 0 only: no shared file system needed
    config = _train_config(args, ckpt)
    recipe = Recipe(**config["recipe"])
    builder, input_shape = MODELS[config["model"]]
    if args.out:
        out = Path(args.out)
    elif args.resume:
        out = Path(args.resume).resolve().parent
    else:
        out = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.npz"

    (x_train, y_train), (x_test, y_test) = (data := _load_data(config["dataset"], args.quiet))[0]
    source = data[1]
    tell(f"data: {source}" + ("  [the bundled sample, not the full dataset]" if source.is_sample else ""))
    config["data"] = source.path if source.name == "idx" else source.name  # what evaluate uses by default
    x_train, x_test = _prepare(x_train, input_shape), _prepare(x_test, input_shape)
    if config["val_size"] is None:
        config["val_size"] = min(5000, len(x_train) // 10)
    if config["val_size"]:
        (x_fit, y_fit), (x_val, y_val) = train_val_split(x_train, y_train, config["val_size"], seed=config["seed"])
        val_data = (x_val, y_val)
    else:
        (x_fit, y_fit), val_data = (x_train, y_train), None

    if ckpt is not None:
        model = ckpt.model
        say(f"resuming {args.resume} at epoch {ckpt.epoch} (step {ckpt.step}) of {recipe.epochs}")
    else:
        backend.manual_seed(config["seed"])
        model = builder(rng=config["seed"])
    summary(model, input_shape, print_fn=say)
    say(
        f"recipe: {recipe.optimizer} lr {recipe.lr:g} weight decay {recipe.weight_decay:g}, "
        f"{recipe.schedule} schedule, "
        f"batch {recipe.batch_size}, {recipe.epochs} epochs, label smoothing {recipe.label_smoothing:g}, "
        f"augment flip={recipe.flip} crop={recipe.crop_padding}"
    )
    say(f"output: {out}")

    optimizer = get_optimizer(recipe.optimizer, model, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = -(-len(x_fit) // recipe.batch_size)
    schedule = make_schedule(recipe, optimizer, steps_per_epoch)
    callbacks = [c for c in (schedule, ModelCheckpoint(checkpoint_path)) if c is not None]
    augment = None
    if recipe.flip or recipe.crop_padding:
        fill = (0.0 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD  # a black pixel, normalised
        augment = Augment(recipe.flip, recipe.crop_padding, fill=fill, image_shape=(1, 28, 28))
    history = fit(
        model,
        None,
        optimizer,
        (x_fit, y_fit),
        val_data=val_data,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        callbacks=callbacks,
        seed=config["seed"],
        verbose=not args.quiet,
        augment=augment,
        label_smoothing=recipe.label_smoothing,
        resume=ckpt,
        extra={"cli": config},
        distributed={"sync_batchnorm": not args.per_rank_bn} if args.distributed else False,
    )
    if history.interrupted:
        if main_process:
            _write_json(out / "history.json", history.to_dict())
            launch = f"mpiexec -n {dist.size()} nnumpy train --distributed" if args.distributed else "nnumpy train"
            print(f"interrupted; resume with: {launch} --resume {checkpoint_path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not main_process:
        return 0  # rank 0 evaluates and writes the results

    test = evaluate(model, (x_test, y_test), return_predictions=True)
    history.test_loss, history.test_accuracy = test["loss"], test["accuracy"]
    cm = confusion_matrix(y_test, test["predictions"], num_classes=test["predictions"].shape[1])
    names = _class_names(source, cm.shape[0])
    metadata = {
        "data": config["data"],
        "dataset": str(source),
        "recipe": config["recipe"],
        "model": config["model"],
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "epochs": history.epochs,
    }
    if not main_process:
        return 0
    save_model(model, out / "model.npz", input_shape=input_shape, metadata=metadata)
    _write_json(out / "history.json", history.to_dict())
    curves = plot_history(history, out / "curves.png", title=f"{config['model']} on {source}")
    confusion = plot_confusion_matrix(cm, out / "confusion.png", class_names=names)

    say("")
    say(_epoch_table(history))
    say("")
    say(classification_report(cm=cm, class_names=names))
    tell(f"test accuracy {test['accuracy']:.2%}, test loss {test['loss']:.4f} ({len(y_test)} images of {source})")
    written = ["model.npz", "checkpoint.npz", "history.json"]
    written += [Path(p).name for p in (curves, confusion) if p]
    tell(f"wrote {', '.join(written)} to {out}")
    return 0


# ---------------------------------------------------------------- evaluate
def _load_any(path):
    """A model file or checkpoint: ``(model, metadata)``."""
    from .serialization import load_model, read_metadata

    meta = read_metadata(path)
    return load_model(path), meta


def cmd_evaluate(args):
    from .metrics import classification_report, confusion_matrix
    from .training import evaluate

    model, meta = _load_any(args.checkpoint)
    input_shape = meta.get("input_shape")
    if not input_shape:
        raise CommandError(f"{args.checkpoint}: no input shape recorded; cannot tell how to feed the images")
    name = args.dataset
    if name is None:  # the data the model was trained on
        extra, user = meta.get("extra"), meta.get("metadata")
        name = ((extra or {}).get("cli") or {}).get("data") if isinstance(extra, dict) else None
        name = name or ((user or {}).get("data") if isinstance(user, dict) else None)
    _, (x_test, y_test) = (data := _load_data(name))[0]
    source = data[1]
    print(f"data: {source}" + ("  [the bundled sample, not the full dataset]" if source.is_sample else ""))
    x = _prepare(x_test, input_shape)
    result = evaluate(model, (x, y_test), batch_size=args.batch_size, return_predictions=True)
    cm = confusion_matrix(y_test, result["predictions"], num_classes=result["predictions"].shape[1])
    print(classification_report(cm=cm, class_names=_class_names(source, cm.shape[0])))
    print(f"test accuracy {result['accuracy']:.2%}, test loss {result['loss']:.4f} ({len(y_test)} images)")
    return 0


# ---------------------------------------------------------------- info
def _version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "not installed"


def cmd_info(args):
    from . import __version__, data

    print(f"nnumpy {__version__}")
    print(f"python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for package in ("numpy", "tqdm", "threadpoolctl", "matplotlib", "mpi4py", "onnx", "onnxruntime", "torch"):
        print(f"{package:<14}{_version(package)}")
    from .parallel import get_num_threads

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
    from . import onnx as nnumpy_onnx

    model, meta = _load_any(args.checkpoint)
    input_shape = meta.get("input_shape")
    if not input_shape:
        raise CommandError(f"{args.checkpoint}: no input shape recorded, cannot build an example input")
    dtype = np.dtype(meta.get("dtype") or "float32")
    example = np.zeros((1, *input_shape), dtype=dtype)
    nnumpy_onnx.export(model, example, args.onnx, opset=args.opset)
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
        from . import __version__

        print(f"nnumpy {__version__}")
        return 0
    threads = getattr(args, "threads", None)
    if getattr(args, "distributed", False):
        from . import distributed

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
    from .distributed import abort, is_distributed

    if is_distributed():
        abort(code)


if __name__ == "__main__":
    sys.exit(main())
