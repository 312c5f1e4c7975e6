"""Loss functions (criteria), all averaged over the batch.

``forward(input, target)`` runs ``updateOutput`` and returns the scalar loss;
``backward(input, target)`` runs ``updateGradInput`` and returns the gradient
w.r.t. ``input``. Classification targets may be one-hot (or soft) matrices
``(N, C)``, as in the seeds, or integer label vectors ``(N,)``, as PyTorch
users pass them.
"""

import warnings

import numpy as np

from ._checks import check_float_array
from .layers.activation import log_softmax, safe_exp

__all__ = [
    "Criterion",
    "MSECriterion",
    "ClassNLLCriterionUnstable",
    "ClassNLLCriterion",
    "CrossEntropyCriterion",
    "MSE",
    "CrossEntropy",
]


class Criterion:
    """Base class of losses: ``output`` (the last loss), ``gradInput``."""

    def __init__(self):
        self.output = None
        self.gradInput = None

    def forward(self, input, target):
        """Compute the loss for ``input`` against ``target`` and return it."""
        self.output = self.updateOutput(input, target)
        return self.output

    def backward(self, input, target):
        """Return the gradient of the loss w.r.t. ``input``."""
        self.gradInput = self.updateGradInput(input, target)
        return self.gradInput

    def updateOutput(self, input, target):
        raise NotImplementedError

    def updateGradInput(self, input, target):
        raise NotImplementedError

    def __call__(self, input, target):
        return self.forward(input, target)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _ClassificationCriterion(Criterion):
    """Validates ``(N, C)`` input against one-hot ``(N, C)`` or label ``(N,)`` targets."""

    def _check(self, input, target):
        check_float_array(self, input)
        if input.ndim != 2:
            raise ValueError(f"{self!r}: expected input of shape (N, C), got {tuple(input.shape)}")
        target = np.asarray(target) if not hasattr(target, "shape") else target
        n, c = input.shape
        if target.ndim == 1:
            if target.shape[0] != n:
                raise ValueError(f"{self!r}: expected target of shape ({n},) or ({n}, {c}), got {tuple(target.shape)}")
            if target.dtype.kind not in "iu":
                raise TypeError(f"{self!r}: label targets must be integers, got dtype {target.dtype}")
            if n and (target.min() < 0 or target.max() >= c):
                raise ValueError(
                    f"{self!r}: label targets must be in [0, {c - 1}], got values in [{target.min()}, {target.max()}]"
                )
        elif tuple(target.shape) != (n, c):
            raise ValueError(f"{self!r}: expected target of shape ({n},) or ({n}, {c}), got {tuple(target.shape)}")
        return target

    @staticmethod
    def _picked(input, target):
        """``sum(target * input, axis=1)`` for one-hot targets, ``input[i, t_i]`` for labels."""
        if target.ndim == 1:
            return input[np.arange(input.shape[0]), target]
        return (target * input).sum(axis=1)

    @staticmethod
    def _scatter(target, like, scale):
        """``scale * onehot(target)`` in ``like``'s dtype and shape."""
        if target.ndim == 1:
            out = np.zeros_like(like)
            out[np.arange(like.shape[0]), target] = scale
            return out
        return (target * scale).astype(like.dtype, copy=False)


class MSECriterion(Criterion):
    """Sum of squared errors divided by the batch size (the seeds' definition):
    ``loss = sum((x - t)**2) / N``.

    Note: PyTorch's ``MSELoss`` divides by the number of *elements*
    (``N * D``); this equals ``MSELoss(reduction='sum') / N``.

    Shape: input and target ``(N, *)``, the same shape; output a scalar.

    Backward: ``2 * (x - t) / N``.
    """

    def _check(self, input, target):
        check_float_array(self, input)
        if getattr(target, "shape", None) != input.shape:
            got = getattr(target, "shape", type(target).__name__)
            raise ValueError(f"{self!r}: expected target of shape {tuple(input.shape)} (the input's), got {got}")

    def updateOutput(self, input, target):
        self._check(input, target)
        diff = input - target
        return input.dtype.type(np.sum(diff * diff) / input.shape[0])

    def updateGradInput(self, input, target):
        self._check(input, target)
        # a float64 target must not upcast a float32 gradient
        return (input - target.astype(input.dtype, copy=False)) * input.dtype.type(2.0 / input.shape[0])


class ClassNLLCriterionUnstable(_ClassificationCriterion):
    """Negative log-likelihood of *probabilities*: ``-mean(log(p[target]))``,
    with ``p`` clipped to ``[EPS, 1 - EPS]`` (``EPS = 1e-15``).

    Prefer ``LogSoftMax`` + ``ClassNLLCriterion`` (or ``CrossEntropyCriterion``):
    this one is the seeds' numerically unstable variant.

    Shape: input ``(N, C)`` probabilities; target ``(N, C)`` one-hot or ``(N,)`` labels.

    Backward: ``-target / clip(p) / N``.
    """

    EPS = 1e-15

    def _clipped(self, input):
        return np.clip(input, self.EPS, 1 - self.EPS)

    def updateOutput(self, input, target):
        target = self._check(input, target)
        picked = self._picked(np.log(self._clipped(input)), target)
        return input.dtype.type(-picked.sum() / input.shape[0])

    def updateGradInput(self, input, target):
        target = self._check(input, target)
        return -self._scatter(target, input, 1.0 / input.shape[0]) / self._clipped(input)


class ClassNLLCriterion(_ClassificationCriterion):
    """Negative log-likelihood of *log-probabilities* (the output of
    ``LogSoftMax``): ``loss = -mean(x[i, target_i])``, PyTorch's ``NLLLoss``.

    Shape: input ``(N, C)``; target ``(N, C)`` one-hot (or soft) or ``(N,)`` labels.

    Backward: ``-target / N``.
    """

    def updateOutput(self, input, target):
        target = self._check(input, target)
        return input.dtype.type(-self._picked(input, target).sum() / input.shape[0])

    def updateGradInput(self, input, target):
        target = self._check(input, target)
        return self._scatter(target, input, -1.0 / input.shape[0])


class CrossEntropyCriterion(_ClassificationCriterion):
    """Softmax + negative log-likelihood fused, on *logits* (PyTorch's
    ``CrossEntropyLoss``): ``loss = mean(logsumexp(x) - x[target])``.

    Stable for huge logits. With soft targets ``t`` (rows summing to 1) the loss
    is ``-mean(sum(t * log_softmax(x)))``.

    Shape: input ``(N, C)`` logits; target ``(N, C)`` or ``(N,)`` labels.

    Backward: ``(softmax(x) - onehot(target)) / N``.
    """

    def updateOutput(self, input, target):
        target = self._check(input, target)
        return input.dtype.type(-self._picked(log_softmax(input), target).sum() / input.shape[0])

    def updateGradInput(self, input, target):
        target = self._check(input, target)
        n = input.shape[0]
        e = safe_exp(input - input.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        if target.ndim == 2:
            probs = probs * target.sum(axis=1, keepdims=True).astype(input.dtype, copy=False)
        return (probs - self._scatter(target, input, 1.0)) / input.dtype.type(n)


class MSE(MSECriterion):
    """Seed 003's name for ``MSECriterion`` (same numbers)."""


class CrossEntropy(ClassNLLCriterionUnstable):
    """Seed 003's ``CrossEntropy``: cross-entropy of *probabilities* (the output
    of ``SoftMax``), ``-mean(sum(t * log(clip(p, 1e-9, 1 - 1e-9))))``.

    The loss is the batch mean (the seed returned one loss per sample; that
    quirk is not copied). Because PyTorch users hand a "cross entropy" logits,
    it warns once per instance when the input rows do not sum to 1 and points
    to ``CrossEntropyCriterion``, which takes logits.

    Shape: input ``(N, C)`` probabilities; target ``(N, C)`` or ``(N,)`` labels.
    """

    EPS = 1e-9

    def __init__(self):
        super().__init__()
        self._warned = False

    def _check(self, input, target):
        target = super()._check(input, target)
        if not self._warned and input.size:
            sums = input.sum(axis=1)
            if np.abs(sums - 1).max() > 1e-3 * input.shape[1] or (input < 0).any():
                self._warned = True
                warnings.warn(
                    "CrossEntropy expects probabilities (rows summing to 1, e.g. the output of SoftMax); "
                    "these rows do not sum to 1. For logits use CrossEntropyCriterion.",
                    UserWarning,
                    stacklevel=4,
                )
        return target
