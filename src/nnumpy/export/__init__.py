"""Export and interop: models out to ONNX (``onnx.py``; ``nnumpy.onnx``) and
weights to and from PyTorch ``state_dict``s (``pytorch.py``; ``nnumpy.interop``).

Both only read a model through the core's public API (``named_modules``,
``state_dict``, the layers' attributes), so a new layer exports once a
converter for it is registered (``nnumpy.onnx.register_converter``).
"""

from .onnx import export, export_file, register_converter
from .pytorch import load_torch_state_dict, to_torch_state_dict

__all__ = ["export", "export_file", "register_converter", "load_torch_state_dict", "to_torch_state_dict"]
