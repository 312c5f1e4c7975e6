# DISTRIBUTED-HOOKS-READY
"""Training: ``fit``, ``evaluate``, ``predict``, ``History``, callbacks, progress.

``fit(model, criterion, optimizer, (X, y), val_data=(Xv, yv), epochs=10)``
runs the loop the seeds write by hand: shuffled mini-batches, ``zero_grad``,
forward, loss, backward, optimizer step, with per-step and per-epoch metrics,
a tqdm progress bar (only on a terminal) and one summary line per epoch. It
returns a ``History``.

The loop lives in ``Trainer``, whose small methods are the seams that
data-parallel training overrides: ``make_loader`` (which samples each process
sees), ``optimizer_step`` (gradient averaging before the update),
``reduce_metrics`` (sums of loss*count, correct and count over processes) and
``is_main_process`` (who prints and writes files).

Reproducibility: the data order and the augmentation of every batch are
functions of ``(seed, epoch, batch)``; a checkpoint stores the model, the
optimizer, every generator (via ``nnumpy.serialization``), the counters, the
running epoch sums and the callbacks' state, so ``fit(..., resume=path)``
continues bit for bit as if never stopped (same thread count), even from a
checkpoint written by Ctrl-C in the middle of an epoch.
"""

import math
import signal
import sys
import threading
import time

import numpy as np

from .containers import Sequential
from .criteria import ClassNLLCriterion, ClassNLLCriterionUnstable, CrossEntropyCriterion
from .layers.activation import LogSoftMax, SoftMax
from .metrics import labels_of
from .module import Module

__all__ = [
    "fit",
    "evaluate",
    "predict",
    "summary",
    "History",
    "Trainer",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "GradientClipping",
    "clip_grad_norm",
    "get_optimizer",
    "default_criterion",
]


# ---------------------------------------------------------------- optimizers by name
def _optimizer_classes():
    from . import optim

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
    }


def get_optimizer(name, model, **kwargs):
    """Build an optimizer for ``model`` from a name (case-insensitive):
    ``sgd`` (seed 004's ``Vanilla``), ``momentum`` (SGD with momentum 0.9;
    seed 004's ``MomentumUpdate``), ``adam``, ``adamw``, ``adagrad``,
    ``rmsprop``, ``nadam``. Keyword arguments (``lr=``, ``weight_decay=``, ...)
    go to the constructor; None values keep the class defaults. An optimizer
    instance is returned as is, an optimizer class is instantiated.

    Example:
        >>> import nnumpy
        >>> get_optimizer("Adam", nnumpy.Linear(2, 1), lr=0.01)
        Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)
    """
    from .optim import Optimizer

    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if isinstance(name, Optimizer):
        for key, value in kwargs.items():
            setattr(name, key, value)
        return name
    if isinstance(name, type) and issubclass(name, Optimizer):
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


# ---------------------------------------------------------------- gradient clipping
def clip_grad_norm(model, max_norm):
    """Scale every trainable gradient in place so that their global L2 norm is
    at most ``max_norm`` (``torch.nn.utils.clip_grad_norm_``: factor
    ``max_norm / (norm + 1e-6)`` when it is below 1). Returns the norm before
    clipping."""
    grads = [g for _, g in model.parameter_pairs()]
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= g.dtype.type(coef)
    return total


# ---------------------------------------------------------------- history
class History:
    """What ``fit`` measured.

    Per epoch (lists, Keras' ``history.history`` keys): ``loss``, ``accuracy``
    (training, averaged over the epoch's batches as they were trained),
    ``val_loss``, ``val_accuracy`` (empty without validation data), ``lr``
    (the learning rate at the start of the epoch), ``samples_per_s`` (training
    throughput). Per step: ``step_loss``. After a final test: ``test_loss``,
    ``test_accuracy`` (None until set). ``interrupted`` is True when Ctrl-C
    ended ``fit``.

    ``history["loss"]`` and ``history.loss`` both work; ``to_dict()`` gives
    exactly the keys of ``history.json``.
    """

    EPOCH_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s")

    def __init__(self):
        for key in self.EPOCH_KEYS:
            setattr(self, key, [])
        self.step_loss = []
        self.test_loss = None
        self.test_accuracy = None
        self.interrupted = False

    def append(self, logs):
        """Record one epoch's ``logs`` (keys of ``EPOCH_KEYS``; missing or None are skipped)."""
        for key in self.EPOCH_KEYS:
            if logs.get(key) is not None:
                getattr(self, key).append(float(logs[key]))

    @property
    def epochs(self):
        return len(self.loss)

    @property
    def history(self):
        """The per-epoch lists as a dict (Keras' ``History.history``)."""
        return {key: getattr(self, key) for key in self.EPOCH_KEYS}

    def __getitem__(self, key):
        return self.to_dict()[key]

    def __len__(self):
        return self.epochs

    def to_dict(self):
        data = {key: list(getattr(self, key)) for key in self.EPOCH_KEYS}
        data["step_loss"] = list(self.step_loss)
        data["test_loss"] = self.test_loss
        data["test_accuracy"] = self.test_accuracy
        return data

    @classmethod
    def from_dict(cls, data):
        history = cls()
        for key in (*cls.EPOCH_KEYS, "step_loss"):
            setattr(history, key, [float(v) for v in (data or {}).get(key, [])])
        history.test_loss = (data or {}).get("test_loss")
        history.test_accuracy = (data or {}).get("test_accuracy")
        return history

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={self.epochs}, steps={len(self.step_loss)}, last={last})"


# ---------------------------------------------------------------- callbacks
class Callback:
    """Base class of ``fit`` callbacks; override what you need. Every method
    receives the running ``Trainer`` (``trainer.model``, ``.optimizer``,
    ``.history``, ``.epoch``, ``.step``; set ``trainer.stop_training = True``
    to stop after this epoch). Any object with some of these methods works.

    ``order``: callbacks run sorted by it (stable); ``ModelCheckpoint`` runs
    last so it saves the state after the others' epoch-end updates.
    A callback with ``state_dict()`` / ``load_state_dict()`` is saved in
    checkpoints and restored on resume.
    """

    order = 0

    def on_train_begin(self, trainer):
        pass

    def on_epoch_begin(self, trainer, epoch):
        pass

    def on_before_step(self, trainer):
        """After backward, before the optimizer step (gradient clipping)."""

    def on_batch_end(self, trainer, step, logs):
        """``step``: optimizer steps so far; ``logs``: ``loss``, ``batch``, ``size``."""

    def on_epoch_end(self, trainer, epoch, logs):
        """``logs``: the epoch's ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``samples_per_s``."""

    def on_interrupt(self, trainer):
        """Ctrl-C stopped training at a batch boundary."""

    def on_train_end(self, trainer):
        pass


def _improved(mode, value, best, min_delta):
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _mode_for(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(logs, monitor):
    value = logs.get(monitor)
    if value is None and monitor.startswith("val_"):
        value = logs.get(monitor[4:])  # no validation data: watch the training metric
    if value is None:
        present = sorted(k for k in logs if logs[k] is not None)
        raise KeyError(f"monitored metric {monitor!r} not in the epoch logs {present}")
    return float(value)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs (Keras' ``EarlyStopping``).

    Args:
        monitor: an epoch-log key (``val_loss`` by default; without validation
            data the training metric of the same name is used).
        patience: epochs without improvement before stopping.
        min_delta: smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies).
        restore_best_weights: at the end, load the best epoch's parameters.
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="auto", restore_best_weights=False):
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = _mode_for(monitor, mode)
        self.restore_best_weights = bool(restore_best_weights)
        self.best = None
        self.wait = 0
        self.stopped_epoch = None
        self._best_state = None

    def on_epoch_end(self, trainer, epoch, logs):
        value = _monitored(logs, self.monitor)
        if _improved(self.mode, value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self._best_state = {k: v.copy() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True
            trainer.log(
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs (best {self.best:.4f})"
            )

    def on_train_end(self, trainer):
        if self.restore_best_weights and self._best_state is not None and self.stopped_epoch is not None:
            trainer.model.load_state_dict(self._best_state)

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state):
        self.best, self.wait, self.stopped_epoch = state["best"], state["wait"], state["stopped_epoch"]


class ModelCheckpoint(Callback):
    """Write a resumable checkpoint (``nnumpy.save_checkpoint``: model,
    optimizer, RNG states, epoch, step, history, callbacks) after every
    ``every`` epochs, and when Ctrl-C interrupts training.

    Args:
        path: file to write (atomically); may contain ``{epoch}``.
        monitor, mode, save_best_only: with ``save_best_only`` only epochs
            that improve ``monitor`` are written (Keras' meaning).
        every: epochs between checkpoints.
        save_on_interrupt: also write one when training is interrupted.
    """

    order = 100

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=False, every=1, save_on_interrupt=True):
        self.path = str(path)
        self.monitor = monitor
        self.mode = _mode_for(monitor, mode)
        self.save_best_only = bool(save_best_only)
        self.every = int(every)
        self.save_on_interrupt = bool(save_on_interrupt)
        self.best = None
        self.last_path = None

    def _save(self, trainer):
        path = self.path.format(epoch=trainer.epoch)
        trainer.save_checkpoint(path)
        self.last_path = path

    def on_epoch_end(self, trainer, epoch, logs):
        if (epoch + 1) % self.every:
            return
        if self.save_best_only:
            value = _monitored(logs, self.monitor)
            if not _improved(self.mode, value, self.best, 0.0):
                return
            self.best = value
        self._save(trainer)

    def on_interrupt(self, trainer):
        if self.save_on_interrupt and not self.save_best_only:
            self._save(trainer)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = state["best"]


class GradientClipping(Callback):
    """Clip the gradients' global L2 norm to ``max_norm`` before each step
    (``fit(clip_grad_norm=...)`` adds one). ``last_norm``: the norm before clipping."""

    def __init__(self, max_norm):
        if not float(max_norm) > 0:
            raise ValueError(f"GradientClipping: max_norm must be > 0, got {max_norm!r}")
        self.max_norm = float(max_norm)
        self.last_norm = None

    def on_before_step(self, trainer):
        self.last_norm = clip_grad_norm(trainer.model, self.max_norm)


# ---------------------------------------------------------------- batching
def _is_pair(data):
    return isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape")


# ---------------------------------------------------------------- the loop
class Trainer:
    """The training loop behind ``fit`` and ``evaluate``.

    Overridable seams (data-parallel training subclasses these):
        ``make_loader(data, batch_size, shuffle, drop_last)``, ``set_epoch(loader, epoch)``,
        ``optimizer_step()``, ``reduce_metrics(sums)``, ``is_main_process``.

    Attributes during ``fit``: ``model``, ``criterion``, ``optimizer``,
    ``history``, ``epoch`` (completed epochs), ``step`` (optimizer steps),
    ``batch_in_epoch``, ``stop_training``, ``interrupted``, ``input_shape``,
    ``extra`` (user data stored in checkpoints, e.g. the CLI's settings).
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
        self._sums = None  # running [loss*count, correct, count] of the current epoch
        self._elapsed = 0.0  # seconds spent training in the current epoch
        self._in_step = False
        self._sigint = False
        self._bar = None
        self._lr_at_start = None  # the learning rate when the current epoch began

    # ------------------------------------------------------------ seams
    @property
    def is_main_process(self):
        """True where progress is printed and files are written (rank 0)."""
        return True

    def make_loader(self, data, batch_size, shuffle=False, drop_last=False):
        """``(X, y)`` -> a ``DataLoader`` seeded with ``seed``; a loader is used as is."""
        if not _is_pair(data):
            if not hasattr(data, "__iter__"):
                raise TypeError(f"fit: data must be an (X, y) pair of arrays or a loader, got {type(data).__name__}")
            return data
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"fit: X has {len(x)} samples but y has {len(y)}")
        from .data import DataLoader

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
        target = self.make_target(yb, out)
        loss = self.criterion.forward(out, target)
        self.model.backward(xb, self.loss_gradient(out, target))
        loss = self.after_backward(float(loss), len(xb))
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

    @staticmethod
    def _correct(out, yb):
        if out.ndim != 2 or out.shape[1] < 2:
            return math.nan
        return float(np.count_nonzero(labels_of(out) == labels_of(yb)))

    def batch_rng(self, epoch, batch):
        """The generator of one batch's augmentation: a function of (seed, epoch, batch)."""
        return np.random.default_rng([self.seed, epoch, batch])

    def _train_epoch(self, loader, epoch, epochs, skip):
        self.model.train()
        self.set_epoch(loader, epoch)
        sums = np.zeros(3) if self._sums is None else np.asarray(self._sums, dtype=np.float64)
        self._bar = self._progress(len(loader), epoch, epochs, skip)
        start = time.perf_counter() - self._elapsed
        try:
            for b, (xb, yb) in enumerate(loader):
                if b < skip:
                    continue
                if self.augment is not None:
                    xb = self.augment(xb, self.batch_rng(epoch, b))
                if self.input_shape is None:
                    self.input_shape = tuple(xb.shape[1:])
                loss, out = self.train_step(xb, yb)
                n = len(xb)
                sums += (loss * n, self._correct(out, yb), n)
                self.step += 1
                self.batch_in_epoch = b + 1
                self._sums = sums.tolist()
                self._elapsed = time.perf_counter() - start
                self.history.step_loss.append(loss)
                self._callback("on_batch_end", self.step, {"loss": loss, "batch": b, "size": n})
                if self._bar is not None:
                    self._bar.update(1)
                    if b % 10 == 0 or b + 1 == len(loader):
                        self._bar.set_postfix_str(
                            f"loss {sums[0] / sums[2]:.4f}  acc {sums[1] / sums[2]:.2%}  "
                            f"{sums[2] / max(self._elapsed, 1e-9):,.0f} samples/s"
                        )
                if self._sigint:
                    raise KeyboardInterrupt
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        total = self.reduce_metrics(np.asarray(self._sums if self._sums is not None else sums, dtype=np.float64))
        count = max(total[2], 1.0)
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
        modes = _save_modes(self.model)
        self.model.evaluate()
        sums = np.zeros(3)
        outputs = []
        try:
            for xb, yb in loader:
                out = self.model.forward(xb)
                n = len(xb)
                sums += (float(self.criterion.forward(out, yb)) * n, self._correct(out, yb), n)
                if return_predictions:
                    outputs.append(np.array(out, copy=True))
        finally:
            _restore_modes(self.model, modes)
        total = self.reduce_metrics(sums)
        count = max(total[2], 1.0)
        accuracy = None if math.isnan(total[1]) else float(total[1] / count)
        result = {"loss": float(total[0] / count), "accuracy": accuracy}
        if return_predictions:
            result["predictions"] = np.concatenate(outputs) if outputs else np.zeros((0,))
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
                "sums": self._sums,
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
        from .serialization import save_checkpoint

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
        from .serialization import load_checkpoint

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
        self._sums = state.get("sums")
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
        if ckpt.metadata and ckpt.metadata.get("input_shape"):
            self.input_shape = tuple(ckpt.metadata["input_shape"])
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
        if isinstance(model, Sequential):
            model.skip_input_grad = True
        modes = _save_modes(model)
        old_handler = self._install_sigint()
        self.stop_training = False
        self.interrupted = False
        self._callback("on_train_begin")
        try:
            while self.epoch < epochs and not self.stop_training:
                epoch = self.epoch
                if self.batch_in_epoch == 0:
                    self._callback("on_epoch_begin", epoch)
                    self._lr_at_start = getattr(self.optimizer, "lr", None)
                logs = self._train_epoch(loader, epoch, epochs, self.batch_in_epoch)
                logs["lr"] = self._lr_at_start
                if val_data is not None:
                    val = self.evaluate(val_data, eval_batch_size)
                    logs["val_loss"], logs["val_accuracy"] = val["loss"], val["accuracy"]
                self.history.append(logs)
                self.epoch, self.batch_in_epoch, self._sums, self._elapsed = epoch + 1, 0, None, 0.0
                self.log(_epoch_line(epoch, epochs, logs))
                self._callback("on_epoch_end", epoch, logs)
                if self._sigint:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if self._in_step:  # a second Ctrl-C in the middle of an update: no consistent state to save
                raise
            self.interrupted = self.history.interrupted = True
            self._callback("on_interrupt")
            self.log(f"interrupted after {self.epoch} epochs + {self.batch_in_epoch} batches (step {self.step})")
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
            if isinstance(model, Sequential):
                model.skip_input_grad = old_skip
            _restore_modes(model, modes)
        self._callback("on_train_end")
        return self.history

    def _install_sigint(self):
        """First Ctrl-C: finish the current batch, save, stop. Second: abort at once."""
        if threading.current_thread() is not threading.main_thread():
            return None
        self._sigint = False

        def handler(signum, frame):
            if self._sigint:
                raise KeyboardInterrupt
            self._sigint = True
            self.log("Ctrl-C: stopping after this batch (press again to abort now)")

        try:
            return signal.signal(signal.SIGINT, handler)
        except ValueError:
            return None


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


def _save_modes(model):
    return [(m, m.training) for _, m in model.named_modules()]


def _restore_modes(model, modes):
    for module, training in modes:
        module.training = training


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
        augment: a batch transform ``(xb, rng) -> xb`` (``nnumpy.augment.Augment``).
        label_smoothing: train against ``(1 - e) * onehot + e / C``.
        resume: a checkpoint path (or loaded checkpoint) to continue from.
        verbose: progress bar (on a terminal only) and one line per epoch.
        extra: a JSON-able dict stored in checkpoints.
        distributed: True to train data-parallel over the MPI ranks of
            ``mpiexec -n K`` (``nnumpy.distributed.DistributedTrainer``:
            ``batch_size`` is the global batch, BatchNorm synchronised, only
            rank 0 prints and writes); a dict passes options, e.g.
            ``{"sync_batchnorm": False}`` for per-rank statistics.

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
    if not isinstance(model, Module):
        raise TypeError(f"fit: expected a Module as model, got {type(model).__name__}")
    if isinstance(optimizer, str) or isinstance(optimizer, type):
        optimizer = get_optimizer(optimizer, model, lr=lr, weight_decay=weight_decay)
    elif lr is not None or weight_decay is not None:
        optimizer = get_optimizer(optimizer, model, lr=lr, weight_decay=weight_decay)
    trainer_class, options = Trainer, {}
    if distributed:
        from .distributed import DistributedTrainer as trainer_class

        options = dict(distributed) if isinstance(distributed, dict) else {}
    trainer = trainer_class(
        model,
        criterion,
        optimizer,
        **options,
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
    """The model's outputs for ``x`` (an array, or a loader of ``(xb, yb)`` or
    ``xb``), computed in evaluate mode in batches; modes are restored."""
    modes = _save_modes(model)
    model.evaluate()
    try:
        if hasattr(x, "shape"):
            batches = (x[i : i + batch_size] for i in range(0, len(x), batch_size))
        else:
            batches = (b[0] if isinstance(b, (tuple, list)) else b for b in x)
        outputs = [np.array(model.forward(xb), copy=True) for xb in batches]
    finally:
        _restore_modes(model, modes)
    return np.concatenate(outputs) if outputs else np.zeros((0,))


# ---------------------------------------------------------------- summary
def _shape_text(shape):
    return "(" + ", ".join(["N", *(str(s) for s in shape[1:])]) + ")"


def summary(model, input_shape, print_fn=print, dtype=None):
    """A torchinfo-like table: every module with its output shape and
    parameter count, then the totals. ``input_shape`` is one sample's shape
    (no batch axis), e.g. ``(784,)`` or ``(1, 28, 28)``. Runs one forward of
    a zero batch in evaluate mode (modes are restored). Prints the table with
    ``print_fn`` (None: silent) and returns it."""
    input_shape = tuple(int(s) for s in np.atleast_1d(input_shape))
    params = model.parameters()
    dtype = np.dtype(dtype or (params[0].dtype if params else np.float32))
    modes = _save_modes(model)
    model.evaluate()
    try:
        model.forward(np.zeros((1, *input_shape), dtype=dtype))
    finally:
        _restore_modes(model, modes)
    rows = [("Layer (type)", "Output shape", "Param #")]
    modules = [(n, m) for n, m in model.named_modules() if not (m is model and m.children())]
    width = max((len(n.split(".")[-1]) for n, _ in modules), default=1)
    for name, module in modules:
        depth = name.count(".")
        label = "  " * depth + f"{name.split('.')[-1] or '-':<{width}}  {repr(module).splitlines()[0].rstrip('(')}"
        shape = getattr(module.output, "shape", None)
        count = sum(int(p.size) for p in module.parameters())
        rows.append((label, _shape_text(shape) if shape is not None else "-", f"{count:,}" if count else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    line = "=" * (sum(widths) + 4)
    fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"  # noqa: E731
    total = model.num_parameters
    trainable = sum(int(p.size) for p, _ in model.parameter_pairs())
    nbytes = sum(int(p.nbytes) for p in params)
    lines = [line, fmt(rows[0]), line, *(fmt(r) for r in rows[1:]), line]
    lines += [
        f"Input shape: {_shape_text((None, *input_shape))}, {dtype.name}",
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Parameter size: {nbytes / 2**20:.2f} MiB",
        line,
    ]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
