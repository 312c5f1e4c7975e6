"""Training: the loop (``fit``, ``evaluate``, ``predict``, ``Trainer``), its
callbacks, the ``History`` it returns, and classification metrics.

``fit(model, criterion, optimizer, (X, y), val_data=(Xv, yv), epochs=10)``
runs the loop the seeds write by hand: shuffled mini-batches, ``zero_grad``,
forward, loss, backward, optimizer step, with per-step and per-epoch metrics,
a tqdm progress bar (only on a terminal) and one summary line per epoch.

Files: ``loop.py`` (``Trainer`` and the functions), ``callbacks.py``,
``history.py``, ``metrics.py``. Data-parallel training over MPI is
``nnumpy.distributed.fit``.
"""

from .callbacks import Callback, EarlyStopping, GradientClipping, ModelCheckpoint, clip_grad_norm
from .history import History
from .loop import (
    Trainer,
    TrainingDivergedError,
    default_criterion,
    evaluate,
    fit,
    get_optimizer,
    is_array_pair,
    predict,
)
from .metrics import accuracy, classification_report, confusion_matrix, labels_of, precision_recall_f1

__all__ = [
    "fit",
    "evaluate",
    "predict",
    "Trainer",
    "TrainingDivergedError",
    "History",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "GradientClipping",
    "clip_grad_norm",
    "get_optimizer",
    "default_criterion",
    "is_array_pair",
    "accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "classification_report",
    "labels_of",
]
