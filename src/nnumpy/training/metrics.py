"""Classification metrics: accuracy, confusion matrix, per-class precision,
recall and F1.

Every function takes labels ``(N,)`` or scores ``(N, C)`` (log-probabilities,
probabilities, logits or one-hot rows: the arg-max is the label) for both the
truth and the prediction.

Example:
    >>> import numpy as np
    >>> y_true = np.array([0, 1, 2, 2])
    >>> scores = np.array([[.9, .1, 0], [.2, .7, .1], [.1, .1, .8], [.6, .3, .1]])
    >>> accuracy(y_true, scores)
    0.75
    >>> confusion_matrix(y_true, scores).tolist()
    [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
"""

import numpy as np

__all__ = ["labels_of", "accuracy", "confusion_matrix", "precision_recall_f1", "classification_report"]


def labels_of(y):
    """Integer labels from labels ``(N,)`` or scores/one-hot rows ``(N, C)``."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(f"expected labels of shape (N,) or scores of shape (N, C), got {y.shape}")
    if y.size and y.dtype.kind not in "iub":
        if not np.all(y == np.round(y)):
            raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def _pair(y_true, y_pred):
    t, p = labels_of(y_true), labels_of(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} samples but y_pred has {p.shape[0]}")
    return t, p


def accuracy(y_true, y_pred):
    """Fraction of samples whose predicted label equals the true one (0.0 for no samples)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else 0.0


def confusion_matrix(y_true, y_pred, num_classes=None):
    """``(C, C)`` int64 counts: row = true class, column = predicted class."""
    t, p = _pair(y_true, y_pred)
    if num_classes is None:
        num_classes = max(
            int(t.max(initial=-1)) + 1,
            int(p.max(initial=-1)) + 1,
            np.shape(y_pred)[1] if np.ndim(y_pred) == 2 else 0,
        )
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes - 1}]")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def precision_recall_f1(cm):
    """Per-class ``(precision, recall, f1, support)`` arrays from a confusion
    matrix; a class never predicted (or absent) gets 0, not NaN."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support.astype(np.int64)


def classification_report(y_true=None, y_pred=None, class_names=None, cm=None, digits=4):
    """A text table: one row per class (precision, recall, F1, support), then
    accuracy and the macro averages. Pass labels/scores or a confusion matrix ``cm``."""
    if cm is None:
        cm = confusion_matrix(y_true, y_pred)
    cm = np.asarray(cm)
    precision, recall, f1, support = precision_recall_f1(cm)
    names = list(class_names) if class_names is not None else [str(i) for i in range(cm.shape[0])]
    width = max(12, *(len(n) for n in names))
    head = f"{'class':>{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>8}"
    lines = [head, "-" * len(head)]
    for i, name in enumerate(names):
        p, r, f = precision[i], recall[i], f1[i]
        lines.append(f"{name:>{width}}  {p:9.{digits}f}  {r:9.{digits}f}  {f:9.{digits}f}  {support[i]:8d}")
    total = int(cm.sum())
    acc = float(np.trace(cm) / total) if total else 0.0
    lines.append("-" * len(head))
    lines.append(f"{'accuracy':>{width}}  {'':9}  {'':9}  {acc:9.{digits}f}  {total:8d}")
    lines.append(
        f"{'macro avg':>{width}}  {precision.mean():9.{digits}f}  {recall.mean():9.{digits}f}  "
        f"{f1.mean():9.{digits}f}  {total:8d}"
    )
    return "\n".join(lines)
