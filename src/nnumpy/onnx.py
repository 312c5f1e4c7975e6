"""``nnumpy.onnx``: the public path of the ONNX exporter, which lives in
``nnumpy.export.onnx`` (see there)."""

from .export.onnx import (
    MIN_OPSET,
    ExportError,
    GraphBuilder,
    conv_transpose,
    converter_for,
    example_input,
    export,
    export_file,
    register_converter,
)

__all__ = [
    "export",
    "export_file",
    "example_input",
    "register_converter",
    "converter_for",
    "conv_transpose",
    "GraphBuilder",
    "ExportError",
    "MIN_OPSET",
]
