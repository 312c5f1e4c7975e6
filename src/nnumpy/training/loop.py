"""The training loop: ``Trainer``, ``fit``, ``evaluate``, ``predict``, and
optimizers and losses chosen by name (``get_optimizer``, ``default_criterion``).

``fit(model, criterion, optimizer, (X, y), val_data=(Xv, yv), epochs=10)``
runs the loop the seeds write by hand: shuffled mini-batches, ``zero_grad``,
forward, loss, backward, optimizer step, with per-step and per-epoch metrics,
a tqdm progress bar (only on a terminal) and one summary line per epoch. It
returns a ``History``.

The loop lives in ``Trainer``, whose small methods are the seams that
data-parallel training (``nnumpy.distributed.DistributedTrainer``) overrides:
``make_loader`` (which samples each process
sees), ``optimizer_step`` (gradient averaging before the update),
``reduce_metrics`` (sums of loss*count, correct and count over processes) and
``is_main_process`` (who prints and writes files).

Reproducibility: the data order and the augmentation of every batch are
functions of ``(seed, epoch, batch)``; a checkpoint stores the model, the
optimizer, every generator (via ``nnumpy.io``), the counters, the
running epoch sums and the callbacks' state, so ``fit(..., resume=path)``
continues bit for bit as if never stopped (same thread count), even from a
checkpoint written by Ctrl-C in the middle of an epoch.
"""

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

from .. import optim
from ..containers import Sequential
from ..criteria import ClassNLLCriterion, ClassNLLCriterionUnstable, CrossEntropyCriterion, MultiMarginCriterion
from ..data import DataLoader, is_several_inputs, num_examples, take
from ..io import load_checkpoint, save_checkpoint
from ..layers.activation import LogSoftMax, SoftMax
from ..module import Module
from .callbacks import GradientClipping
from .history import History
from .metrics import labels_of

__all__ = [
    "fit",
    "evaluate",
    "predict",
    "Trainer",
    "TrainingDivergedError",
    "get_optimizer",
    "default_criterion",
    "is_array_pair",
]


class TrainingDivergedError(FloatingPointError):
    """``fit`` stopped because the loss (or, at an epoch's end, a parameter)
    is not finite: training diverged. The message gives the epoch and step,
    the value and what to change (a lower learning rate, gradient clipping);
    nothing was saved from the diverged state (a previous checkpoint stays as
    it was). Attributes: ``epoch`` (0-based), ``step``, ``loss`` (None when
    a parameter is the problem), ``parameter`` (its dotted name, or None)."""

    def __init__(self, message, *, epoch, step, loss=None, parameter=None):
        super().__init__(message)
        self.epoch, self.step, self.loss, self.parameter = epoch, step, loss, parameter


# criteria whose targets are classes: accuracy (arg-max) means something for them
_CLASSIFICATION_CRITERIA = (ClassNLLCriterion, ClassNLLCriterionUnstable, CrossEntropyCriterion, MultiMarginCriterion)


def _class_targets(y, out):
    """True when ``y`` holds classes for ``out`` ``(N, C)``: integer labels ``(N,)``,
    or rows of class probabilities (one-hot) of the output's shape."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y.dtype.kind in "iub" or (y.dtype.kind == "f" and bool(np.all(y == np.round(y))))
    if y.shape != out.shape or y.dtype.kind != "f" or y.size == 0:
        return False
    rows = y.sum(axis=1, dtype=np.float64)
    return bool(np.all((y >= 0) & (y <= 1)) and np.allclose(rows, 1.0, atol=1e-3))


# ---------------------------------------------------------------- optimizers by name
def _optimizer_classes():
    return {
        "sgd": optim.SGD,
        "vanilla": optim.SGD,  # seed 004
        "momentum": optim.Momentum,
        "momentumupdate": optim.Momentum,  # seed 004
        "adam": optim.Adam,
        "adamw": optim.AdamW,
        "adagrad": optim.Adagrad,
        "rmsprop": optim.RMSprop,
        "nadam": optim.NAdam,
        "radam": optim.RAdam,
        "adamax": optim.Adamax,
        "adadelta": optim.Adadelta,
        "lion": optim.Lion,
    }


def get_optimizer(name, model, **kwargs):
    """Build an optimizer for ``model`` from a name (case-insensitive):
    ``sgd`` (seed 004's ``Vanilla``), ``momentum`` (SGD with momentum 0.9;
    seed 004's ``MomentumUpdate``), ``adam``, ``adamw``, ``adagrad``,
    ``rmsprop``, ``nadam``, ``radam``, ``adamax``, ``adadelta``, ``lion``.
    Keyword arguments (``lr=``, ``weight_decay=``, ...)
    go to the constructor; None values keep the class defaults. An optimizer
    instance is returned as is, an optimizer class is instantiated.

    Example:
        >>> import nnumpy
        >>> get_optimizer("Adam", nnumpy.Linear(2, 1), lr=0.01)
        Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if isinstance(name, optim.Optimizer):
        for key, value in kwargs.items():
            setattr(name, key, value)
        return name
    if isinstance(name, type) and issubclass(name, optim.Optimizer):
        return name(model, **kwargs)
    classes = _optimizer_classes()
    key = str(name).lower().replace("_", "").replace("-", "")
    if key not in classes:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(sorted(classes))}")
    return classes[key](model, **kwargs)


def default_criterion(model):
    """The loss that matches the model's last layer: ``ClassNLLCriterion``
    after ``LogSoftMax``, ``ClassNLLCriterionUnstable`` after ``SoftMax``,
    otherwise ``CrossEntropyCriterion`` (logits)."""
    leaves = model.leaves()
    last = leaves[-1] if leaves else model
    if isinstance(last, LogSoftMax):
        return ClassNLLCriterion()
    if isinstance(last, SoftMax):
        return ClassNLLCriterionUnstable()
    return CrossEntropyCriterion()


# ---------------------------------------------------------------- batching
def is_array_pair(data):
    """True for ``(X, y)``: a pair whose first item is an array, or a tuple or
    list of arrays (a model with several inputs) beside an array ``y`` (or
    None): not a loader, nor a list of two ``(xb, yb)`` batches."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        return False
    x, y = data
    return hasattr(x, "shape") or (is_several_inputs(x) and (y is None or hasattr(y, "shape")))


def batch_length(xb):
    """The number of examples in a batch: an array, or a tuple of arrays (several inputs)."""
    return len(xb[0]) if isinstance(xb, (tuple, list)) else len(xb)


def example_shape(xb):
    """One example's shape (a tuple of shapes for several inputs), as ``summary`` takes it."""
    return tuple(tuple(a.shape[1:]) for a in xb) if isinstance(xb, (tuple, list)) else tuple(xb.shape[1:])


# ---------------------------------------------------------------- the loop
class Trainer:
    """The training loop behind ``fit`` and ``evaluate``.

    Overridable seams (``nnumpy.distributed.DistributedTrainer`` overrides these):
        ``make_loader(data, batch_size, shuffle, drop_last)``, ``set_epoch(loader, epoch)``,
        ``loss_gradient(out, target)``, ``after_backward(loss, batch_size)``,
        ``optimizer_step()``, ``reduce_metrics(sums)``, ``should_interrupt()``,
        ``is_main_process``, ``save_checkpoint(path)``, ``restore(checkpoint)``.

    Attributes during ``fit``: ``model``, ``criterion``, ``optimizer``,
    ``history``, ``epoch`` (completed epochs), ``step`` (optimizer steps),
    ``batch_in_epoch``, ``stop_training``, ``interrupted``, ``input_shape``,
    ``extra`` (user data stored in checkpoints, e.g. the CLI's settings),
    ``epoch_sums`` (the running ``[loss*count, correct, count]`` of the
    current epoch, None between epochs), ``stop_requested`` (Ctrl-C was pressed).
    """

    def __init__(
        self,
        model,
        criterion=None,
        optimizer=None,
        *,
        callbacks=(),
        seed=0,
        verbose=True,
        clip_grad_norm=None,
        augment=None,
        label_smoothing=0.0,
        extra=None,
    ):
        if not isinstance(model, Module):
            raise TypeError(f"fit: expected a Module as model, got {type(model).__name__}")
        self.model = model
        self._criterion_checked = criterion is not None  # a default criterion is checked against the first batch
        self.criterion = criterion if criterion is not None else default_criterion(model)
        self.optimizer = optimizer
        callbacks = list(callbacks)
        if clip_grad_norm is not None:
            callbacks.insert(0, GradientClipping(clip_grad_norm))
        self.callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
        self.seed = 0 if seed is None else int(seed)
        self.verbose = bool(verbose)
        self.augment = augment
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"fit: label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        self.extra = dict(extra or {})
        self.history = History()
        self.epoch = 0
        self.step = 0
        self.batch_in_epoch = 0
        self.stop_training = False
        self.interrupted = False
        self.input_shape = None
        self.epoch_sums = None  # running [loss*count, correct, count] of the current epoch (a list)
        self._elapsed = 0.0  # seconds spent training in the current epoch
        self._in_step = False
        self.stop_requested = False  # Ctrl-C asked to stop after the current batch
        self._bar = None
        self._lr_at_start = None  # the learning rate when the current epoch began

    # ------------------------------------------------------------ seams
    @property
    def is_main_process(self):
        """True where progress is printed and files are written (rank 0)."""
        return True

    def make_loader(self, data, batch_size, shuffle=False, drop_last=False):
        """``(X, y)`` -> a ``DataLoader`` seeded with ``seed``; a loader is used as is."""
        if not is_array_pair(data):
            if not hasattr(data, "__iter__"):
                raise TypeError(f"fit: data must be an (X, y) pair of arrays or a loader, got {type(data).__name__}")
            return data
        x, y = data
        n = num_examples(x, "fit")
        if n != len(y):
            raise ValueError(f"fit: X has {n} samples but y has {len(y)}")
        return DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, rng=self.seed)

    def set_epoch(self, loader, epoch):
        """Tell the loader which epoch starts (its shuffle depends on it)."""
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)

    def optimizer_step(self):
        """Apply the (accumulated) gradients."""
        self.optimizer.step()

    def reduce_metrics(self, sums):
        """Combine ``[loss*count, correct, count]`` sums over processes (float64 array)."""
        return sums

    # ------------------------------------------------------------ output
    def log(self, message):
        """Print ``message`` on the main process when verbose (above the progress bar)."""
        if self.verbose and self.is_main_process:
            if self._bar is not None:
                self._bar.write(message)
            else:
                print(message, flush=True)

    def _progress(self, total, epoch, epochs, initial):
        if not (self.verbose and self.is_main_process and sys.stdout.isatty()):
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=total, initial=initial, desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="batch", file=sys.stdout
        )

    def _callback(self, name, *args):
        for cb in self.callbacks:
            method = getattr(cb, name, None)
            if method is not None:
                method(self, *args)

    # ------------------------------------------------------------ steps
    def make_target(self, yb, out):
        """The criterion's target: the labels, or smoothed one-hot rows with ``label_smoothing``."""
        if not self.label_smoothing or out.ndim != 2:
            return yb
        labels = labels_of(yb)
        n, c = out.shape
        target = np.full((n, c), self.label_smoothing / c, dtype=out.dtype)
        target[np.arange(n), labels] += out.dtype.type(1.0 - self.label_smoothing)
        return target

    def train_step(self, xb, yb):
        """zero_grad, forward, loss, backward, (callbacks), optimizer step; returns ``(loss, output)``."""
        self.optimizer.zero_grad()
        out = self.model.forward(xb)
        self.check_default_criterion(out, yb)
        target = self.make_target(yb, out)
        loss = self.criterion.forward(out, target)
        self.model.backward(xb, self.loss_gradient(out, target))
        loss = self.after_backward(float(loss), batch_length(xb))
        self.check_loss(loss, self.batch_in_epoch)
        self._callback("on_before_step")
        self._in_step = True
        self.optimizer_step()
        self._in_step = False
        return loss, out

    def loss_gradient(self, out, target):
        """The gradient fed to ``model.backward`` (a hook: distributed training rescales it)."""
        return self.criterion.backward(out, target)

    def after_backward(self, loss, batch_size):
        """Called between backward and the callbacks; returns the loss to report
        (a hook: distributed training averages gradients and the loss here)."""
        return loss

    def _correct(self, out, yb):
        """Correct arg-max predictions, or NaN when accuracy means nothing (no
        class scores, or regression targets: a criterion that is not a
        classification loss and targets that are neither labels nor one-hot rows, or
        a tuple out: a pair for a ranking loss)."""
        if not hasattr(out, "ndim") or out.ndim != 2 or out.shape[1] < 2:
            return math.nan
        if not isinstance(self.criterion, _CLASSIFICATION_CRITERIA) and not _class_targets(yb, out):
            return math.nan
        return float(np.count_nonzero(labels_of(out) == labels_of(yb)))

    def check_default_criterion(self, out, target):
        """Without a criterion the model's default (``default_criterion``, a
        classification loss) is used; refuse it where it would be silently
        wrong: one output column (cross-entropy over one class is always 0) or
        targets that are not classes (regression)."""
        if self._criterion_checked:
            return
        self._criterion_checked = True
        if not isinstance(self.criterion, _CLASSIFICATION_CRITERIA) or not hasattr(out, "ndim"):
            return
        target = np.asarray(target)
        problem = None
        if out.ndim == 2 and out.shape[1] == 1:
            problem = "the model has one output column (cross-entropy over a single class is always 0)"
        elif out.ndim == 2 and not _class_targets(target, out):
            problem = (
                f"the targets ({target.dtype} {tuple(target.shape)}) are neither class labels nor "
                f"one-hot rows of the output's shape {tuple(out.shape)}"
            )
        if problem:
            raise ValueError(
                f"no criterion was given, and the default for this model, {type(self.criterion).__name__} "
                f"(classification), does not fit: {problem}. Pass the criterion: MSECriterion() for regression, "
                f"BCEWithLogitsCriterion() for binary targets, or a classification loss with integer labels"
            )

    def check_loss(self, loss, batch):
        """Stop at the first non-finite loss (the value every rank agreed on), before the update."""
        if math.isfinite(loss):
            return
        lr = getattr(self.optimizer, "lr", None)
        lr_text = f" (lr={lr:g})" if isinstance(lr, (int, float)) else ""
        raise TrainingDivergedError(
            f"fit: the loss is {loss} at epoch {self.epoch + 1}, step {self.step + 1} (batch {batch + 1} of the "
            f"epoch): training diverged. Lower the learning rate{lr_text}, or clip the gradients "
            f"(clip_grad_norm=1.0); check the inputs for NaN/inf. This batch's update was not applied and "
            f"nothing was saved from the diverged state",
            epoch=self.epoch,
            step=self.step + 1,
            loss=loss,
        )

    def check_parameters(self):
        """Raise ``TrainingDivergedError`` if a parameter holds NaN or inf (before anything is saved)."""
        for name, value in self.model.named_parameters():
            if not np.all(np.isfinite(value)):
                lr = getattr(self.optimizer, "lr", None)
                lr_text = f" (lr={lr:g})" if isinstance(lr, (int, float)) else ""
                raise TrainingDivergedError(
                    f"fit: parameter {name} holds NaN or inf after epoch {self.epoch + 1}, step {self.step}: "
                    f"training diverged. Lower the learning rate{lr_text}, or clip the gradients "
                    f"(clip_grad_norm=1.0); nothing was saved from the diverged state",
                    epoch=self.epoch,
                    step=self.step,
                    parameter=name,
                )

    def batch_rng(self, epoch, batch):
        """The generator of one batch's augmentation: a function of (seed, epoch, batch)."""
        return np.random.default_rng([self.seed, epoch, batch])

    def _train_epoch(self, loader, epoch, epochs, skip):
        self.model.train()
        self.set_epoch(loader, epoch)
        sums = np.zeros(3) if self.epoch_sums is None else np.asarray(self.epoch_sums, dtype=np.float64)
        total_batches = len(loader) if hasattr(loader, "__len__") else None  # a generator has no length
        self._bar = self._progress(total_batches, epoch, epochs, skip)
        start = time.perf_counter() - self._elapsed
        try:
            for b, (xb, yb) in enumerate(loader):
                if b < skip:
                    continue
                if self.augment is not None:
                    xb = self.augment(xb, self.batch_rng(epoch, b))
                if self.input_shape is None:
                    self.input_shape = example_shape(xb)
                loss, out = self.train_step(xb, yb)
                n = batch_length(xb)
                sums += (loss * n, self._correct(out, yb), n)
                self.step += 1
                self.batch_in_epoch = b + 1
                self.epoch_sums = sums.tolist()
                self._elapsed = time.perf_counter() - start
                self.history.step_loss.append(loss)
                self._callback("on_batch_end", self.step, {"loss": loss, "batch": b, "size": n})
                if self._bar is not None:
                    self._bar.update(1)
                    if b % 10 == 0 or b + 1 == total_batches:
                        self._bar.set_postfix_str(
                            f"loss {sums[0] / sums[2]:.4f}  acc {sums[1] / sums[2]:.2%}  "
                            f"{sums[2] / max(self._elapsed, 1e-9):,.0f} samples/s"
                        )
                if self.should_interrupt():
                    raise KeyboardInterrupt
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        total = self.reduce_metrics(
            np.asarray(self.epoch_sums if self.epoch_sums is not None else sums, dtype=np.float64)
        )
        if total[2] == 0:
            used_up = " (a generator is used up after one pass)" if epoch > 0 and not hasattr(loader, "__len__") else ""
            raise ValueError(
                f"fit: the training data gave no samples in epoch {epoch + 1}{used_up}; pass (X, y) arrays with "
                f"at least one sample, a DataLoader, or an iterable of (xb, yb) batches that can be iterated "
                f"once per epoch (a list, or an object whose __iter__ starts a new pass)"
            )
        count = total[2]
        return {
            "loss": float(total[0] / count),
            "accuracy": None if math.isnan(total[1]) else float(total[1] / count),
            "samples_per_s": float(total[2] / max(self._elapsed, 1e-9)),
        }

    def evaluate(self, data, batch_size=1000, return_predictions=False):
        """Loss and accuracy of the model on ``data`` in evaluate mode (the
        model's modes are restored). Returns ``{"loss", "accuracy"}`` (plus
        ``"predictions"``, the outputs, when asked)."""
        loader = self.make_loader(data, batch_size)
        sums = np.zeros(3)
        outputs = []
        with self.model.preserved_modes():
            self.model.evaluate()
            for xb, yb in loader:
                out = self.model.forward(xb)
                self.check_default_criterion(out, yb)
                n = batch_length(xb)
                sums += (float(self.criterion.forward(out, yb)) * n, self._correct(out, yb), n)
                if return_predictions:
                    outputs.append(_copy_outputs(out))
        total = self.reduce_metrics(sums)
        if total[2] == 0:
            raise ValueError("evaluate: the data gave no samples (an empty set, or a generator already used up)")
        count = total[2]
        accuracy = None if math.isnan(total[1]) else float(total[1] / count)
        result = {"loss": float(total[0] / count), "accuracy": accuracy}
        if return_predictions:
            result["predictions"] = _join_batches(outputs)
        return result

    # ------------------------------------------------------------ checkpoints
    def checkpoint_extra(self):
        """What a checkpoint needs beyond model/optimizer/history to resume exactly."""
        states, counts = {}, {}
        for cb in self.callbacks:
            if hasattr(cb, "state_dict"):
                name = type(cb).__name__
                counts[name] = counts.get(name, 0) + 1
                states[f"{name}:{counts[name]}"] = cb.state_dict()
        return {
            "fit": {
                "seed": self.seed,
                "batch_in_epoch": self.batch_in_epoch,
                "sums": self.epoch_sums,
                "elapsed": self._elapsed,
                "lr_at_start": self._lr_at_start,
                "callbacks": states,
            },
            **self.extra,
        }

    def save_checkpoint(self, path):
        """Write a resumable checkpoint of the current state (main process only)."""
        if not self.is_main_process:
            return
        save_checkpoint(
            path,
            self.model,
            self.optimizer,
            epoch=self.epoch,
            step=self.step,
            history=self.history.to_dict(),
            extra=self.checkpoint_extra(),
            input_shape=self.input_shape,
        )

    def restore(self, checkpoint):
        """Continue from a checkpoint (a path or what ``load_checkpoint`` returned):
        model parameters, optimizer state, counters, history, callbacks' state."""
        ckpt = load_checkpoint(checkpoint) if not hasattr(checkpoint, "model") else checkpoint
        if ckpt.model is not self.model:
            self.model.load_state_dict(ckpt.model.state_dict())
            _copy_module_rngs(ckpt.model, self.model)
        if ckpt.optimizer_state is not None:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        self.epoch, self.step = int(ckpt.epoch), int(ckpt.step)
        self.history = History.from_dict(ckpt.history)
        state = (ckpt.extra or {}).get("fit", {})
        self.seed = int(state.get("seed", self.seed))
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        self.epoch_sums = state.get("sums")
        self._elapsed = float(state.get("elapsed", 0.0))
        self._lr_at_start = state.get("lr_at_start")
        saved = state.get("callbacks", {})
        counts = {}
        for cb in self.callbacks:
            if hasattr(cb, "load_state_dict"):
                name = type(cb).__name__
                counts[name] = counts.get(name, 0) + 1
                key = f"{name}:{counts[name]}"
                if key in saved:
                    cb.load_state_dict(saved[key])
        if ckpt.input_shape:
            self.input_shape = ckpt.input_shape
        return ckpt

    # ------------------------------------------------------------ fit
    def fit(
        self,
        train_data,
        val_data=None,
        epochs=10,
        batch_size=128,
        shuffle=True,
        drop_last=False,
        resume=None,
        eval_batch_size=1000,
    ):
        if self.optimizer is None:
            raise ValueError("fit: an optimizer is required (an nnumpy optimizer or a name such as 'adam')")
        loader = self.make_loader(train_data, batch_size, shuffle=shuffle, drop_last=drop_last)
        if resume is not None:
            self.restore(resume)
        model = self.model
        old_skip = getattr(model, "skip_input_grad", None)
        self.stop_training = False
        self.interrupted = False
        with model.preserved_modes(), self._handling_sigint():
            if isinstance(model, Sequential):
                model.skip_input_grad = True
            try:
                self._callback("on_train_begin")
                self._run_epochs(loader, val_data, epochs, eval_batch_size)
            except KeyboardInterrupt:
                if self._in_step:  # a second Ctrl-C in the middle of an update: no consistent state to save
                    raise
                self.interrupted = self.history.interrupted = True
                self._callback("on_interrupt")
                self.log(f"interrupted after {self.epoch} epochs + {self.batch_in_epoch} batches (step {self.step})")
            finally:
                if isinstance(model, Sequential):
                    model.skip_input_grad = old_skip
        self._callback("on_train_end")
        return self.history

    def _run_epochs(self, loader, val_data, epochs, eval_batch_size):
        while self.epoch < epochs and not self.stop_training:
            epoch = self.epoch
            if self.batch_in_epoch == 0:
                self._callback("on_epoch_begin", epoch)
                self._lr_at_start = getattr(self.optimizer, "lr", None)
            logs = self._train_epoch(loader, epoch, epochs, self.batch_in_epoch)
            self.check_parameters()  # the last update may have diverged: before validation and checkpoints
            logs["lr"] = self._lr_at_start
            if val_data is not None:
                val = self.evaluate(val_data, eval_batch_size)
                logs["val_loss"], logs["val_accuracy"] = val["loss"], val["accuracy"]
            self.history.append(logs)
            self.epoch, self.batch_in_epoch, self.epoch_sums, self._elapsed = epoch + 1, 0, None, 0.0
            self.log(_epoch_line(epoch, epochs, logs))
            self._callback("on_epoch_end", epoch, logs)
            if self.should_interrupt():
                raise KeyboardInterrupt

    def should_interrupt(self):
        """True when training stops at this batch boundary (Ctrl-C was pressed;
        data-parallel training answers what the ranks agreed on)."""
        return self.stop_requested

    @contextmanager
    def _handling_sigint(self):
        """While training: the first Ctrl-C finishes the current batch, saves and
        stops; the second aborts at once. The handler that was installed before
        is put back on exit, whatever happens. Only in the main thread, and only
        over a handler that Python installed (one set from C could not be restored)."""
        self.stop_requested = False
        if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
            yield
            return

        def handler(signum, frame):
            if self.should_interrupt():
                raise KeyboardInterrupt
            self.stop_requested = True
            self.log("Ctrl-C: stopping after this batch (press again to abort now)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _epoch_line(epoch, epochs, logs):
    width = len(str(epochs))
    parts = [f"epoch {epoch + 1:>{width}}/{epochs}", f"loss {logs['loss']:.4f}"]
    if logs.get("accuracy") is not None:
        parts.append(f"acc {logs['accuracy']:.2%}")
    if logs.get("val_loss") is not None:
        parts.append(f"val_loss {logs['val_loss']:.4f}")
    if logs.get("val_accuracy") is not None:
        parts.append(f"val_acc {logs['val_accuracy']:.2%}")
    if logs.get("lr") is not None:
        parts.append(f"lr {logs['lr']:.2e}")
    parts.append(f"{logs['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts)


def _copy_module_rngs(src, dst):
    """Copy the state of every module generator (``Dropout.rng``) from ``src`` to ``dst``."""
    for (_, a), (_, b) in zip(src.named_modules(), dst.named_modules(), strict=False):
        rng = getattr(a, "rng", None)
        if isinstance(rng, np.random.Generator) and isinstance(getattr(b, "rng", None), np.random.Generator):
            b.rng.bit_generator.state = rng.bit_generator.state


# ---------------------------------------------------------------- the functions
def fit(
    model,
    criterion,
    optimizer,
    train_data,
    *,
    val_data=None,
    epochs=10,
    batch_size=128,
    callbacks=(),
    shuffle=True,
    seed=0,
    verbose=True,
    clip_grad_norm=None,
    augment=None,
    label_smoothing=0.0,
    drop_last=False,
    resume=None,
    lr=None,
    weight_decay=None,
    eval_batch_size=1000,
    extra=None,
    trainer=None,
    distributed=False,
):
    """Train ``model`` and return its ``History``.

    Args:
        model: a ``Module`` (a ``Sequential`` gets ``skip_input_grad = True``
            while training, restored afterwards).
        criterion: a criterion, or None for ``default_criterion(model)``.
        optimizer: an optimizer built on ``model``, or a name for
            ``get_optimizer`` (``"adam"``, ``"sgd"``, ``"momentum"``, ...)
            built with ``lr`` / ``weight_decay``.
        train_data: ``(X, y)`` arrays (batched and shuffled here, order a
            function of ``(seed, epoch)``) or any iterable of ``(xb, yb)``.
        val_data: optional ``(X, y)`` or loader, evaluated after every epoch.
        epochs: the total number of epochs (with ``resume``, including those done).
        callbacks: ``EarlyStopping``, ``ModelCheckpoint``, schedules from
            ``nnumpy.lr_scheduler``, ``GradientClipping`` or any ``Callback``.
        clip_grad_norm: clip the gradients' global norm to this value.
        augment: a batch transform ``(xb, rng) -> xb`` (``nnumpy.data.Augment``).
        label_smoothing: train against ``(1 - e) * onehot + e / C``.
        resume: a checkpoint path (or loaded checkpoint) to continue from.
        verbose: progress bar (on a terminal only) and one line per epoch.
        extra: a JSON-able dict stored in checkpoints.
        trainer: the ``Trainer`` subclass (or a factory with ``Trainer``'s
            signature) that runs the loop; default ``Trainer``.
            ``nnumpy.distributed.fit`` passes ``DistributedTrainer``.
        distributed: no longer accepted (True raises TypeError): train
            data-parallel with ``nnumpy.distributed.fit``, which takes the same
            arguments (and ``sync_batchnorm``).

    Ctrl-C stops at the end of the current batch, calls the callbacks'
    ``on_interrupt`` (``ModelCheckpoint`` saves) and returns the history with
    ``interrupted = True``.

    Example:
        >>> import numpy as np, nnumpy
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(512, 2)).astype(np.float32); y = (X[:, 0] > X[:, 1]).astype(np.int64)
        >>> net = nnumpy.Sequential(nnumpy.Linear(2, 16, rng=0), nnumpy.ReLU(), nnumpy.Linear(16, 2, rng=1))
        >>> h = fit(net, nnumpy.CrossEntropyCriterion(), "adam", (X, y), epochs=5, lr=0.05, verbose=False)
        >>> h.accuracy[-1] > 0.9
        True
    """
    if distributed:
        raise TypeError(
            "fit(distributed=...) is replaced by nnumpy.distributed.fit(model, criterion, optimizer, train_data, ...): "
            "the same arguments, plus sync_batchnorm=True/False (import nnumpy.distributed)"
        )
    if not isinstance(model, Module):
        raise TypeError(f"fit: expected a Module as model, got {type(model).__name__}")
    if isinstance(optimizer, (str, type)) or lr is not None or weight_decay is not None:
        optimizer = get_optimizer(optimizer, model, lr=lr, weight_decay=weight_decay)
    trainer = (trainer or Trainer)(
        model,
        criterion,
        optimizer,
        callbacks=callbacks,
        seed=seed,
        verbose=verbose,
        clip_grad_norm=clip_grad_norm,
        augment=augment,
        label_smoothing=label_smoothing,
        extra=extra,
    )
    return trainer.fit(
        train_data,
        val_data=val_data,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        resume=resume,
        eval_batch_size=eval_batch_size,
    )


def evaluate(model, data, criterion=None, batch_size=1000, return_predictions=False):
    """Loss and accuracy of ``model`` on ``data`` (``(X, y)`` or a loader) in
    evaluate mode: ``{"loss": ..., "accuracy": ...}`` (+ ``"predictions"``).
    ``criterion`` defaults to ``default_criterion(model)``."""
    return Trainer(model, criterion, verbose=False).evaluate(data, batch_size, return_predictions)


def predict(model, x, batch_size=1000):
    """The model's outputs for ``x`` (an array, a tuple or list of arrays for
    a model with several inputs, or a loader of ``(xb, yb)`` or ``xb``),
    computed in evaluate mode in batches; modes are restored. A model with
    several outputs (a tuple) gives a tuple of arrays."""
    with model.preserved_modes():
        model.evaluate()
        if hasattr(x, "shape") or is_array_pair((x, None)):
            n = num_examples(x, "predict")
            batches = (take(x, slice(i, i + batch_size)) for i in range(0, n, batch_size))
        else:
            batches = (b[0] if isinstance(b, (tuple, list)) else b for b in x)
        outputs = [_copy_outputs(model.forward(xb)) for xb in batches]
    return _join_batches(outputs)


def _copy_outputs(out):
    """One batch's outputs, copied (a module may reuse its output array); a
    tuple output (a Graph with several outputs) part by part."""
    return tuple(_copy_outputs(o) for o in out) if isinstance(out, (tuple, list)) else np.array(out, copy=True)


def _join_batches(outputs):
    """The batches' outputs joined along the batch axis; a tuple output stays a
    tuple, each part joined."""
    if not outputs:
        return np.zeros((0,))
    if isinstance(outputs[0], tuple):
        return tuple(_join_batches([o[i] for o in outputs]) for i in range(len(outputs[0])))
    return np.concatenate(outputs)
