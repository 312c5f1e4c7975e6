"""Callbacks of ``fit``: the ``Callback`` base class, ``EarlyStopping``,
``ModelCheckpoint``, ``GradientClipping`` (and ``clip_grad_norm``, the
function it calls). Learning-rate schedules (``nnumpy.lr_scheduler``) are
callbacks too: any object with some of ``Callback``'s methods works.
"""

import math

import numpy as np

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "GradientClipping", "clip_grad_norm"]


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
    ``every`` epochs, and when Ctrl-C interrupts training. A model whose
    parameters hold NaN or inf is never written: ``TrainingDivergedError``
    is raised instead and the previous file stays as it was.

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
        check = getattr(trainer, "check_parameters", None)
        if check is not None:  # never write NaN parameters over a good checkpoint (TrainingDivergedError)
            check()
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
