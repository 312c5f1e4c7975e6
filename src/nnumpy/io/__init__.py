"""Safe model files and crash-safe checkpoints.

A model file is ONE ``.npz`` archive: every parameter and buffer as a tensor
named by its ``state_dict`` key (``model.0.W``), and a JSON document
(``__metadata__``) holding the format version, the architecture (each module's
class name and ``get_config()``, the module as it is now; nested containers,
graphs and shared modules included, a shared module once), the input shape,
the dtype and the SHA-256 of every tensor. Members are stored uncompressed. A checkpoint is the same file
with the optimizer's state (arrays as ``optimizer.<index>.<name>`` tensors),
epoch, step, history and every random generator's state added.

Loading never executes code: archives are read with ``allow_pickle=False``,
classes are looked up by name among nnumpy's own modules and the ones
registered with ``register_module``, and the whole file (tensor headers,
fields, the parameter shapes each class reports from its configuration) is
checked before any module is built. Names read from a file reach ``getattr``
or ``setattr`` only through allow-lists. Every write goes to a temporary file in
the target's directory, is flushed and fsynced, then atomically renamed over
the target (and the directory fsynced), so a process killed mid-write leaves
the previous file intact.

Files: ``atomic.py`` (``atomic_write``), ``registry.py`` (``register_module``),
``model_file.py`` (``save_model``, ``load_model``), ``checkpoint.py``
(``save_checkpoint``, ``load_checkpoint``).

Example:
    >>> import os, tempfile, numpy as np, nnumpy
    >>> net = nnumpy.Sequential(nnumpy.Linear(4, 3), nnumpy.ReLU(), nnumpy.Linear(3, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> nnumpy.save_model(net, path, input_shape=(4,))
    >>> x = np.ones((1, 4), np.float32)
    >>> bool((nnumpy.load_model(path).forward(x) == net.forward(x)).all())
    True
"""

from .atomic import atomic_write
from .checkpoint import Checkpoint, load_checkpoint, restore_optimizer, save_checkpoint
from .model_file import (
    ModelFileError,
    build_module,
    is_several_shapes,
    load_model,
    module_config,
    read_metadata,
    save_model,
)
from .registry import register_module

__all__ = [
    "ModelFileError",
    "is_several_shapes",
    "register_module",
    "module_config",
    "build_module",
    "save_model",
    "load_model",
    "read_metadata",
    "save_checkpoint",
    "load_checkpoint",
    "restore_optimizer",
    "Checkpoint",
    "atomic_write",
]
