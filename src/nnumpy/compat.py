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

Seed names that are whole classes of a family live with their family (this
module sits below the core, so it imports nothing of nnumpy): the criteria
``MSE`` and ``CrossEntropy`` (``nnumpy.criteria``), the optimizer spellings
``RMSProp``, ``AdaGrad``, ``Nadam`` and seed 003's ``Momentum``
(``nnumpy.optim``), ``BatchNorm`` (``nnumpy.layers.normalization``), seed
004's optimizer names (``nnumpy.training.get_optimizer``).
"""

__all__ = ["SeedModuleDialect"]


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
