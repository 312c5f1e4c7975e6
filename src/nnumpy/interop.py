"""``nnumpy.interop``: the public path of the PyTorch ``state_dict`` converters,
which live in ``nnumpy.export.pytorch`` (see there)."""

from .export.pytorch import load_torch_state_dict, to_torch_state_dict

__all__ = ["load_torch_state_dict", "to_torch_state_dict"]
