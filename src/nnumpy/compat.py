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

Seed names that are whole classes of a family live with their family (this
module sits below the core, so it imports nothing of nnumpy): the criteria
``MSE`` and ``CrossEntropy`` (``nnumpy.criteria``), the optimizer spellings
``RMSProp``, ``AdaGrad``, ``Nadam``, ``Momentum`` and seed 003's optimizers
built without a model (``Seed003Optimizer`` and its subclasses, in
``nnumpy.optim``), ``BatchNorm`` (``nnumpy.layers.normalization``), seed
004's optimizer names (``nnumpy.training.get_optimizer``).
"""

import math

import numpy as np

__all__ = ["SeedModuleDialect", "sgd_momentum", "adam_optimizer"]


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
