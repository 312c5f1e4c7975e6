"""Learning-rate schedules (``torch.optim.lr_scheduler``'s formulas).

A schedule sets the learning rate of every parameter group of an nnumpy
optimizer, each scaled from its own initial rate as PyTorch does (any object
with an ``lr`` attribute works too, as one group). Use it by hand, as in
PyTorch::

    sched = CosineAnnealingLR(opt, T_max=10)
    for epoch in range(10):
        train_one_epoch(); sched.step()

or pass it to ``fit(..., callbacks=[sched])``: epoch schedules then step after
each epoch (``ReduceLROnPlateau`` with the monitored metric, ``val_loss`` by
default), per-step schedules (``OneCycleLR``, ``LinearWarmup``, any schedule
built with ``interval="step"``) after each optimizer step.

Every schedule computes the rate in closed form from its step counter
``last_epoch`` (no accumulated rounding), and ``state_dict()`` /
``load_state_dict()`` carry what a checkpoint needs to resume it exactly.
The first schedule built on an optimizer records each group's rate as
``group["initial_lr"]``; later schedules (and ``SequentialLR``'s parts) start
from it, as in PyTorch.
"""

import bisect
import math

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "LinearLR",
    "LambdaLR",
    "PolynomialLR",
    "SequentialLR",
    "ReduceLROnPlateau",
    "LinearWarmup",
    "OneCycleLR",
]

INTERVALS = ("epoch", "step")


class _AttributeGroup:
    """One parameter group made of an optimizer's attributes (``lr``,
    ``initial_lr``), for optimizers without ``param_groups``."""

    def __init__(self, optimizer):
        self._optimizer = optimizer

    def __getitem__(self, key):
        return getattr(self._optimizer, key)

    def __setitem__(self, key, value):
        setattr(self._optimizer, key, value)

    def setdefault(self, key, value):
        if not hasattr(self._optimizer, key):
            setattr(self._optimizer, key, value)
        return getattr(self._optimizer, key)


def _groups(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    return list(groups) if groups else [_AttributeGroup(optimizer)]


def _check_optimizer(name, optimizer):
    if not getattr(optimizer, "param_groups", None) and not hasattr(optimizer, "lr"):
        raise TypeError(
            f"{name}: expected an optimizer with an `lr` attribute or `param_groups`, got {type(optimizer).__name__}"
        )


def _check_interval(name, interval):
    if interval not in INTERVALS:
        raise ValueError(f"{name}: interval must be 'epoch' or 'step', got {interval!r}")
    return interval


def _per_group(name, what, value, n):
    """``value`` for each of ``n`` groups: a list of ``n``, or one number for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name}: expected {n} values of {what} (one per parameter group), got {len(value)}")
        return [float(v) for v in value]
    return [float(value)] * n


class LRScheduler:
    """Base class: each group's ``lr = _lr(base_lr)`` at step ``last_epoch``,
    from the group's initial rate ``base_lr``.

    Construction sets the rate for step 0 (as PyTorch does); each ``step()``
    advances the counter and sets the next rates.

    Attributes:
        base_lrs: each group's initial rate (``base_lr``: the first group's).
        last_epoch: how many times ``step()`` ran.
        interval: ``"epoch"`` or ``"step"``: when ``fit`` calls ``step()``.
    """

    interval = "epoch"

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        self.base_lrs = [float(g.setdefault("initial_lr", g["lr"])) for g in _groups(optimizer)]
        self.last_epoch = last_epoch
        self.step()

    @property
    def base_lr(self):
        return self.base_lrs[0]

    def _lr(self, base_lr, group):
        """The rate of group number ``group`` at ``last_epoch``."""
        raise NotImplementedError

    def get_lr(self):
        """Every group's rate at ``last_epoch`` (a list, as PyTorch)."""
        return [self._lr(base, i) for i, base in enumerate(self.base_lrs)]

    def _apply(self, lrs):
        for group, lr in zip(_groups(self.optimizer), lrs, strict=True):
            group["lr"] = lr

    def step(self):
        """Advance one epoch (or one step for per-step schedules) and set the rates."""
        self.last_epoch += 1
        self._apply(self.get_lr())

    def get_last_lr(self):
        """Every group's current rate (a list, as PyTorch)."""
        return [g["lr"] for g in _groups(self.optimizer)]

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
        self._apply(self.get_lr())

    def __repr__(self):
        skip = ("optimizer", "last_epoch", "base_lrs", "after", "schedulers", "lr_lambdas")
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in skip and not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or int(step_size) != step_size or int(step_size) < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, group):
        return base_lr * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= epoch)`` (a milestone
    listed twice counts twice, as in PyTorch)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, group):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, group):
        return base_lr * self.gamma**self.last_epoch


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``
    (SGDR without restarts; PyTorch's closed form)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1, interval="epoch"):
        if isinstance(T_max, bool) or int(T_max) != T_max or int(T_max) < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        self.interval = _check_interval("CosineAnnealingLR", interval)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, group):
        cos = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cos / 2


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``):
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``,
    where ``T_cur`` counts the epochs since the last restart and the period
    ``T_i`` starts at ``T_0`` and is multiplied by ``T_mult`` at each restart.

    ``step(epoch)`` accepts a fractional epoch (``step(epoch + i / iters)``
    after batch ``i``), as PyTorch; or build it with ``interval="step"`` to
    count ``T_0`` in optimizer steps under ``fit``.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1, interval="epoch"):
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0 must be a positive integer, got {T_0!r}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got {T_mult!r}")
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, float(eta_min)
        self.interval = _check_interval("CosineAnnealingWarmRestarts", interval)
        self.T_i, self.T_cur = T_0, last_epoch
        self._epoch = last_epoch  # the (possibly fractional) position step() was given
        super().__init__(optimizer, last_epoch)

    def _place(self, epoch):
        """``(T_cur, T_i)`` at ``epoch``, restart after restart (exact for whole epochs)."""
        period, start = self.T_0, 0
        while epoch - start >= period:
            start += period
            period *= self.T_mult
        return epoch - start, period

    def get_lr(self):
        # the fractional position step(epoch) was given, unless the counter was set
        # since (SequentialLR and LinearWarmup set last_epoch of the schedules they run)
        epoch = self._epoch if math.floor(self._epoch) == self.last_epoch else self.last_epoch
        self.T_cur, self.T_i = self._place(epoch)
        return super().get_lr()

    def _lr(self, base_lr, group):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2

    def step(self, epoch=None):
        """Advance one epoch, or go to ``epoch`` (a float: a fraction of the way through it)."""
        if epoch is None:
            epoch = self.last_epoch + 1
        elif epoch < 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, got {epoch!r}")
        self._epoch = epoch
        self.last_epoch = math.floor(epoch)
        self._apply(self.get_lr())

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "epoch": self._epoch}

    def load_state_dict(self, state):
        self.last_epoch = int(state["last_epoch"])
        self._epoch = state.get("epoch", self.last_epoch)
        self._apply(self.get_lr())


class LinearLR(LRScheduler):
    """``lr = base_lr * f``, ``f`` linear from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps, then constant (PyTorch's
    ``LinearLR``; a warm-up with ``start_factor < 1``)."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1, interval="epoch"):
        if not 0 < float(start_factor) <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        if not 0 <= float(end_factor) <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        if isinstance(total_iters, bool) or int(total_iters) != total_iters or int(total_iters) < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive integer, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = float(start_factor), float(end_factor), int(total_iters)
        self.interval = _check_interval("LinearLR", interval)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, group):
        done = min(self.last_epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(epoch)``; ``lr_lambda`` is a function, or a
    list of one function per parameter group. ``state_dict`` holds the step
    counter only: build the schedule with the same functions to resume."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1, interval="epoch"):
        n = len(_groups(optimizer))
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n:
            raise ValueError(
                f"LambdaLR: expected {n} lr_lambda functions (one per parameter group), got {len(lambdas)}"
            )
        if not all(callable(f) for f in lambdas):
            raise TypeError("LambdaLR: lr_lambda must be a function (or a list of functions, one per group)")
        self.lr_lambdas = lambdas
        self.interval = _check_interval("LambdaLR", interval)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, group):
        return base_lr * self.lr_lambdas[group](self.last_epoch)


class PolynomialLR(LRScheduler):
    """``lr = base_lr * (1 - min(epoch, total_iters) / total_iters) ** power``
    (PyTorch's ``PolynomialLR``: 0 from ``total_iters`` on)."""

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1, interval="epoch"):
        if isinstance(total_iters, bool) or int(total_iters) != total_iters or int(total_iters) < 1:
            raise ValueError(f"PolynomialLR: total_iters must be a positive integer, got {total_iters!r}")
        self.total_iters, self.power = int(total_iters), float(power)
        self.interval = _check_interval("PolynomialLR", interval)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, group):
        return base_lr * (1.0 - min(self.last_epoch, self.total_iters) / self.total_iters) ** self.power


class SequentialLR(LRScheduler):
    """Schedules one after another (PyTorch's ``SequentialLR``): ``schedulers[i]``
    runs from ``milestones[i-1]`` on, its counter restarted at 0, e.g. a linear
    warm-up then a cosine decay::

        warm = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warm, cosine], milestones=[5])

    Every part must be built on ``optimizer``; step the ``SequentialLR`` only
    (pass only it to ``fit``). ``interval`` defaults to the first part's.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1, interval=None):
        schedulers, milestones = list(schedulers), [int(m) for m in milestones]
        if not schedulers:
            raise ValueError("SequentialLR: expected at least one scheduler")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} schedulers, "
                f"got {len(milestones)}"
            )
        if milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing, got {milestones}")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, SequentialLR):
                raise TypeError(f"SequentialLR: schedulers[{i}] is a {type(s).__name__}, not a closed-form schedule")
            if s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] is built on another optimizer")
        self.schedulers, self.milestones = schedulers, milestones
        self.interval = _check_interval("SequentialLR", interval or schedulers[0].interval)
        super().__init__(optimizer, last_epoch)

    def _current(self):
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        part = self.schedulers[i]
        part.last_epoch = self.last_epoch - (self.milestones[i - 1] if i else 0)
        return part

    def get_lr(self):
        return self._current().get_lr()

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state):
        for s, saved in zip(self.schedulers, state.get("schedulers", []), strict=False):
            s.last_epoch = int(saved["last_epoch"])
        super().load_state_dict(state)


class LinearWarmup(LRScheduler):
    """Linear warm-up from ``start_factor * base_lr`` to ``base_lr`` over
    ``warmup`` steps, then hands over to ``after`` (another schedule built on
    the same optimizer, whose counter starts when the warm-up ends) or keeps
    ``base_lr``. Per-step by default (``interval="step"``). PyTorch's
    spelling: ``SequentialLR([LinearLR(...), after], milestones=[warmup])``."""

    def __init__(self, optimizer, warmup, start_factor=0.1, after=None, interval="step", last_epoch=-1):
        if int(warmup) < 0:
            raise ValueError(f"LinearWarmup: warmup must be >= 0, got {warmup!r}")
        self.warmup = int(warmup)
        self.start_factor = float(start_factor)
        self.after = after
        self.interval = _check_interval("LinearWarmup", interval)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch < self.warmup:
            f = self.start_factor + (1 - self.start_factor) * self.last_epoch / self.warmup
            return [base * f for base in self.base_lrs]
        if self.after is None:
            return list(self.base_lrs)
        self.after.last_epoch = self.last_epoch - self.warmup
        return self.after.get_lr()


class OneCycleLR(LRScheduler):
    """The 1cycle policy (``torch.optim.lr_scheduler.OneCycleLR`` with
    ``cycle_momentum=False``), stepped after every optimizer step.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps`` steps, then anneals to
    ``max_lr / div_factor / final_div_factor`` (cosine, or linear with
    ``anneal_strategy="linear"``). The optimizer's own rates are ignored;
    ``max_lr`` may be a list, one per parameter group. Past ``total_steps``
    the rate stays at its last value (PyTorch raises).
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
        _check_optimizer("OneCycleLR", optimizer)
        groups = _groups(optimizer)
        self.max_lrs = _per_group("OneCycleLR", "max_lr", max_lr, len(groups))
        self.max_lr = self.max_lrs[0]
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        self.three_phase = bool(three_phase)
        if last_epoch == -1:
            for group, top in zip(groups, self.max_lrs, strict=True):
                group["initial_lr"] = top / self.div_factor
        super().__init__(optimizer, last_epoch)

    @property
    def initial_lr(self):
        return self.max_lr / self.div_factor

    @property
    def min_lr(self):
        return self.initial_lr / self.final_div_factor

    def _phases(self, top):
        low = top / self.div_factor
        end = low / self.final_div_factor
        up = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return [(up, low, top), (2 * up, top, low), (self.total_steps - 1, low, end)]
        return [(up, low, top), (self.total_steps - 1, top, end)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "linear":
            return (end - start) * pct + start
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def _lr(self, base_lr, group):
        step = min(self.last_epoch, self.total_steps - 1)
        phases = self._phases(self.max_lrs[group])
        start_step = 0.0
        for i, (end_step, start_lr, end_lr) in enumerate(phases):
            if step <= end_step or i == len(phases) - 1:
                return self._anneal(start_lr, end_lr, (step - start_step) / (end_step - start_step))
            start_step = end_step


class ReduceLROnPlateau:
    """Multiply each group's ``lr`` by ``factor`` when a metric stopped
    improving for ``patience`` epochs (``torch.optim.lr_scheduler.ReduceLROnPlateau``).

    ``step(metric)`` by hand; as a ``fit`` callback it reads ``logs[monitor]``
    (``"val_loss"`` by default, falling back to ``"loss"`` without validation).

    Args:
        mode: ``"min"`` or ``"max"``.
        factor: multiplier (< 1). patience: epochs without improvement tolerated.
        threshold, threshold_mode: what counts as an improvement (``"rel"``:
            better than ``best * (1 -+ threshold)``; ``"abs"``: ``best -+ threshold``).
        cooldown: epochs to wait after a reduction. min_lr: lower bound (a
            list: one per parameter group).
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
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.min_lrs = _per_group("ReduceLROnPlateau", "min_lr", min_lr, len(_groups(optimizer)))
        self.min_lr = self.min_lrs[0]
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
            for group, floor in zip(_groups(self.optimizer), self.min_lrs, strict=True):
                old = float(group["lr"])
                new = max(old * self.factor, floor)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def get_last_lr(self):
        return [g["lr"] for g in _groups(self.optimizer)]

    def on_epoch_end(self, trainer, epoch, logs):
        key = self.monitor if logs.get(self.monitor) is not None else "loss"
        self.step(logs[key])

    _STATE = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "eps",
        "min_lrs",
        "min_lr",
        "monitor",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
        "last_epoch",
    )

    def state_dict(self):
        return {k: getattr(self, k) for k in self._STATE}

    def load_state_dict(self, state):
        for key, value in state.items():
            if key in self._STATE:  # nothing else read from a file is set
                setattr(self, key, value)

    def __repr__(self):
        return f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor}, patience={self.patience})"
