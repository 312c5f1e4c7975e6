"""nnumpy: a modular neural-network library on NumPy with explicit backward
passes, in the Torch7 ``nn`` tradition.

``from nnumpy import *`` gives the seeds' API: ``Module``, ``Sequential``, the
layers, the criteria, the functional optimizers ``sgd_momentum`` /
``adam_optimizer`` and the optimizer classes.
"""

from . import init, interop, onnx  # noqa: F401  (kept out of __all__: `import *` must not shadow the onnx package)
from ._version import __version__  # noqa: F401
from .anomaly import NonFiniteError, detect_anomaly, is_anomaly_enabled
from .backend import get_array_module, manual_seed
from .containers import (
    CAddTable,
    CMulTable,
    Concat,
    ConcatTable,
    CSubTable,
    JoinTable,
    ParallelTable,
    Residual,
    SelectTable,
    Sequential,
    SplitTable,
)
from .criteria import *  # noqa: F403
from .criteria import __all__ as _criteria_all
from .data import DataLoader, DatasetError, load_dataset, load_fashion_mnist, load_mnist, load_sample, one_hot
from .gradcheck import GradcheckError, gradcheck
from .graph import Graph, Input, Node
from .io import load_checkpoint, load_model, register_module, save_checkpoint, save_model
from .kernels import tune_process  # noqa: F401  (an explicit call: importing nnumpy tunes nothing)
from .layers import *  # noqa: F403
from .layers import __all__ as _layers_all
from .layers.attention import scaled_dot_product_attention, scaled_dot_product_attention_backward
from .layers.sequence import pad_sequence
from .lr_scheduler import *  # noqa: F403
from .lr_scheduler import __all__ as _lr_scheduler_all
from .module import Module
from .optim import *  # noqa: F403
from .optim import __all__ as _optim_all
from .parallel import get_num_threads, num_threads, set_num_threads
from .training import (
    EarlyStopping,
    History,
    ModelCheckpoint,
    TrainingDivergedError,
    accuracy,
    clip_grad_norm,
    confusion_matrix,
    evaluate,
    fit,
    get_optimizer,
    predict,
)

__all__ = [
    "Module",
    "Sequential",
    "Residual",
    "ConcatTable",
    "ParallelTable",
    "Concat",
    "CAddTable",
    "CSubTable",
    "CMulTable",
    "JoinTable",
    "SplitTable",
    "SelectTable",
    "Graph",
    "Input",
    "Node",
    *_layers_all,
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
    "pad_sequence",
    *_criteria_all,
    *_optim_all,
    "gradcheck",
    "GradcheckError",
    "detect_anomaly",
    "is_anomaly_enabled",
    "NonFiniteError",
    "manual_seed",
    "get_array_module",
    "set_num_threads",
    "get_num_threads",
    "num_threads",
    "init",
    "load_fashion_mnist",
    "load_mnist",
    "load_sample",
    "load_dataset",
    "DataLoader",
    "DatasetError",
    "one_hot",
    "save_model",
    "load_model",
    "save_checkpoint",
    "load_checkpoint",
    "register_module",
    "fit",
    "evaluate",
    "predict",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "TrainingDivergedError",
    *_lr_scheduler_all,
    "clip_grad_norm",
    "get_optimizer",
    "accuracy",
    "confusion_matrix",
]
