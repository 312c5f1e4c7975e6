"""Learning-rate schedules (``torch.optim.lr_scheduler``'s formulas).

A schedule changes the ``lr`` attribute of any nnumpy optimizer. Use it by
hand, as in PyTorch::

    sched = CosineAnnealingLR(opt, T_max=10)
    for epoch in range(10):
        train_one_epoch(); sched.step()

or pass it to ``fit(..., callbacks=[sched])``: epoch schedules then step after
each epoch (``ReduceLROnPlateau`` with the monitored metric, ``val_loss`` by
default), per-step schedules (``OneCycleLR``, ``LinearWarmup`` with
``interval="step"``) after each optimizer step.

Every schedule computes the rate in closed form from its step counter
``last_epoch`` (no accumulated rounding), and ``state_dict()`` /
``load_state_dict()`` carry what a checkpoint needs to resume it exactly.
"""

import bisect
import math

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
    "LinearWarmup",
    "OneCycleLR",
]


def _check_optimizer(name, optimizer):
    if not hasattr(optimizer, "lr"):
        raise TypeError(f"{name}: expected an optimizer with an `lr` attribute, got {type(optimizer).__name__}")


class LRScheduler:
    """Base class: ``lr = get_lr(last_epoch)`` from the optimizer's initial rate.

    Construction sets the rate for step 0 (as PyTorch does); each ``step()``
    advances the counter and sets the next rate.

    Attributes:
        base_lr: the optimizer's ``lr`` when the schedule was built.
        last_epoch: how many times ``step()`` ran.
        interval: ``"epoch"`` or ``"step"``: when ``fit`` calls ``step()``.
    """

    interval = "epoch"

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        """Advance one epoch (or one step for per-step schedules) and set ``lr``."""
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()

    def get_last_lr(self):
        return self.optimizer.lr

    # the callback protocol of ``fit``
    def on_epoch_end(self, trainer, epoch, logs):
        if self.interval == "epoch":
            self.step()

    def on_batch_end(self, trainer, step, logs):
        if self.interval == "step":
            self.step()

    def state_dict(self):
        """The step counter: the schedule itself comes from the constructor,
        so a run resumed with more epochs follows the schedule built for them."""
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.last_epoch = int(state["last_epoch"])
        self.optimizer.lr = self.get_lr()

    def __repr__(self):
        skip = ("optimizer", "last_epoch", "base_lr", "after")
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in skip)
        return f"{type(self).__name__}({args})"


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= epoch)``."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self.base_lr * self.gamma**self.last_epoch


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``
    (SGDR without restarts; PyTorch's closed form)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1, interval="epoch"):
        if int(T_max) < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        self.interval = interval
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cos = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * cos / 2


class LinearWarmup(LRScheduler):
    """Linear warm-up from ``start_factor * base_lr`` to ``base_lr`` over
    ``warmup`` steps, then hands over to ``after`` (another schedule built on
    the same optimizer, whose counter starts when the warm-up ends) or keeps
    ``base_lr``. Per-step by default (``interval="step"``)."""

    def __init__(self, optimizer, warmup, start_factor=0.1, after=None, interval="step", last_epoch=-1):
        if int(warmup) < 0:
            raise ValueError(f"LinearWarmup: warmup must be >= 0, got {warmup!r}")
        self.warmup = int(warmup)
        self.start_factor = float(start_factor)
        self.after = after
        self.interval = interval
        super().__init__(optimizer, last_epoch)
        if after is not None:
            self.base_lr = after.base_lr

    def get_lr(self):
        if self.last_epoch < self.warmup:
            f = self.start_factor + (1 - self.start_factor) * self.last_epoch / self.warmup
            return self.base_lr * f
        if self.after is None:
            return self.base_lr
        self.after.last_epoch = self.last_epoch - self.warmup
        return self.after.get_lr()


class OneCycleLR(LRScheduler):
    """The 1cycle policy (``torch.optim.lr_scheduler.OneCycleLR`` with
    ``cycle_momentum=False``), stepped after every optimizer step.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps`` steps, then anneals to
    ``max_lr / div_factor / final_div_factor`` (cosine, or linear with
    ``anneal_strategy="linear"``). The optimizer's own ``lr`` is ignored.
    """

    interval = "step"

    def __init__(
        self,
        optimizer,
        max_lr,
        total_steps,
        pct_start=0.3,
        anneal_strategy="cos",
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        last_epoch=-1,
    ):
        if int(total_steps) < 1:
            raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got {total_steps!r}")
        if not 0.0 <= float(pct_start) <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.initial_lr = self.max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.three_phase = bool(three_phase)
        super().__init__(optimizer, last_epoch)

    def _phases(self):
        up = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return [
                (up, self.initial_lr, self.max_lr),
                (2 * up, self.max_lr, self.initial_lr),
                (self.total_steps - 1, self.initial_lr, self.min_lr),
            ]
        return [(up, self.initial_lr, self.max_lr), (self.total_steps - 1, self.max_lr, self.min_lr)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "linear":
            return (end - start) * pct + start
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def get_lr(self):
        step = self.last_epoch
        if step >= self.total_steps:
            step = self.total_steps - 1  # PyTorch raises; finishing the cycle is friendlier
        start_step = 0.0
        lr = self.min_lr
        for i, (end_step, start_lr, end_lr) in enumerate(self._phases()):
            if step <= end_step or i == len(self._phases()) - 1:
                lr = self._anneal(start_lr, end_lr, (step - start_step) / (end_step - start_step))
                break
            start_step = end_step
        return lr


class ReduceLROnPlateau:
    """Multiply ``lr`` by ``factor`` when a metric stopped improving for
    ``patience`` epochs (``torch.optim.lr_scheduler.ReduceLROnPlateau``).

    ``step(metric)`` by hand; as a ``fit`` callback it reads ``logs[monitor]``
    (``"val_loss"`` by default, falling back to ``"loss"`` without validation).

    Args:
        mode: ``"min"`` or ``"max"``.
        factor: multiplier (< 1). patience: epochs without improvement tolerated.
        threshold, threshold_mode: what counts as an improvement (``"rel"``:
            better than ``best * (1 -+ threshold)``; ``"abs"``: ``best -+ threshold``).
        cooldown: epochs to wait after a reduction. min_lr: lower bound.
        eps: reductions smaller than this are skipped.
    """

    interval = "epoch"

    def __init__(
        self,
        optimizer,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0.0,
        eps=1e-8,
        monitor="val_loss",
    ):
        _check_optimizer("ReduceLROnPlateau", optimizer)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.min_lr, self.eps = int(cooldown), float(min_lr), float(eps)
        self.monitor = monitor
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, a, best):
        if self.mode == "min":
            limit = best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold
            return a < limit
        limit = best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold
        return a > limit

    def step(self, metric):
        metric = float(metric)
        self.last_epoch += 1
        if self.is_better(metric, self.best):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = float(self.optimizer.lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def get_last_lr(self):
        return self.optimizer.lr

    def on_epoch_end(self, trainer, epoch, logs):
        key = self.monitor if logs.get(self.monitor) is not None else "loss"
        self.step(logs[key])

    def state_dict(self):
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state):
        vars(self).update(state)

    def __repr__(self):
        return f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor}, patience={self.patience})"
