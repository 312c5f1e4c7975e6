"""Loss functions (criteria): Torch7's protocol with PyTorch's arguments.

``forward(input, target)`` runs ``updateOutput`` and returns the loss: a
number for ``reduction='mean'`` (the default) or ``'sum'``, an array of
per-sample (or per-element) losses for ``reduction='none'``.
``backward(input, target, gradOutput=None)`` runs ``updateGradInput`` and
returns the gradient w.r.t. ``input``; ``gradOutput`` is the gradient of
whatever ``forward`` returned (an array of the loss's shape for ``'none'``, a
scalar multiplier, default 1, otherwise). Ranking and embedding losses take a
pair ``(x1, x2)`` as input and return a pair of gradients.

Every criterion computes in float64 (its arrays are the size of the network's
output, small next to the network) and hands results back in the input's
dtype: no finite float32 input overflows (huge logits, ``log(0)``), also under
``np.errstate(all='raise')``; a loss beyond the dtype's range comes out as
``inf``. An empty batch (N = 0) is refused with an error naming the criterion.

Classification targets are integer labels ``(N,)`` / ``(N, d1, ...)`` or
class probabilities of the input's shape (one-hot rows, as in the seeds).
"""

import inspect
import warnings

import numpy as np

from ._checks import check_float_array

__all__ = [
    "Criterion",
    "MSECriterion",
    "MSELoss",
    "ClassNLLCriterionUnstable",
    "ClassNLLCriterion",
    "NLLLoss",
    "CrossEntropyCriterion",
    "CrossEntropyLoss",
    "BCECriterion",
    "BCELoss",
    "BCEWithLogitsCriterion",
    "BCEWithLogitsLoss",
    "L1Criterion",
    "L1Loss",
    "SmoothL1Criterion",
    "SmoothL1Loss",
    "HuberCriterion",
    "HuberLoss",
    "KLDivCriterion",
    "KLDivLoss",
    "CosineEmbeddingCriterion",
    "CosineEmbeddingLoss",
    "MarginRankingCriterion",
    "MarginRankingLoss",
    "MultiMarginCriterion",
    "MultiMarginLoss",
    "MSE",
    "CrossEntropy",
]

REDUCTIONS = ("mean", "sum", "none")
_EXP_MAX = 709.0  # exp(709) is float64's largest power of e, far beyond float32
_EXP_MIN = 0.7 * float(np.log(np.finfo(np.float64).tiny))  # exp stays a normal float64


# ------------------------------------------------------------------ numerics
def _wide(x):
    """``x`` as a float64 array (criteria compute in float64)."""
    return np.asarray(x, dtype=np.float64) if getattr(x, "dtype", None) != np.float64 else x


def _narrow(value, dtype):
    """float64 ``value`` in ``dtype``: beyond the dtype's range it is ``inf``,
    below it 0, as IEEE rounding gives, without a floating-point warning (that
    rounding is the intended result here)."""
    value = np.asarray(value)
    if value.dtype != dtype:
        with np.errstate(over="ignore", under="ignore"):
            value = value.astype(dtype)
    return value[()] if value.ndim == 0 else value


def _exp(x):
    """``exp`` with its argument clipped to float64's normal range (no overflow or underflow)."""
    return np.exp(np.clip(x, _EXP_MIN, _EXP_MAX))


def _exp_times(t, d):
    """``exp(t) * d`` as ``sign(d) * exp(t + log|d|)``: no overflow for any finite ``t`` and ``d``."""
    d = np.broadcast_to(d, np.shape(t))
    size = np.log(np.abs(d), out=np.full(np.shape(t), -np.inf), where=d != 0)
    return np.sign(d) * _exp(t + size)


def _softplus(x):
    """``log(1 + exp(x))``, stable for any finite ``x``."""
    return np.maximum(x, 0.0) + np.log1p(_exp(-np.abs(x)))


def _sigmoid(x):
    """``1 / (1 + exp(-x))``, stable for any finite ``x``."""
    e = _exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _log_softmax_rows(x):
    """``x - logsumexp(x)`` over the last axis of a float64 ``(M, C)`` array;
    a row of ``-inf`` (fully masked) gives ``-inf`` without a NaN."""
    top = x.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    shifted = x - top
    return shifted - np.log(_exp(shifted).sum(axis=1, keepdims=True))


def _times(q, x):
    """``q * x`` with 0 wherever ``q`` is 0, also where ``x`` is infinite (``0 * log(0)`` = 0)."""
    return np.multiply(q, x, out=np.zeros(np.broadcast_shapes(q.shape, x.shape)), where=q != 0)


# ------------------------------------------------------------------ the protocol
def _check_reduction(name, reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        choices = ", ".join(repr(r) for r in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise ValueError(f"{name}: reduction must be {choices}, got {reduction!r}")
    return reduction


class Criterion:
    """Base class of losses: ``output`` (the last loss), ``gradInput`` (the last gradient).

    A subclass implements ``updateOutput(input, target)`` (returns the loss)
    and ``updateGradInput(input, target)`` (returns the gradient), plus a
    ``gradOutput`` argument if it supports ``reduction='none'``.
    """

    reduction = "mean"
    _reductions = REDUCTIONS

    def __init__(self, reduction="mean"):
        self.output = None
        self.gradInput = None
        self.reduction = _check_reduction(type(self).__name__, reduction, self._reductions)

    def forward(self, input, target):
        """Compute the loss for ``input`` against ``target`` and return it."""
        self.output = self.updateOutput(input, target)
        return self.output

    def backward(self, input, target, gradOutput=None):
        """Return the gradient of the loss w.r.t. ``input``; ``gradOutput`` is
        the gradient of the loss itself (needed for ``reduction='none'``)."""
        if gradOutput is None:
            self.gradInput = self.updateGradInput(input, target)
        else:
            self.gradInput = self.updateGradInput(input, target, gradOutput)
        return self.gradInput

    def updateOutput(self, input, target):
        raise NotImplementedError

    def updateGradInput(self, input, target, gradOutput=None):
        raise NotImplementedError

    def __call__(self, input, target):
        return self.forward(input, target)

    def __repr__(self):
        try:
            signature = inspect.signature(type(self).__init__)
        except (TypeError, ValueError):
            return f"{type(self).__name__}()"
        args = []
        for name, param in list(signature.parameters.items())[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(self, name):
                continue
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                if value is not param.default:
                    args.append(f"{name}=<array {tuple(value.shape)}>")
            elif value != param.default:
                args.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    # ---- helpers shared by the built-in criteria
    def _check_batch(self, x):
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{self!r}: got an empty batch (input of shape {tuple(x.shape)}); a loss needs N >= 1")

    def _reduce(self, loss, count, dtype):
        """The loss array reduced as ``self.reduction`` says, in ``dtype``.
        ``count``: what ``'mean'`` (or ``'batchmean'``) divides the sum by."""
        if self.reduction == "none":
            return _narrow(loss, dtype)
        with np.errstate(over="ignore"):  # a sum beyond float64's range is inf, and that is the answer
            total = loss.sum()
        if self.reduction != "sum":
            total = total / count if count else np.float64(np.nan)  # nothing to average (all ignored): NaN, as PyTorch
        return _narrow(total, dtype)

    def _upstream(self, gradOutput, shape, count):
        """The gradient w.r.t. each element of the unreduced loss (shape
        ``shape``): a float64 array for 'none', else a number (divided by
        ``count`` for 'mean')."""
        if self.reduction == "none":
            if gradOutput is None:
                raise TypeError(
                    f"{self!r}: with reduction='none' backward needs gradOutput, the gradient of the loss "
                    f"array of shape {tuple(shape)}"
                )
            if tuple(np.shape(gradOutput)) != tuple(shape):
                got = tuple(np.shape(gradOutput))
                raise ValueError(f"{self!r}: expected gradOutput of shape {tuple(shape)} (the loss's), got {got}")
            return _wide(gradOutput)
        g = 1.0 if gradOutput is None else gradOutput
        if np.ndim(g) != 0:
            raise ValueError(
                f"{self!r}: with reduction={self.reduction!r} the loss is a number, so gradOutput must be a "
                f"number, got shape {tuple(np.shape(g))}"
            )
        g = float(g)
        if self.reduction == "sum":
            return g
        return g / count if count else 0.0

    def _check_weight(self, weight, name="weight"):
        if weight is None:
            return None
        w = np.array(weight, dtype=np.float64) if not hasattr(weight, "dtype") else weight
        if w.dtype.kind not in "fiu":
            raise TypeError(f"{type(self).__name__}: {name} must be a float array, got dtype {w.dtype}")
        return w


def _same_shape_target(owner, input, target):
    check_float_array(owner, input)
    if getattr(target, "shape", None) != input.shape:
        got = tuple(target.shape) if hasattr(target, "shape") else type(target).__name__
        raise ValueError(f"{owner!r}: expected target of shape {tuple(input.shape)} (the input's), got {got}")
    if target.dtype.kind not in "fiub":
        raise TypeError(f"{owner!r}: expected a numeric target, got dtype {target.dtype}")
    owner._check_batch(input)
    return _wide(input), _wide(target)


def _broadcast_weight(owner, weight, shape, name="weight"):
    if weight is None:
        return None
    try:
        ok = np.broadcast_shapes(weight.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{owner!r}: {name} of shape {tuple(weight.shape)} does not broadcast to the input's {tuple(shape)}"
        )
    return _wide(weight)


# ------------------------------------------------------------------ regression
class _ElementwiseLoss(Criterion):
    """A loss ``l(x - t)`` per element; 'mean' averages over every element."""

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def updateOutput(self, input, target):
        x, t = _same_shape_target(self, input, target)
        loss = self._loss(x - t)
        return self._reduce(loss, loss.size, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        x, t = _same_shape_target(self, input, target)
        g = self._upstream(gradOutput, x.shape, x.size)
        return _narrow(self._grad(x - t) * g, input.dtype)


class MSECriterion(Criterion):
    """Squared error summed over each sample, averaged over the batch (the
    seeds' definition): ``loss = sum((x - t)**2) / N``.

    Note: PyTorch's ``MSELoss`` (also in nnumpy, as ``MSELoss``) divides by the
    number of *elements* ``N * D``; ``MSECriterion`` equals
    ``MSELoss(reduction='sum') / N``.

    Args:
        reduction: ``'mean'`` (over samples, the default), ``'sum'``, or
            ``'none'``: the ``(N,)`` per-sample losses ``sum((x_n - t_n)**2)``.

    Shape: input and target ``(N, *)``, the same shape; output a scalar, or ``(N,)``.

    Backward: ``2 * (x - t) / N`` (times ``gradOutput[n]`` for ``'none'``).

    Example:
        >>> import numpy as np
        >>> float(MSECriterion().forward(np.ones((2, 3)), np.zeros((2, 3))))
        3.0
    """

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def updateOutput(self, input, target):
        x, t = _same_shape_target(self, input, target)
        d = (x - t).reshape(x.shape[0], -1)
        return self._reduce((d * d).sum(axis=1), x.shape[0], input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        x, t = _same_shape_target(self, input, target)
        g = self._upstream(gradOutput, x.shape[:1], x.shape[0])
        g = np.reshape(g, (-1,) + (1,) * (x.ndim - 1)) if np.ndim(g) else g
        return _narrow(2.0 * (x - t) * g, input.dtype)


class MSELoss(_ElementwiseLoss):
    """PyTorch's ``MSELoss``: ``loss = mean((x - t)**2)`` over every element.

    Unlike ``MSECriterion`` (the seeds' ``sum / N``), ``'mean'`` divides by
    the number of elements ``N * D``.

    Args:
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (element-wise losses, the input's shape).

    Shape: input and target ``(N, *)``, the same shape.

    Backward: ``2 * (x - t) / (N * D)`` for ``'mean'``.

    Example:
        >>> import numpy as np
        >>> float(MSELoss().forward(np.ones((2, 3)), np.zeros((2, 3))))
        1.0
    """

    def _loss(self, d):
        return d * d

    def _grad(self, d):
        return 2.0 * d


class L1Criterion(_ElementwiseLoss):
    """Absolute error ``|x - t|`` (PyTorch's ``L1Loss``, Torch7's ``AbsCriterion``);
    ``'mean'`` averages over every element.

    Shape: input and target ``(N, *)``, the same shape.

    Backward: ``sign(x - t)`` (0 where ``x == t``, as PyTorch), divided by the
    element count for ``'mean'``.

    Example:
        >>> import numpy as np
        >>> float(L1Criterion().forward(np.array([[1.0, -3.0]]), np.zeros((1, 2))))
        2.0
    """

    def _loss(self, d):
        return np.abs(d)

    def _grad(self, d):
        return np.sign(d)


class SmoothL1Criterion(_ElementwiseLoss):
    """Smooth L1 (PyTorch's ``SmoothL1Loss``): ``0.5 * d**2 / beta`` where
    ``|d| < beta``, else ``|d| - 0.5 * beta``, with ``d = x - t``; ``beta=0``
    is the L1 loss.

    Args:
        reduction: ``'mean'`` (over elements), ``'sum'`` or ``'none'``.
        beta: where the loss turns from quadratic to linear (>= 0).

    Shape: input and target ``(N, *)``, the same shape.

    Backward: ``d / beta`` where ``|d| < beta``, else ``sign(d)``.

    Example:
        >>> import numpy as np
        >>> float(SmoothL1Criterion(beta=1.0).forward(np.array([[0.5, 3.0]]), np.zeros((1, 2))))
        1.3125
    """

    def __init__(self, *, reduction="mean", beta=1.0):
        super().__init__(reduction=reduction)
        if not float(beta) >= 0:
            raise ValueError(f"SmoothL1Criterion: beta must be >= 0, got {beta!r}")
        self.beta = float(beta)

    def _loss(self, d):
        a = np.abs(d)
        if self.beta == 0:
            return a
        return np.where(a < self.beta, 0.5 * d * d / self.beta, a - 0.5 * self.beta)

    def _grad(self, d):
        if self.beta == 0:
            return np.sign(d)
        return np.where(np.abs(d) < self.beta, d / self.beta, np.sign(d))


class HuberCriterion(_ElementwiseLoss):
    """Huber loss (PyTorch's ``HuberLoss``): ``0.5 * d**2`` where
    ``|d| <= delta``, else ``delta * (|d| - 0.5 * delta)``, ``d = x - t``
    (``delta`` times ``SmoothL1Criterion(beta=delta)``).

    Args:
        reduction: ``'mean'`` (over elements), ``'sum'`` or ``'none'``.
        delta: where the loss turns from quadratic to linear (> 0).

    Shape: input and target ``(N, *)``, the same shape.

    Backward: ``d`` where ``|d| <= delta``, else ``delta * sign(d)``.

    Example:
        >>> import numpy as np
        >>> float(HuberCriterion(delta=1.0).forward(np.array([[0.5, 3.0]]), np.zeros((1, 2))))
        1.3125
    """

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        if not float(delta) > 0:
            raise ValueError(f"HuberCriterion: delta must be > 0, got {delta!r}")
        self.delta = float(delta)

    def _loss(self, d):
        a = np.abs(d)
        return np.where(a <= self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta))

    def _grad(self, d):
        return np.where(np.abs(d) <= self.delta, d, self.delta * np.sign(d))


# ------------------------------------------------------------------ classification
def _class_last(x):
    """``(N, C, d1, ...)`` as ``(M, C)`` rows, ``M = N * d1 * ...``."""
    return x if x.ndim == 2 else np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


class _ClassificationCriterion(Criterion):
    """Input ``(N, C)`` or ``(N, C, d1, ...)`` against integer labels
    ``(N, d1, ...)`` or class probabilities of the input's shape.

    Every variant is written with per-row class weights ``q`` (``(M, C)``,
    ``M = N * d1 * ...``): the loss of row ``m`` is ``-sum_c q[m, c] *
    log p[m, c]``. For a label ``y``: ``q = w[y] * onehot(y)`` (0 for
    ``ignore_index``), with label smoothing ``eps``: ``(1 - eps) * w[y] *
    onehot(y) + eps / C * w``; for probabilities ``t``: ``q = w * t``.
    ``'mean'`` divides by ``sum(w[y])`` over the rows not ignored (labels) or by
    ``M`` (probabilities), as PyTorch.
    """

    label_smoothing = 0.0

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight = self._check_weight(weight)
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(f"{type(self).__name__}: weight must be 1-D (C,), got shape {tuple(self.weight.shape)}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}: ignore_index must be an integer, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)

    def _check_input(self, input):
        check_float_array(self, input)
        if input.ndim < 2:
            raise ValueError(f"{self!r}: expected input of shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
        self._check_batch(input)

    def _check_values(self, input):
        """Check the input's values once its shapes are known to be right."""

    def _prepare(self, input, target):
        """Validate; return ``(rows, q, shape)``: the input as ``(M, C)`` rows
        (in its dtype), the class weights (``_ClassWeights``), the loss's shape."""
        self._check_input(input)
        n, c = input.shape[:2]
        spatial = tuple(input.shape[2:])
        target = target if hasattr(target, "shape") else np.asarray(target)
        labels_shape = (n, *spatial)
        if target.ndim == input.ndim - 1 and tuple(target.shape) == labels_shape:
            if target.dtype.kind not in "iu":
                raise TypeError(f"{self!r}: label targets must be integers, got dtype {target.dtype}")
        elif tuple(target.shape) != tuple(input.shape):
            got = tuple(target.shape)
            raise ValueError(f"{self!r}: expected target of shape {labels_shape} or {tuple(input.shape)}, got {got}")
        elif target.dtype.kind not in "fiub":
            raise TypeError(f"{self!r}: expected class probabilities as numbers, got dtype {target.dtype}")
        if self.weight is not None and self.weight.shape != (c,):
            raise ValueError(f"{self!r}: weight has shape {tuple(self.weight.shape)}, expected ({c},) for C = {c}")
        w = None if self.weight is None else _wide(self.weight)
        eps = self.label_smoothing
        if target.ndim == input.ndim - 1:
            q = _ClassWeights.of_labels(self, target.reshape(-1), c, w, self.ignore_index, eps)
        else:
            q = _ClassWeights.of_probabilities(_class_last(_wide(target)), w, eps)
        self._check_values(input)
        return _class_last(input), q, labels_shape

    def _rows_to_input(self, grad_rows, input):
        """``(M, C)`` rows back to the input's layout ``(N, C, d1, ...)``, in its dtype."""
        if input.ndim == 2:
            return _narrow(grad_rows, input.dtype)
        n, c = input.shape[:2]
        grad = np.moveaxis(grad_rows.reshape(n, *input.shape[2:], c), -1, 1)
        return np.ascontiguousarray(_narrow(grad, input.dtype))

    @staticmethod
    def _per_row(g):
        """The upstream gradient as a column for ``(M, C)`` rows."""
        return np.reshape(g, (-1, 1)) if np.ndim(g) else g


class _ClassWeights:
    """The per-row class weights ``q`` of the classification losses, the loss
    of row ``m`` being ``-sum_c q[m, c] * v[m, c]`` (``v``: log-probabilities).

    For labels ``q`` stays sparse: ``picked[m]`` at the label ``y[m]``, plus
    the row ``smooth`` (``eps / C * w``) on every row kept (label smoothing);
    no ``(M, C)`` array is made for it. For probabilities ``q`` is dense.
    ``count`` is what ``'mean'`` divides by.
    """

    def __init__(self, m, dense=None, labels=None, keep=None, picked=None, smooth=None, count=0.0):
        self.m, self.dense, self.labels, self.keep, self.picked, self.smooth = m, dense, labels, keep, picked, smooth
        self.count = count

    @classmethod
    def of_labels(cls, owner, labels, c, w, ignore_index, eps):
        keep = labels != ignore_index
        every = bool(keep.all())  # the common case: nothing ignored, no masks to apply
        kept = labels if every else labels[keep]
        if kept.size:
            low, high = kept.min(), kept.max()
            if low < 0 or high >= c:
                raise ValueError(f"{owner!r}: label targets must be in [0, {c - 1}], got values in [{low}, {high}]")
        if every:
            picked = np.full(labels.size, 1.0 - eps) if w is None else (1.0 - eps) * w[labels]
            count = float(labels.size) if w is None else float(w[labels].sum())
        else:
            weights = np.ones(kept.size) if w is None else w[kept]
            picked = np.zeros(labels.size)
            picked[keep] = (1.0 - eps) * weights
            count = float(weights.sum())
            labels = np.where(keep, labels, 0)
        smooth = (eps / c * (np.ones(c) if w is None else w)) if eps else None
        return cls(labels.size, labels=labels, keep=keep, picked=picked, smooth=smooth, count=count)

    @classmethod
    def of_probabilities(cls, t, w, eps):
        if eps:
            t = t * (1.0 - eps) + eps / t.shape[1]
        if w is not None:
            t = t * w
        return cls(t.shape[0], dense=t, count=float(t.shape[0]))

    def row_sums(self):
        """``sum_c q[m, c]`` per row."""
        if self.dense is not None:
            return self.dense.sum(axis=1)
        return self.picked + (self.keep * self.smooth.sum() if self.smooth is not None else 0.0)

    def dot(self, v):
        """``sum_c q[m, c] * v[m, c]`` per row (0 where ``q`` is 0, even if ``v`` is infinite)."""
        if self.dense is not None:
            return _times(self.dense, v).sum(axis=1)
        out = _times(self.picked, v[np.arange(self.m), self.labels])
        if self.smooth is not None:
            out += np.where(self.keep, _times(self.smooth[None, :], v).sum(axis=1), 0.0)
        return out

    def subtract_from(self, out):
        """``out -= q`` in place; returns ``out``."""
        if self.dense is not None:
            out -= self.dense
            return out
        out[np.arange(self.m), self.labels] -= self.picked
        if self.smooth is not None:
            out[self.keep] -= self.smooth
        return out


class ClassNLLCriterion(_ClassificationCriterion):
    """Negative log-likelihood of *log-probabilities* (the output of
    ``LogSoftMax``): ``loss_n = -w[y_n] * x[n, y_n]`` (PyTorch's ``NLLLoss``),
    or ``-sum_c w_c * t[n, c] * x[n, c]`` for one-hot or soft targets ``t``.

    Its input must be log-probabilities: any value above ``1e-4`` (no
    log-probability is positive; the margin covers rounding) raises an error
    pointing to ``ClassNLLCriterionUnstable``, the loss of *probabilities*
    that seed 002's ``ClassNLLCriterion`` was. ``NLLLoss`` is the same loss
    without that check.

    Args:
        weight: ``(C,)`` per-class weights, or None.
        ignore_index: label whose rows count neither in the loss nor in the mean.
        reduction: ``'mean'`` (divided by the summed weights of the labels not
            ignored; by ``N * d1 * ...`` for probability targets), ``'sum'``,
            ``'none'`` (``(N, d1, ...)`` losses).

    Shape: input ``(N, C)`` or ``(N, C, d1, ...)``; target ``(N, d1, ...)``
    integer labels or ``(N, C, d1, ...)`` probabilities (one-hot rows).

    Backward: ``-q`` with ``q = w[y] * onehot(y)`` (``w * t`` for
    probabilities), divided by the 'mean' divisor.

    Example:
        >>> import numpy as np
        >>> logp = np.log(np.array([[0.5, 0.25, 0.25]], np.float32))
        >>> round(float(ClassNLLCriterion().forward(logp, np.array([0]))), 4)
        0.6931
    """

    _check_log_probabilities = True
    LOG_PROBABILITY_MAX = 1e-4

    def _check_values(self, input):
        if self._check_log_probabilities and input.size:
            top = input.max()
            if top > self.LOG_PROBABILITY_MAX:
                raise ValueError(
                    f"{self!r}: expected log-probabilities (every value <= 0, e.g. the output of LogSoftMax), "
                    f"got a value of {float(top):.4g}. For probabilities (the output of SoftMax, what seed 002's "
                    "ClassNLLCriterion took) use ClassNLLCriterionUnstable; for logits use CrossEntropyCriterion"
                )

    def _plain_labels(self, input, target):
        """True for the common case, which needs none of ``_prepare``'s machinery:
        ``(N, C)`` input, ``(N,)`` integer labels all in ``[0, C)``, none equal to
        ``ignore_index``, no weight, reduction 'mean' or 'sum'. Anything else
        (errors included) takes the general path."""
        if (
            type(input) is not np.ndarray or type(target) is not np.ndarray or input.ndim != 2
            or input.dtype.kind != "f" or not input.shape[0] or target.shape != input.shape[:1]
            or target.dtype.kind not in "iu" or self.weight is not None or self.reduction == "none"
            or type(self)._prepare is not _ClassificationCriterion._prepare
        ):
            return False
        c = input.shape[1]
        if target.min() < 0 or target.max() >= c:
            return False
        return not (0 <= self.ignore_index < c and (target == self.ignore_index).any())

    def updateOutput(self, input, target):
        if self._plain_labels(input, target):  # the general path's values, without building q
            self._check_values(input)
            n = input.shape[0]
            return self._reduce(-_wide(input[np.arange(n), target]), float(n), input.dtype)
        rows, q, shape = self._prepare(input, target)  # q is float64: so are the products
        return self._reduce(-q.dot(rows).reshape(shape), q.count, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        if self._plain_labels(input, target):
            self._check_values(input)
            n = input.shape[0]
            grad = np.zeros(input.shape, input.dtype)
            grad[np.arange(n), target] = -self._upstream(gradOutput, (n,), float(n))
            return grad
        rows, q, shape = self._prepare(input, target)
        g = self._upstream(gradOutput, shape, q.count)
        if q.dense is not None:
            return self._rows_to_input(-q.dense * self._per_row(g), input)
        grad = np.zeros(rows.shape, input.dtype)  # one value per row: no float64 (M, C) array needed
        grad[np.arange(q.m), q.labels] = _narrow(-q.picked * (np.reshape(g, -1) if np.ndim(g) else g), input.dtype)
        return self._rows_to_input(grad, input)


class NLLLoss(ClassNLLCriterion):
    """PyTorch's ``NLLLoss``: ``ClassNLLCriterion`` without its check that the
    input holds log-probabilities (any scores are accepted, as in PyTorch).

    Example:
        >>> import numpy as np
        >>> float(NLLLoss().forward(np.array([[2.0, 1.0]]), np.array([0])))
        -2.0
    """

    _check_log_probabilities = False


class CrossEntropyCriterion(_ClassificationCriterion):
    """Softmax and negative log-likelihood fused, on *logits* (PyTorch's
    ``CrossEntropyLoss``): ``loss_n = -sum_c q[n, c] * log_softmax(x)[n, c]``,
    i.e. ``w[y_n] * (logsumexp(x_n) - x[n, y_n])`` for labels.

    Stable for any finite logits (no overflow for ``±3e38`` in float32).

    Args:
        weight: ``(C,)`` per-class weights, or None.
        ignore_index: label whose rows count neither in the loss nor in the mean.
        reduction: ``'mean'`` (divided by the summed weights of the labels not
            ignored; by ``N * d1 * ...`` for probability targets), ``'sum'``,
            ``'none'`` (``(N, d1, ...)`` losses).
        label_smoothing: ``eps`` in [0, 1]: the target becomes
            ``(1 - eps) * target + eps / C``.

    Shape: input ``(N, C)`` or ``(N, C, d1, ...)`` logits; target
    ``(N, d1, ...)`` integer labels or ``(N, C, d1, ...)`` probabilities.

    Backward: ``sum_c(q) * softmax(x) - q`` per row, divided by the 'mean' divisor.

    Example:
        >>> import numpy as np
        >>> crit = CrossEntropyCriterion(label_smoothing=0.1)
        >>> round(float(crit.forward(np.array([[2.0, 0.0, 0.0]]), np.array([0]))), 4)
        0.3729
    """

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, ignore_index=ignore_index, reduction=reduction)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"CrossEntropyCriterion: label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def updateOutput(self, input, target):
        rows, q, shape = self._prepare(input, target)
        return self._reduce(-q.dot(_log_softmax_rows(_wide(rows))).reshape(shape), q.count, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        rows, q, shape = self._prepare(input, target)
        g = self._upstream(gradOutput, shape, q.count)
        grad = _exp(_log_softmax_rows(_wide(rows)))
        grad *= q.row_sums()[:, None]
        return self._rows_to_input(q.subtract_from(grad) * self._per_row(g), input)


class ClassNLLCriterionUnstable(_ClassificationCriterion):
    """Negative log-likelihood of *probabilities*: ``loss_n = -sum_c q[n, c] *
    log(clip(p[n, c], EPS, 1 - EPS))`` (``EPS = 1e-15``), i.e.
    ``-log(p[n, y_n])`` for labels.

    Prefer ``LogSoftMax`` + ``ClassNLLCriterion`` (or ``CrossEntropyCriterion``):
    this one is the seeds' numerically unstable variant.

    Args:
        weight, ignore_index, reduction: as ``ClassNLLCriterion``.

    Shape: input ``(N, C)`` or ``(N, C, d1, ...)`` probabilities; target as
    ``ClassNLLCriterion``.

    Backward: ``-q / clip(p)``, divided by the 'mean' divisor.

    Example:
        >>> import numpy as np
        >>> p = np.array([[0.5, 0.25, 0.25]], np.float32)
        >>> round(float(ClassNLLCriterionUnstable().forward(p, np.array([0]))), 4)
        0.6931
    """

    EPS = 1e-15

    def _clipped(self, rows):
        return np.clip(_wide(rows), self.EPS, 1 - self.EPS)

    def updateOutput(self, input, target):
        rows, q, shape = self._prepare(input, target)
        return self._reduce(-q.dot(np.log(self._clipped(rows))).reshape(shape), q.count, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        rows, q, shape = self._prepare(input, target)
        g = self._upstream(gradOutput, shape, q.count)
        grad = q.subtract_from(np.zeros(rows.shape))
        grad /= self._clipped(rows)
        return self._rows_to_input(grad * self._per_row(g), input)


class MultiMarginCriterion(Criterion):
    """Multi-class hinge loss (PyTorch's ``MultiMarginLoss``):
    ``loss_n = sum_{i != y} w[y] * max(0, margin - x[n, y] + x[n, i])**p / C``.

    Args:
        p: 1 or 2. margin: the margin (default 1). weight: ``(C,)`` per-class
            weights, or None.
        reduction: ``'mean'`` (over samples), ``'sum'`` or ``'none'`` (``(N,)``).

    Shape: input ``(N, C)``; target ``(N,)`` integer labels.

    Backward: with ``z_i = margin - x_y + x_i`` and the active terms ``z_i > 0``:
    ``d/dx_i = w[y] * p * z_i**(p-1) / C``, ``d/dx_y = -sum_i d/dx_i``.

    Example:
        >>> import numpy as np
        >>> round(float(MultiMarginCriterion().forward(np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([3]))), 4)
        0.325
    """

    def __init__(self, p=1, margin=1.0, weight=None, *, reduction="mean"):
        super().__init__(reduction)
        if p not in (1, 2) or isinstance(p, bool):
            raise ValueError(f"MultiMarginCriterion: p must be 1 or 2, got {p!r}")
        self.p = int(p)
        self.margin = float(margin)
        self.weight = self._check_weight(weight)

    def _prepare(self, input, target):
        check_float_array(self, input)
        if input.ndim != 2:
            raise ValueError(f"{self!r}: expected input of shape (N, C), got {tuple(input.shape)}")
        self._check_batch(input)
        n, c = input.shape
        target = target if hasattr(target, "shape") else np.asarray(target)
        if tuple(target.shape) != (n,):
            raise ValueError(f"{self!r}: expected target of shape ({n},), got {tuple(target.shape)}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: label targets must be integers, got dtype {target.dtype}")
        if target.min() < 0 or target.max() >= c:
            raise ValueError(
                f"{self!r}: label targets must be in [0, {c - 1}], got values in [{target.min()}, {target.max()}]"
            )
        if self.weight is not None and self.weight.shape != (c,):
            raise ValueError(f"{self!r}: weight has shape {tuple(self.weight.shape)}, expected ({c},) for C = {c}")
        x = _wide(input)
        rows = np.arange(n)
        z = self.margin - x[rows, target][:, None] + x
        active = z > 0
        active[rows, target] = False
        scale = (1.0 if self.weight is None else _wide(self.weight)[target][:, None]) / c
        return z, active, scale, rows, target

    def updateOutput(self, input, target):
        z, active, scale, _, _ = self._prepare(input, target)
        zp = z if self.p == 1 else z * z
        loss = (np.where(active, zp, 0.0) * scale).sum(axis=1)
        return self._reduce(loss, loss.size, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        z, active, scale, rows, target = self._prepare(input, target)
        g = self._upstream(gradOutput, (z.shape[0],), z.shape[0])
        coef = np.where(active, 1.0 if self.p == 1 else 2.0 * z, 0.0) * scale
        coef[rows, target] = -coef.sum(axis=1)
        return _narrow(coef * (np.reshape(g, (-1, 1)) if np.ndim(g) else g), input.dtype)


# ------------------------------------------------------------------ binary
class BCECriterion(Criterion):
    """Binary cross-entropy of *probabilities* (PyTorch's ``BCELoss``):
    ``loss = -w * (t * log(x) + (1 - t) * log(1 - x))``, each log clamped at
    ``-100`` as PyTorch does (so ``x = 0`` or ``1`` gives a finite loss).

    Args:
        weight: rescaling weight broadcastable to the input, or None.
        reduction: ``'mean'`` (over elements), ``'sum'`` or ``'none'``.

    Shape: input (values in [0, 1], e.g. the output of ``Sigmoid``) and target
    ``(N, *)``, the same shape.

    Backward: ``w * (x - t) / max(x * (1 - x), 1e-12)`` (PyTorch's formula).

    Example:
        >>> import numpy as np
        >>> round(float(BCECriterion().forward(np.array([0.8, 0.3]), np.array([1.0, 0.0]))), 4)
        0.2899
    """

    EPS = 1e-12

    def __init__(self, weight=None, *, reduction="mean"):
        super().__init__(reduction)
        self.weight = self._check_weight(weight)

    def _prepare(self, input, target):
        x, t = _same_shape_target(self, input, target)
        if x.size and not (x.min() >= 0 and x.max() <= 1):
            raise ValueError(
                f"{self!r}: expected probabilities in [0, 1] (e.g. the output of Sigmoid), got values in "
                f"[{float(np.nanmin(x)):.4g}, {float(np.nanmax(x)):.4g}]; for logits use BCEWithLogitsCriterion"
            )
        return x, t, _broadcast_weight(self, self.weight, x.shape)

    @staticmethod
    def _clamped_log(v):
        return np.maximum(np.log(v, out=np.full_like(v, -np.inf), where=v > 0), -100.0)

    def updateOutput(self, input, target):
        x, t, w = self._prepare(input, target)
        loss = -(t * self._clamped_log(x) + (1 - t) * self._clamped_log(1 - x))
        if w is not None:
            loss = loss * w
        return self._reduce(loss, loss.size, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        x, t, w = self._prepare(input, target)
        g = self._upstream(gradOutput, x.shape, x.size)
        grad = (x - t) / np.maximum(x * (1 - x), self.EPS)
        if w is not None:
            grad = grad * w
        return _narrow(grad * g, input.dtype)


class BCEWithLogitsCriterion(Criterion):
    """Sigmoid and binary cross-entropy fused, on *logits* (PyTorch's
    ``BCEWithLogitsLoss``):
    ``loss = w * (pos_weight * t * softplus(-x) + (1 - t) * softplus(x))``,
    stable for any finite logits.

    Args:
        weight: rescaling weight broadcastable to the input, or None.
        reduction: ``'mean'`` (over elements), ``'sum'`` or ``'none'``.
        pos_weight: weight of the positive term, broadcastable to the input
            (usually ``(C,)``, one per class along the last axis), or None.

    Shape: input and target ``(N, *)``, the same shape.

    Backward: ``w * (sigmoid(x) * (pos_weight * t + 1 - t) - pos_weight * t)``.

    Example:
        >>> import numpy as np
        >>> round(float(BCEWithLogitsCriterion().forward(np.array([2.0, -1.0]), np.array([1.0, 0.0]))), 4)
        0.2201
    """

    def __init__(self, weight=None, *, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.weight = self._check_weight(weight)
        self.pos_weight = self._check_weight(pos_weight, "pos_weight")

    def _prepare(self, input, target):
        x, t = _same_shape_target(self, input, target)
        w = _broadcast_weight(self, self.weight, x.shape)
        pw = _broadcast_weight(self, self.pos_weight, x.shape, "pos_weight")
        return x, t, w, (t if pw is None else pw * t)

    def updateOutput(self, input, target):
        x, t, w, pos = self._prepare(input, target)
        loss = pos * _softplus(-x) + (1 - t) * _softplus(x)
        if w is not None:
            loss = loss * w
        return self._reduce(loss, loss.size, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        x, t, w, pos = self._prepare(input, target)
        g = self._upstream(gradOutput, x.shape, x.size)
        grad = _sigmoid(x) * (pos + 1 - t) - pos
        if w is not None:
            grad = grad * w
        return _narrow(grad * g, input.dtype)


# ------------------------------------------------------------------ distributions
class KLDivCriterion(Criterion):
    """Kullback-Leibler divergence of a target distribution from the
    *log-probabilities* ``x`` (PyTorch's ``KLDivLoss``):
    ``loss = t * (log(t) - x)`` element-wise (0 where ``t = 0``), or
    ``exp(t) * (t - x)`` with ``log_target=True`` (``t`` given as log-probabilities).

    Args:
        reduction: ``'mean'`` (over every element, PyTorch's default, which is
            not the KL divergence), ``'batchmean'`` (sum / N: the KL divergence
            per sample), ``'sum'`` or ``'none'``.
        log_target: the target holds log-probabilities.

    Shape: input and target ``(N, *)``, the same shape.

    Backward: ``-t`` (``-exp(t)`` with ``log_target``), divided by the element
    count for ``'mean'``, by ``N`` for ``'batchmean'``.

    Example:
        >>> import numpy as np
        >>> p = np.array([[0.5, 0.5]])
        >>> float(KLDivCriterion(reduction="batchmean").forward(np.log(p), p))
        0.0
    """

    _reductions = ("mean", "batchmean", "sum", "none")

    def __init__(self, *, reduction="mean", log_target=False):
        super().__init__(reduction)
        self.log_target = bool(log_target)

    def _prepare(self, input, target):
        x, t = _same_shape_target(self, input, target)
        if not self.log_target and t.size and t.min() < 0:
            raise ValueError(
                f"{self!r}: expected target probabilities (>= 0), got a value of {float(t.min()):.4g}; "
                "for log-probabilities pass log_target=True"
            )
        count = x.shape[0] if self.reduction == "batchmean" else x.size
        return x, t, count

    def updateOutput(self, input, target):
        x, t, count = self._prepare(input, target)
        if self.log_target:
            loss = _exp_times(t, t - x)
        else:
            loss = _times(t, np.log(t, out=np.zeros_like(t), where=t > 0) - x)
        return self._reduce(loss, count, input.dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        x, t, count = self._prepare(input, target)
        g = self._upstream(gradOutput, x.shape, count)
        grad = -_exp_times(t, g) if self.log_target else -t * g
        return _narrow(grad, input.dtype)


# ------------------------------------------------------------------ pairs
def _pair(owner, input):
    """``(x1, x2)``: two float arrays of the same shape."""
    if not isinstance(input, (tuple, list)) or len(input) != 2:
        got = type(input).__name__
        if isinstance(input, (tuple, list)):
            got = f"a {got} of length {len(input)}"
        raise TypeError(f"{owner!r}: expected input (x1, x2), a pair of arrays, got {got}")
    x1, x2 = input
    check_float_array(owner, x1, "x1")
    check_float_array(owner, x2, "x2")
    if x1.shape != x2.shape:
        raise ValueError(f"{owner!r}: x1 and x2 must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
    owner._check_batch(x1)
    return x1, x2


def _signs(owner, target, shape):
    """The ``±1`` target of shape ``shape`` as float64."""
    target = target if hasattr(target, "shape") else np.asarray(target)
    if tuple(target.shape) != tuple(shape):
        raise ValueError(f"{owner!r}: expected target of shape {tuple(shape)}, got {tuple(target.shape)}")
    if target.dtype.kind not in "fiu" or not np.all((target == 1) | (target == -1)):
        raise ValueError(f"{owner!r}: target values must be 1 or -1")
    return _wide(target)


class MarginRankingCriterion(Criterion):
    """Ranking hinge loss (PyTorch's ``MarginRankingLoss``): for a pair
    ``(x1, x2)`` and ``y = 1`` (x1 should rank higher) or ``-1``,
    ``loss = max(0, -y * (x1 - x2) + margin)``.

    Args:
        margin: the margin (default 0).
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the input's shape).

    Shape: input a pair ``(x1, x2)`` of ``(N,)`` arrays (or any same shape);
    target ``(N,)`` of ``±1``. ``backward`` returns a pair.

    Backward: where ``-y * (x1 - x2) + margin >= 0`` (PyTorch's clamp
    gradient): ``-y`` for ``x1``, ``y`` for ``x2``; else 0.

    Example:
        >>> import numpy as np
        >>> crit = MarginRankingCriterion(margin=0.5)
        >>> float(crit.forward((np.array([1.0, 0.0]), np.array([0.0, 1.0])), np.array([1, 1])))
        0.75
    """

    def __init__(self, margin=0.0, *, reduction="mean"):
        super().__init__(reduction)
        self.margin = float(margin)

    def _prepare(self, input, target):
        x1, x2 = _pair(self, input)
        y = _signs(self, target, x1.shape)
        return x1.dtype, y, -y * (_wide(x1) - _wide(x2)) + self.margin

    def updateOutput(self, input, target):
        dtype, _, z = self._prepare(input, target)
        loss = np.maximum(z, 0.0)
        return self._reduce(loss, loss.size, dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        dtype, y, z = self._prepare(input, target)
        g = self._upstream(gradOutput, z.shape, z.size)
        grad = np.where(z >= 0, -y, 0.0) * g
        return _narrow(grad, dtype), _narrow(-grad, dtype)


class CosineEmbeddingCriterion(Criterion):
    """Cosine embedding loss (PyTorch's ``CosineEmbeddingLoss``): with
    ``cos = x1 . x2 / sqrt((|x1|^2 + 1e-12) * (|x2|^2 + 1e-12))`` per row,
    ``loss = 1 - cos`` for ``y = 1`` (similar) and ``max(0, cos - margin)`` for
    ``y = -1``.

    Args:
        margin: in [-1, 1], 0 to 0.5 suggested (default 0).
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``(N,)``).

    Shape: input a pair ``(x1, x2)`` of ``(N, D)`` arrays; target ``(N,)`` of
    ``±1``. ``backward`` returns a pair.

    Backward: ``dcos/dx1 = x2 / sqrt(m1 * m2) - cos * x1 / m1`` (``m = |x|^2 +
    1e-12``), times ``-1`` (``y = 1``) or ``1`` where ``cos >= margin`` (``y = -1``).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0]])
        >>> round(float(CosineEmbeddingCriterion().forward((x, x), np.array([1]))), 6)
        0.0
    """

    EPS = 1e-12

    def __init__(self, margin=0.0, *, reduction="mean"):
        super().__init__(reduction)
        self.margin = float(margin)

    def _prepare(self, input, target):
        x1, x2 = _pair(self, input)
        if x1.ndim != 2:
            raise ValueError(f"{self!r}: expected x1 and x2 of shape (N, D), got {tuple(x1.shape)}")
        y = _signs(self, target, x1.shape[:1])
        a, b = _wide(x1), _wide(x2)
        m1 = (a * a).sum(axis=1) + self.EPS
        m2 = (b * b).sum(axis=1) + self.EPS
        denom = np.sqrt(m1) * np.sqrt(m2)
        cos = (a * b).sum(axis=1) / denom
        return x1.dtype, y, a, b, m1, m2, denom, cos

    def updateOutput(self, input, target):
        dtype, y, *_, cos = self._prepare(input, target)
        loss = np.where(y == 1, 1.0 - cos, np.maximum(cos - self.margin, 0.0))
        return self._reduce(loss, loss.size, dtype)

    def updateGradInput(self, input, target, gradOutput=None):
        dtype, y, a, b, m1, m2, denom, cos = self._prepare(input, target)
        g = self._upstream(gradOutput, cos.shape, cos.size)
        dcos = np.where(y == 1, -1.0, np.where(cos - self.margin >= 0, 1.0, 0.0)) * g
        dcos = dcos[:, None]
        grad1 = dcos * (b / denom[:, None] - cos[:, None] * a / m1[:, None])
        grad2 = dcos * (a / denom[:, None] - cos[:, None] * b / m2[:, None])
        return _narrow(grad1, dtype), _narrow(grad2, dtype)


# ------------------------------------------------------------------ PyTorch's names
# Aliases where the meaning is identical (same arguments, defaults and numbers).
# MSELoss and NLLLoss are classes of their own: their meaning differs from
# MSECriterion (element mean vs the seeds' sum / N) and ClassNLLCriterion
# (which refuses probabilities).
CrossEntropyLoss = CrossEntropyCriterion
BCELoss = BCECriterion
BCEWithLogitsLoss = BCEWithLogitsCriterion
L1Loss = L1Criterion
SmoothL1Loss = SmoothL1Criterion
HuberLoss = HuberCriterion
KLDivLoss = KLDivCriterion
CosineEmbeddingLoss = CosineEmbeddingCriterion
MarginRankingLoss = MarginRankingCriterion
MultiMarginLoss = MultiMarginCriterion


# ------------------------------------------------------------------ seed 003's names
class MSE(MSECriterion):
    """Seed 003's name for ``MSECriterion`` (same numbers)."""


class CrossEntropy(ClassNLLCriterionUnstable):
    """Seed 003's ``CrossEntropy``: cross-entropy of *probabilities* (the output
    of ``SoftMax``), ``-mean(sum(t * log(clip(p, 1e-9, 1 - 1e-9))))``.

    The loss is the batch mean (the seed returned one loss per sample, which
    ``reduction='none'`` gives). Because PyTorch users hand a "cross entropy"
    logits, it warns once per instance when the input rows do not sum to 1 and
    points to ``CrossEntropyCriterion``, which takes logits.

    Shape: input ``(N, C)`` probabilities; target ``(N, C)`` or ``(N,)`` labels.
    """

    EPS = 1e-9

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(weight, ignore_index=ignore_index, reduction=reduction)
        self._warned = False

    def _prepare(self, input, target):
        prepared = super()._prepare(input, target)
        if not self._warned:
            rows = _wide(prepared[0])
            if np.abs(rows.sum(axis=1) - 1).max() > 1e-3 * rows.shape[1] or (rows < 0).any():
                self._warned = True
                warnings.warn(
                    "CrossEntropy expects probabilities (rows summing to 1, e.g. the output of SoftMax); "
                    "these rows do not sum to 1. For logits use CrossEntropyCriterion.",
                    UserWarning,
                    stacklevel=4,
                )
        return prepared
