"""The seed notebooks' dialects, in one place (docs/seed-dialects.md).

nnumpy speaks the Torch7 protocol of seeds 001 and 002. The other seeds'
names are thin aliases over it, kept here so the core reads in one dialect:

* ``SeedModuleDialect``: what ``Module`` inherits for seeds 000 and 003: the
  snake_case hooks ``_compute_output`` / ``_compute_input_grad`` /
  ``_update_parameters_grad`` that the default ``updateOutput`` /
  ``updateGradInput`` / ``accGradParameters`` call, ``get_parameters()``,
  ``get_parameters_grad()``, ``grad_parameters()``, ``zero_grad()``, and the
  protocol's state under the seeds' attribute names (``_output``,
  ``_input_grad``, ``_train``).

* ``sgd_momentum``, ``adam_optimizer``: seed 001's functional optimizers
  (``nnumpy.optim`` re-exports them), on the nested lists of
  ``getParameters()``.

* ``Seed003Optimizer`` and ``Seed003SGD`` / ``Seed003Momentum`` /
  ``Seed003RMSProp`` / ``Seed003Adam`` / ``Seed003Nadam``: seed 003's
  optimizers, what ``SGD()``, ``Momentum(lr=...)``, ``RMSProp(1e-3, 1e-8,
  0.9)``, ``Adam(lr=...)`` and ``Nadam(...)`` build without a model.

* ``seed004``: a namespace with seed 004's ``CNN``, ``maxpool_forward`` /
  ``maxpool_backward`` and its functional optimizers ``VanillaUpdate``,
  ``MomentumUpdate``, ``AdaGrad``, ``RMSprop``, ``Adam``, with the seed's
  signatures (nnumpy's classes own those optimizer names at the top level).

Seed names that are whole classes of a family live with their family (this
module sits below the core, so it imports nothing of nnumpy): the criteria
``MSE`` and ``CrossEntropy`` (``nnumpy.criteria``), the optimizer spellings
``RMSProp``, ``AdaGrad``, ``Nadam``, ``Momentum`` (``nnumpy.optim``, whose
``SGD()``, ``Momentum(lr=...)``, ... built without a model return the
``Seed003*`` optimizers below), ``BatchNorm`` (``nnumpy.layers.normalization``), seed
004's optimizer names (``nnumpy.training.get_optimizer``).
"""

import inspect
import math
from types import SimpleNamespace

import numpy as np

__all__ = [
    "SeedModuleDialect",
    "sgd_momentum",
    "adam_optimizer",
    "Seed003Optimizer",
    "Seed003SGD",
    "Seed003Momentum",
    "Seed003RMSProp",
    "Seed003Adam",
    "Seed003Nadam",
    "seed004",
]


class SeedModuleDialect:
    """Seed 000's and seed 003's spellings of the ``Module`` protocol (a mixin of ``Module``).

    A module written in seed 000's dialect implements the three snake_case
    hooks instead of ``updateOutput``, ``updateGradInput`` and
    ``accGradParameters``; ``Module``'s defaults of those call the hooks.
    ``Module`` also honours a leaf that overrides ``get_parameters`` /
    ``parameters`` (seed 000 / 003) instead of declaring ``_parameters``.
    """

    # Seed 000 spells the three hooks in snake_case; a subclass may implement those.
    def _compute_output(self, input):
        raise NotImplementedError(f"{type(self).__name__} must implement updateOutput")

    def _compute_input_grad(self, input, gradOutput):
        raise NotImplementedError(f"{type(self).__name__} must implement updateGradInput")

    def _update_parameters_grad(self, input, gradOutput):
        pass

    def grad_parameters(self):
        """The gradients as one flat list, in the order of ``parameters()`` (seed 003)."""
        return [g for _, g in self.parameter_pairs(trainable_only=False)]

    def zero_grad(self):
        """Alias of ``zeroGradParameters`` (PyTorch and seed 000)."""
        self.zeroGradParameters()

    def get_parameters(self):
        """Alias of ``getParameters`` (seed 000)."""
        return self.getParameters()

    def get_parameters_grad(self):
        """Alias of ``getGradParameters`` (seed 000)."""
        return self.getGradParameters()

    # seed 000 keeps the protocol's state as ``_output`` / ``_input_grad``,
    # seed 003 keeps the mode as ``_train``: the same attributes under those names
    _output = property(lambda self: self.output, lambda self, v: setattr(self, "output", v))
    _input_grad = property(lambda self: self.gradInput, lambda self, v: setattr(self, "gradInput", v))
    _train = property(lambda self: self.training, lambda self, v: setattr(self, "training", v))


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


# --------------------------------------------------------------------- seed 004
# Seed 004 ("gates and layers") computes with free functions and a CNN class whose
# names nnumpy's classes already take (Adam, AdaGrad, RMSprop): they live in the
# namespace ``seed004`` below, with the seed's signatures and numbers.
def _im2col(X, fh, fw, padding, stride):
    """cs231n's ``im2col_indices`` (which seed 004 imports): ``(C*fh*fw, out_h*out_w*N)``,
    rows ordered (channel, kernel row, kernel column), columns (out row, out column, sample)."""
    n, c, h, w = X.shape
    padded = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (fh, fw), axis=(2, 3))[:, :, ::stride, ::stride]
    out_h, out_w = windows.shape[2:4]  # (N, C, out_h, out_w, fh, fw)
    return windows.transpose(1, 4, 5, 2, 3, 0).reshape(c * fh * fw, out_h * out_w * n), out_h, out_w


def _col2im(cols, x_shape, fh, fw, padding, stride):
    """The adjoint of ``_im2col``: overlapping windows add up (cs231n's ``col2im_indices``)."""
    n, c, h, w = x_shape
    out_h, out_w = (h + 2 * padding - fh) // stride + 1, (w + 2 * padding - fw) // stride + 1
    blocks = cols.reshape(c, fh, fw, out_h, out_w, n)
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(fh):  # a loop over the kernel's offsets only (fh * fw steps), each a strided add
        for j in range(fw):
            rows = slice(i, i + stride * out_h, stride)
            columns = slice(j, j + stride * out_w, stride)
            padded[:, :, rows, columns] += blocks[:, i, j].transpose(3, 0, 1, 2)
    return padded[:, :, padding : padding + h, padding : padding + w]


def _output_size(size, kernel, padding, stride):
    out = (size - kernel + 2 * padding) / stride + 1
    if not out.is_integer() or out < 1:
        raise ValueError(
            f"seed004: invalid output dimension: ({size} - {kernel} + 2 * {padding}) / {stride} + 1 = {out:g} "
            f"(the seed's 'Invalid output dimension!')"
        )
    return int(out)


class _Seed004CNN:
    """Seed 004's ``CNN``: ``forward(X, W, b, stride=1, padding=1)`` with ``W``
    ``(F, C, kh, kw)`` and ``b`` ``(F, 1)``; ``backward(dout)`` returns
    ``(dX, dW, db)`` with ``db`` ``(F, 1)``. The numbers of ``nnumpy.Conv2d``
    (same weight layout; its bias is ``(F,)``)."""

    def __init__(self):
        self.cache = ()

    def forward(self, X, W, b, stride=1, padding=1):
        n_filters, _, h_filter, w_filter = W.shape
        n_x, _, h_x, w_x = X.shape
        _output_size(h_x, h_filter, padding, stride)
        _output_size(w_x, w_filter, padding, stride)
        X_col, h_out, w_out = _im2col(X, h_filter, w_filter, padding, stride)
        out = W.reshape(n_filters, -1) @ X_col + b
        self.cache = (X, W, b, stride, padding, X_col)
        return out.reshape(n_filters, h_out, w_out, n_x).transpose(3, 0, 1, 2)

    def backward(self, dout):
        X, W, b, stride, padding, X_col = self.cache
        n_filter, _, h_filter, w_filter = W.shape
        db = np.sum(dout, axis=(0, 2, 3)).reshape(n_filter, -1)
        dout_reshaped = dout.transpose(1, 2, 3, 0).reshape(n_filter, -1)
        dW = (dout_reshaped @ X_col.T).reshape(W.shape)
        dX_col = W.reshape(n_filter, -1).T @ dout_reshaped
        dX = _col2im(dX_col, X.shape, h_filter, w_filter, padding, stride)
        return dX, dW, db


def _maxpool_forward(X, size=2, stride=2):
    """Seed 004's ``maxpool_forward``: ``(out, cache)``; ``out`` ``(N, C, h_out, w_out)``,
    the first maximum of each window wins (``MaxPool2d(size, stride)``'s numbers)."""
    n, d, h, w = X.shape
    h_out, w_out = _output_size(h, size, 0, stride), _output_size(w, size, 0, stride)
    X_col, _, _ = _im2col(X.reshape(n * d, 1, h, w), size, size, 0, stride)
    max_idx = np.argmax(X_col, axis=0)
    out = X_col[max_idx, np.arange(max_idx.size)]
    cache = (X, size, stride, X_col, max_idx)
    return out.reshape(h_out, w_out, n, d).transpose(2, 3, 0, 1), cache


def _maxpool_backward(dout, cache):
    """Seed 004's ``maxpool_backward(dout, cache)``: ``dX`` (the gradient goes to
    each window's first maximum; overlapping windows add up)."""
    X, size, stride, X_col, max_idx = cache
    n, d, h, w = X.shape
    dX_col = np.zeros_like(X_col)
    dX_col[max_idx, np.arange(max_idx.size)] = dout.transpose(2, 3, 0, 1).ravel()
    return _col2im(dX_col, (n * d, 1, h, w), size, size, 0, stride).reshape(X.shape)


def _vanilla_update(x, dx, learning_rate):
    x += -learning_rate * dx
    return x


def _momentum_update(x, dx, v, learning_rate, mu):
    v = mu * v - learning_rate * dx
    x += v
    return x, v


def _adagrad(x, dx, learning_rate, cache, eps):
    cache += dx**2
    x += -learning_rate * dx / (np.sqrt(cache) + eps)
    return x, cache


def _rmsprop(x, dx, learning_rate, cache, eps, decay_rate):
    cache = decay_rate * cache + (1 - decay_rate) * dx**2
    x += -learning_rate * dx / (np.sqrt(cache) + eps)
    return x, cache


def _adam(x, dx, learning_rate, m, v, t, beta1, beta2, eps):
    # the seed's Adam: no bias correction (its lines are commented out); t is accepted and unused
    m = beta1 * m + (1 - beta1) * dx
    v = beta2 * v + (1 - beta2) * (dx**2)
    x += -learning_rate * m / (np.sqrt(v) + eps)
    return x, m, v


seed004 = SimpleNamespace(
    CNN=_Seed004CNN,
    maxpool_forward=_maxpool_forward,
    maxpool_backward=_maxpool_backward,
    VanillaUpdate=_vanilla_update,
    MomentumUpdate=_momentum_update,
    AdaGrad=_adagrad,
    RMSprop=_rmsprop,
    Adam=_adam,
)
seed004.__doc__ = """Seed 004's functions and ``CNN`` with its signatures and numbers
(``from nnumpy.compat import seed004``; docs/seed-dialects.md maps each to nnumpy):
``CNN().forward(X, W, b, stride=1, padding=1)`` / ``.backward(dout) -> (dX, dW, db)``,
``maxpool_forward(X, size=2, stride=2) -> (out, cache)``, ``maxpool_backward(dout, cache)``,
``VanillaUpdate(x, dx, learning_rate)``, ``MomentumUpdate(x, dx, v, learning_rate, mu)``,
``AdaGrad(x, dx, learning_rate, cache, eps)``, ``RMSprop(x, dx, learning_rate, cache, eps, decay_rate)``,
``Adam(x, dx, learning_rate, m, v, t, beta1, beta2, eps)`` (no bias correction, as the seed)."""


def flatten_arrays(arrays):
    """Flatten nested lists of arrays (``getParameters()`` of a container)."""
    flat = []
    for item in arrays:
        if isinstance(item, (list, tuple)):
            flat.extend(flatten_arrays(item))
        else:
            flat.append(item)
    return flat


# --------------------------------------------------------------------- seed 003
class Seed003Optimizer:
    """Seed 003's optimizers, what ``SGD()``, ``Momentum(lr=...)``,
    ``RMSProp(1e-3, 1e-8, 0.9)``, ``Adam(lr=...)`` or ``Nadam(...)`` build
    when given no model or parameters: the seed's signatures, positional
    order, defaults and update rules, called as ``opt(params, gradients)``
    on lists of arrays (flat, or nested as ``getParameters()``), updated in
    place, with state kept across calls by list position.

    Differences from the seed: mismatched list lengths raise a ValueError
    (the seed's ``zip`` stopped silently), and the state grows if a later call
    passes more arrays. ``lr`` and the other arguments are attributes
    (schedules change ``lr``). ``step()`` raises: there is no model.
    """

    model = None
    signature = ""

    @classmethod
    def build(cls, name, *args, **kwargs):
        """The optimizer ``name(*args, **kwargs)`` builds without a model, or a
        TypeError that names both of ``name``'s signatures."""
        try:
            inspect.signature(cls).bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(
                f"{name}: built without a model or parameters this is seed 003's {cls.signature}, called as "
                f"opt(params, grads) ({error}); for torch.optim's {name} pass the model or parameters first: "
                f"{name}(model, ...)"
            ) from None
        return cls(*args, **kwargs)

    def __init__(self, **hyper):
        for key, value in hyper.items():
            setattr(self, key, value)
        self._hyper = tuple(hyper)
        self.state = {}

    def __call__(self, params, gradients):
        params, gradients = flatten_arrays(params), flatten_arrays(gradients)
        if len(params) != len(gradients):
            raise ValueError(f"{self._name}: got {len(params)} parameters but {len(gradients)} gradients")
        for index, (weights, gradient) in enumerate(zip(params, gradients, strict=True)):
            self._update(self.state.setdefault(index, {}), weights, gradient)
        self._after_call()

    def _after_call(self):
        pass

    @property
    def _name(self):
        return self.signature.split("(")[0]

    def step(self):
        raise RuntimeError(
            f"{self._name} was built without a model (seed 003's way): call it as opt(params, grads), "
            f"or build it as {self._name}(model, ...)"
        )

    def zero_grad(self):
        """Nothing to zero: seed 003's optimizers hold no model."""

    def state_dict(self):
        state = {
            i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in e.items()} for i, e in self.state.items()
        }
        return {"hyper": {k: getattr(self, k) for k in self._hyper}, "state": state, "t": getattr(self, "t", None)}

    def load_state_dict(self, state_dict):
        for key, value in state_dict.get("hyper", {}).items():
            if key not in self._hyper:
                raise ValueError(f"{self._name}.load_state_dict: unknown hyper-parameter {key!r}")
            setattr(self, key, value)
        if state_dict.get("t") is not None:
            self.t = int(state_dict["t"])
        self.state = {
            int(i): {str(k): (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in e.items()}
            for i, e in state_dict.get("state", {}).items()
        }

    def __repr__(self):
        return f"{self._name}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._hyper)})"


class Seed003SGD(Seed003Optimizer):
    """Seed 003's ``SGD(lr=1e-3)``: ``w -= lr * g``."""

    signature = "SGD(lr=1e-3)"

    def __init__(self, lr=1e-3):
        super().__init__(lr=lr)

    def _update(self, state, weights, gradient):
        weights -= self.lr * gradient


class Seed003Momentum(Seed003Optimizer):
    """Seed 003's ``Momentum(lr=1e-3, momentum=0.9)``: ``u = momentum * u + lr * g; w -= u``."""

    signature = "Momentum(lr=1e-3, momentum=0.9)"

    def __init__(self, lr=1e-3, momentum=0.9):
        super().__init__(lr=lr, momentum=momentum)

    def _update(self, state, weights, gradient):
        state["u"] = state.get("u", 0) * self.momentum + self.lr * gradient
        weights -= state["u"]


class Seed003RMSProp(Seed003Optimizer):
    """Seed 003's ``RMSProp(lr=1e-3, eps=1e-8, beta=0.9)``:
    ``g2 = beta * g2 + (1 - beta) * g*g; w -= lr * g / sqrt(g2 + eps)`` (the
    ``eps`` inside the root, unlike PyTorch's ``RMSprop``)."""

    signature = "RMSProp(lr=1e-3, eps=1e-8, beta=0.9)"

    def __init__(self, lr=1e-3, eps=1e-8, beta=0.9):
        super().__init__(lr=lr, eps=eps, beta=beta)

    def _update(self, state, weights, gradient):
        state["g"] = state.get("g", 0) * self.beta + gradient * gradient * (1 - self.beta)
        weights -= (self.lr * gradient) / np.sqrt(state["g"] + self.eps)


class Seed003Adam(Seed003Optimizer):
    """Seed 003's ``Adam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)``:
    ``m_hat = m / (1 - beta1**t)``, ``u_hat = u / (1 - beta2**t)``,
    ``w -= lr * m_hat / (sqrt(u_hat) + eps)``; ``t`` (from 1) counts the
    calls, ``reset_t()`` sets it back to 1."""

    signature = "Adam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)"

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        self.t = 1

    def _moments(self, state, gradient):
        state["m"] = self.beta1 * state.get("m", 0) + (1 - self.beta1) * gradient
        state["u"] = self.beta2 * state.get("u", 0) + (1 - self.beta2) * gradient * gradient
        return state["m"] / (1 - self.beta1**self.t), state["u"] / (1 - self.beta2**self.t)

    def _update(self, state, weights, gradient):
        hat_m, hat_u = self._moments(state, gradient)
        weights -= (self.lr * hat_m) / (np.sqrt(hat_u) + self.eps)

    def _after_call(self):
        self.t += 1

    def reset_t(self):
        self.t = 1


class Seed003Nadam(Seed003Adam):
    """Seed 003's ``Nadam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)``:
    ``w -= lr * (beta1 * m_hat + (1 - beta1) * g / (1 - beta1**t)) / (sqrt(u_hat) + eps)``."""

    signature = "Nadam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)"

    def _update(self, state, weights, gradient):
        hat_m, hat_u = self._moments(state, gradient)
        b1 = self.beta1
        weights -= (self.lr * (b1 * hat_m + ((1 - b1) * gradient) / (1 - b1**self.t))) / (np.sqrt(hat_u) + self.eps)
