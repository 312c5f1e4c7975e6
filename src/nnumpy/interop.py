"""``nnumpy.interop``: the public path of the PyTorch ``state_dict`` converters,
which live in ``nnumpy.export.pytorch`` (see there)."""

from .export.pytorch import TORCH_NAMED, load_torch_state_dict, register_torch_names, to_torch_state_dict

__all__ = ["load_torch_state_dict", "to_torch_state_dict", "register_torch_names", "TORCH_NAMED"]
