"""PNG plots of a training run (optional: needs matplotlib, extra ``plot``).

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot
state, no display, safe on servers. Without matplotlib each function prints a
one-line notice (once) and returns None.

Example:
    >>> from nnumpy.training import History
    >>> h = History(); h.append({"loss": 1.0, "accuracy": 0.5, "lr": 0.1, "samples_per_s": 1.0})
    >>> plot_history(h, "curves.png")  # doctest: +SKIP
    'curves.png'
"""

import sys

import numpy as np

__all__ = ["plot_history", "plot_confusion_matrix", "have_matplotlib"]

_notified = False


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(**kwargs):
    """A new Agg-backed Figure, or None (with a one-time notice) without matplotlib."""
    global _notified
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        if not _notified:
            print("plots skipped: matplotlib is not installed (pip install 'nnumpy[plot]')", file=sys.stderr)
            _notified = True
        return None
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _get(history, key):
    data = history.to_dict() if hasattr(history, "to_dict") else history
    return [v for v in (data.get(key) or []) if v is not None]


def plot_history(history, path, title=None):
    """Loss (left) and accuracy (right) per epoch, training and validation,
    from a ``History`` or its ``to_dict()``; writes ``path`` (PNG) and
    returns it."""
    fig = _figure(figsize=(10, 4), dpi=100, layout="constrained")
    if fig is None:
        return None
    from matplotlib.ticker import MaxNLocator

    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        for prefix, style in (("", "o-"), ("val_", "s--")):
            values = _get(history, prefix + key)
            if values:
                name = ("validation " if prefix else "train ") + label
                ax.plot(np.arange(1, len(values) + 1), values, style, label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    test = (history.to_dict() if hasattr(history, "to_dict") else history).get("test_accuracy")
    if test is not None:
        ax_acc.axhline(test, color="grey", lw=1, ls=":", label=f"test {test:.2%}")
        ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.savefig(path, format="png")
    return str(path)


def plot_confusion_matrix(cm, path, class_names=None, title="Confusion matrix (rows: true class)"):
    """Heat map of a confusion matrix with per-row percentages and counts;
    writes ``path`` (PNG) and returns it."""
    cm = np.asarray(cm)
    fig = _figure(figsize=(8, 7), dpi=100, layout="constrained")
    if fig is None:
        return None
    ax = fig.subplots()
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true class")
    names = list(class_names) if class_names is not None else [str(i) for i in range(cm.shape[0])]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if cm.shape[0] <= 20:
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    total = cm.sum()
    ax.set_title(f"{title}\naccuracy {np.trace(cm) / total:.2%} of {total:,}" if total else title)
    fig.savefig(path, format="png")
    return str(path)
