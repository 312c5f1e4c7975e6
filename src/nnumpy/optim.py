"""Optimizers.

Two families:

* the seeds' functional optimizers ``sgd_momentum`` and ``adam_optimizer``
  with seed 001's exact formulas and state layout; they take the nested
  per-module lists that ``Sequential.getParameters()`` returns;
* optimizer classes with ``torch.optim``'s update rules and defaults:
  ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``, ``NAdam`` (also under
  the seeds' spellings ``RMSProp``, ``AdaGrad``, ``Nadam``).

Every update is in place: parameter arrays are never rebound, so layers,
optimizers and checkpoints keep sharing them. Class optimizers re-read the
model's parameter and gradient arrays at every ``step()`` and skip frozen
modules.
"""

import math

import numpy as np

from .module import Module

__all__ = [
    "sgd_momentum",
    "adam_optimizer",
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "NAdam",
    "RMSProp",
    "AdaGrad",
    "Nadam",
    "Momentum",
]


# --------------------------------------------------------------------- seed 001
def _iterate_nested(variables, gradients):
    # the seed's zip: silently stops at the shorter list
    for layer_vars, layer_grads in zip(variables, gradients, strict=False):
        yield from zip(layer_vars, layer_grads, strict=False)


def sgd_momentum(variables, gradients, config, state):
    """Seed 001's SGD with momentum, in place.

    ``accumulated = momentum * accumulated + learning_rate * grad``;
    ``var -= accumulated``.

    Args:
        variables: list of lists of arrays, one list per layer
            (``net.getParameters()``).
        gradients: the same structure (``net.getGradParameters()``).
        config: dict with ``learning_rate`` and ``momentum``.
        state: dict the optimizer keeps its state in (``accumulated_grads``,
            indexed by a flat variable counter).
    """
    accumulated = state.setdefault("accumulated_grads", {})
    for index, (var, grad) in enumerate(_iterate_nested(variables, gradients)):
        old = accumulated.setdefault(index, np.zeros_like(grad))
        old *= config["momentum"]
        old += config["learning_rate"] * grad
        var -= old


def adam_optimizer(variables, gradients, config, state):
    """Seed 001's Adam, in place.

    ``lr_t = learning_rate * sqrt(1 - beta2**t) / (1 - beta1**t)``;
    ``m = beta1 * m + (1 - beta1) * g``; ``v = beta2 * v + (1 - beta2) * g * g``;
    ``var -= lr_t * m / (sqrt(v) + epsilon)``.

    Args:
        variables, gradients: nested lists as for ``sgd_momentum``.
        config: dict with ``learning_rate``, ``beta1``, ``beta2``, ``epsilon``.
        state: dict with ``m``, ``v`` (indexed by a flat variable counter) and ``t``.
    """
    first = state.setdefault("m", {})
    second = state.setdefault("v", {})
    state["t"] = state.setdefault("t", 0) + 1
    t = state["t"]
    beta1, beta2 = config["beta1"], config["beta2"]
    lr_t = config["learning_rate"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    for index, (var, grad) in enumerate(_iterate_nested(variables, gradients)):
        m = first.setdefault(index, np.zeros_like(grad))
        v = second.setdefault(index, np.zeros_like(grad))
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        var -= lr_t * m / (np.sqrt(v) + config["epsilon"])


# --------------------------------------------------------------------- classes
def _flatten(arrays):
    """Flatten nested lists of arrays (``getParameters()`` of a container)."""
    flat = []
    for item in arrays:
        if isinstance(item, (list, tuple)):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


class Optimizer:
    """Base class: holds hyper-parameters and per-parameter state.

    Two ways to use one:

    * ``opt = Adam(model, lr=1e-3)``; then ``opt.zero_grad()``, forward,
      backward, ``opt.step()``;
    * seed 003's way: ``opt = Adam(lr=1e-3)``; then ``opt(params, grads)``
      with flat (or nested) lists of arrays, stateful across calls.

    Hyper-parameters are attributes (``opt.lr``), so schedules can change them.
    """

    hyperparameters = ()

    def __init__(self, model=None, **hyper):
        name = type(self).__name__
        if model is not None and not isinstance(model, Module):
            got = type(model).__name__
            if isinstance(model, (int, float)):
                hint = f"{got} {model!r}; did you mean {name}(model, lr={model!r})?"
            else:  # e.g. a list of arrays: printing it all helps nobody
                hint = f"{got}; for lists of arrays build {name}(lr=...) and call it as opt(params, grads)"
            raise TypeError(f"{name}: expected the model (a Module) as first argument, got {hint}")
        self.model = model
        for key, value in hyper.items():
            setattr(self, key, value)
        self._validate()
        self.state = {}

    def _validate(self):
        name = type(self).__name__
        if not float(self.lr) >= 0:
            raise ValueError(f"{name}: lr must be >= 0, got {self.lr!r}")
        if getattr(self, "eps", 1.0) < 0:
            raise ValueError(f"{name}: eps must be >= 0, got {self.eps!r}")
        if getattr(self, "weight_decay", 0.0) < 0:
            raise ValueError(f"{name}: weight_decay must be >= 0, got {self.weight_decay!r}")
        for i, beta in enumerate(getattr(self, "betas", ())):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: betas[{i}] must be in [0, 1), got {beta!r}")

    def step(self):
        """Update every trainable parameter of the model in place."""
        if self.model is None:
            raise RuntimeError(
                f"{type(self).__name__} was built without a model: call it as opt(params, grads), "
                f"or build it as {type(self).__name__}(model, ...)"
            )
        # State is keyed by the position among *all* parameters, so freezing a
        # module mid-training does not hand its state to the next parameters.
        index = 0
        for leaf in self.model.leaves():
            for param, grad in zip(leaf.getParameters(), leaf.getGradParameters(), strict=True):
                if not leaf.frozen:
                    self._update(self.state.setdefault(index, {}), param, grad)
                index += 1

    def __call__(self, params, gradients):
        """Update ``params`` in place from ``gradients`` (lists, flat or nested)."""
        params, gradients = _flatten(params), _flatten(gradients)
        if len(params) != len(gradients):
            raise ValueError(f"{type(self).__name__}: got {len(params)} parameters but {len(gradients)} gradients")
        for index, (param, grad) in enumerate(zip(params, gradients, strict=True)):
            self._update(self.state.setdefault(index, {}), param, grad)

    def reset_t(self):
        """Restart the bias-correction step count of every parameter, keeping
        the moments (seed 003's ``reset_t``)."""
        for entry in self.state.values():
            if "step" in entry:
                entry["step"] = 0
            if "mu_product" in entry:
                entry["mu_product"] = 1.0

    def zero_grad(self):
        """Zero the model's parameter gradients."""
        if self.model is not None:
            self.model.zeroGradParameters()

    def _update(self, state, param, grad):
        raise NotImplementedError

    def _decayed(self, param, grad):
        """``grad + weight_decay * param`` (L2 penalty, PyTorch's ``weight_decay``)."""
        return grad + self.weight_decay * param if self.weight_decay else grad

    def state_dict(self):
        """``{"hyper": {...}, "state": {index: {name: array or number}}}`` (copies)."""
        state = {
            index: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
            for index, entry in self.state.items()
        }
        return {"hyper": {k: getattr(self, k) for k in self.hyperparameters}, "state": state}

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned (hyper-parameters and state)."""
        for key, value in state_dict.get("hyper", {}).items():
            setattr(self, key, tuple(value) if isinstance(value, list) else value)
        self.state = {
            int(index): {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
            for index, entry in state_dict.get("state", {}).items()
        }

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (``torch.optim.SGD``).

    ``g = grad + weight_decay * p``; with momentum ``buf = momentum * buf +
    (1 - dampening) * g`` (``buf = g`` at the first step), then ``g = g +
    momentum * buf`` (Nesterov) or ``g = buf``; ``p -= lr * g``.
    """

    hyperparameters = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, model=None, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(
            model, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay
        )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")

    def _update(self, state, param, grad):
        grad = self._decayed(param, grad)
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, copy=True)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        param -= self.lr * grad


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``): bias-corrected first and second moments.

    ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g*g``;
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``;
    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2).
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    _decoupled = False

    def __init__(self, model=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, beta1=None, beta2=None):
        betas = _seed_betas(betas, beta1, beta2)
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _update(self, state, param, grad):
        beta1, beta2 = self.betas
        if self._decoupled:
            if self.weight_decay:
                param *= 1 - self.lr * self.weight_decay
        else:
            grad = self._decayed(param, grad)
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # In place with one scratch array, and the bias corrections folded into
        # two scalars: m / (sqrt(v) / c2 + eps) = c2 * m / (sqrt(v) + eps * c2).
        # 11 passes and no temporaries instead of 15 and 5 (the optimizer step
        # was a third of MLP-F's train step).
        c2 = math.sqrt(1 - beta2**t)
        scratch = np.multiply(grad, 1 - beta1)
        m *= beta1
        m += scratch
        np.multiply(grad, 1 - beta2, out=scratch)
        scratch *= grad
        v *= beta2
        v += scratch
        denom = np.sqrt(v, out=scratch)
        denom += self.eps * c2
        update = np.divide(m, denom, out=scratch)
        update *= self.lr * c2 / (1 - beta1**t)
        param -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``):
    ``p *= 1 - lr * weight_decay`` before the Adam step. Default
    ``weight_decay=0.01``."""

    _decoupled = True

    def __init__(self, model=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, *, beta1=None, beta2=None):
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, beta1=beta1, beta2=beta2)


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``).

    ``sq = alpha*sq + (1-alpha)*g*g``; ``avg = sqrt(sq) + eps`` (centered:
    ``sqrt(sq - mean_g**2) + eps``); with momentum ``buf = momentum*buf +
    g/avg``, ``p -= lr*buf``, else ``p -= lr * g / avg``. Note: seed 003's
    RMSProp puts ``eps`` inside the square root; this follows PyTorch.
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(
        self,
        model=None,
        lr=0.01,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        *,
        beta=None,
    ):
        alpha = alpha if beta is None else beta  # seed 003 calls the decay ``beta``
        super().__init__(
            model, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
        )

    def _update(self, state, param, grad):
        grad = self._decayed(param, grad)
        if not state:
            state.update(step=0, square_avg=np.zeros_like(param))
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(param)
            if self.centered:
                state["grad_avg"] = np.zeros_like(param)
        state["step"] += 1
        sq = state["square_avg"]
        sq *= self.alpha
        sq += (1 - self.alpha) * grad * grad
        if self.centered:
            ga = state["grad_avg"]
            ga *= self.alpha
            ga += (1 - self.alpha) * grad
            avg = np.sqrt(sq - ga * ga)
        else:
            avg = np.sqrt(sq)
        avg += self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += grad / avg
            param -= self.lr * buf
        else:
            param -= self.lr * (grad / avg)


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``): ``sum += g*g``;
    ``p -= lr / (1 + (t-1)*lr_decay) * g / (sqrt(sum) + eps)``."""

    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, model=None, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(
            model,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )

    def _update(self, state, param, grad):
        grad = self._decayed(param, grad)
        if not state:
            state.update(step=0, sum=np.full_like(param, self.initial_accumulator_value))
        state["step"] += 1
        clr = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
        total = state["sum"]
        total += grad * grad
        std = np.sqrt(total)
        std += self.eps
        param -= clr * (grad / std)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (``torch.optim.NAdam``), with the momentum
    schedule ``mu_t = b1 * (1 - 0.5 * 0.96**(t * momentum_decay))``."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "momentum_decay")

    def __init__(
        self,
        model=None,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        *,
        beta1=None,
        beta2=None,
    ):
        betas = _seed_betas(betas, beta1, beta2)
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)

    def _update(self, state, param, grad):
        beta1, beta2 = self.betas
        grad = self._decayed(param, grad)
        if not state:
            state.update(step=0, mu_product=1.0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        state["step"] += 1
        t = state["step"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        denom = np.sqrt(v / (1 - beta2**t))
        denom += self.eps
        param -= (self.lr * (1 - mu) / (1 - mu_product)) * (grad / denom)
        param -= (self.lr * mu_next / (1 - mu_product * mu_next)) * (m / denom)


class Momentum(SGD):
    """Seed 003's ``Momentum(lr, momentum=0.9)``: ``SGD`` with momentum
    (PyTorch's rule ``buf = momentum * buf + g; p -= lr * buf``, which equals
    the seed's ``u = momentum * u + lr * g; p -= u`` at a constant ``lr``)."""

    def __init__(self, model=None, lr=0.01, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(
            model, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay
        )


def _seed_betas(betas, beta1, beta2):
    """PyTorch's ``betas`` pair, overridden by seed 003's ``beta1`` / ``beta2``."""
    b1, b2 = betas
    return (b1 if beta1 is None else beta1, b2 if beta2 is None else beta2)


# the seeds' spellings
RMSProp = RMSprop
AdaGrad = Adagrad
Nadam = NAdam
