"""``nnumpy train``: MLP-F, CNN-F, LSTM-F or TRF-F on (Fashion-)MNIST with a recipe
(the character model: ``charlm.py``), data-parallel
under ``mpiexec`` with ``--distributed``; writes the model, a checkpoint, the
history and plots."""

import json
import sys
import time
from pathlib import Path

from .. import backend
from .. import distributed as dist
from ..data import FASHION_MNIST_MEAN, FASHION_MNIST_STD, Augment, train_val_split
from ..io import atomic_write, load_checkpoint, read_metadata, save_model
from ..models import FIXED, MODELS, RECIPES, Recipe, make_schedule
from ..plots import plot_confusion_matrix, plot_history
from ..summary import summary
from ..training import ModelCheckpoint, classification_report, confusion_matrix, evaluate, fit, get_optimizer
from .charlm import cmd_train_charlm, is_char_model
from .common import EXIT_INTERRUPTED, CommandError, class_names, is_main_process, load_data, prepare, printer

__all__ = ["cmd_train"]


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
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1)


# ---------------------------------------------------------------- train
def _train_config(args, ckpt):
    """The run's settings: from the checkpoint when resuming, else from the options and the recipe."""
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
    if args.model == "charlm" or (args.resume and is_char_model(read_metadata(args.resume))):
        return cmd_train_charlm(args)
    if dist.is_distributed() and not args.distributed:
        raise CommandError(f"running on {dist.size()} MPI ranks: add --distributed to train data-parallel")
    main_process = is_main_process()
    tell = printer(main_process)  # what even --quiet prints
    say = printer(main_process and not args.quiet)
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

    (x_train, y_train), (x_test, y_test) = (data := load_data(config["dataset"], args.quiet))[0]
    source = data[1]
    tell(f"data: {source}" + ("  [the bundled sample, not the full dataset]" if source.is_sample else ""))
    config["data"] = source.path if source.name == "idx" else source.name  # what evaluate uses by default
    x_train, x_test = prepare(x_train, input_shape), prepare(x_test, input_shape)
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
    train = dist.fit if args.distributed else fit
    options = {"sync_batchnorm": not args.per_rank_bn} if args.distributed else {}
    history = train(
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
        **options,
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
    names = class_names(source, cm.shape[0])
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
