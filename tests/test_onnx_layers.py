"""ONNX export of issue 16's layers (where ONNX has the operator): exported at
opsets 13, 18 and 21 (the formula and the operator forms), run in onnxruntime
at two batch sizes and compared with nnumpy's forward; the refusals."""

import numpy as np
import onnx  # noqa: F401  (a test dependency: a missing one fails, not skips)
import onnxruntime  # noqa: F401
import pytest
from onnx_common import check_onnx  # noqa: E402

import nnumpy as nn

OPSETS = (13, 18, 21)


def data(*shape, seed=0, scale=2.0):
    def make(batch):
        return (scale * np.random.default_rng(seed).normal(size=(batch, *shape))).astype(np.float32)

    return make


def affine(module, rng):
    """Non-trivial affine parameters / statistics, so a wrong mapping cannot pass."""
    for name in ("weight", "bias", "running_mean"):
        a = getattr(module, name, None)
        if a is not None:
            a[...] = rng.normal(size=a.shape)
    if getattr(module, "running_var", None) is not None:
        module.running_var[...] = rng.uniform(0.5, 2.0, size=module.running_var.shape)
    return module


LAYERS = [
    ("GELU", nn.GELU, (7,)),
    ("GELU-tanh", lambda: nn.GELU(approximate="tanh"), (3, 5)),
    ("SiLU", nn.SiLU, (7,)),
    ("Mish", nn.Mish, (7,)),
    ("Hardswish", nn.Hardswish, (3, 5)),
    ("Hardsigmoid", nn.Hardsigmoid, (7,)),
    ("ReLU6", nn.ReLU6, (7,)),
    ("Hardtanh", lambda: nn.Hardtanh(-0.5, 2.0), (7,)),
    ("PReLU-1", nn.PReLU, (7,)),
    ("PReLU-channels", lambda: nn.PReLU(3, init=0.1), (3, 4, 4)),
    ("SELU", nn.SELU, (7,)),
    ("CELU", lambda: nn.CELU(0.7), (7,)),
    ("Softsign", nn.Softsign, (7,)),
    ("Tanhshrink", nn.Tanhshrink, (7,)),
    ("SoftMax-dim-1", lambda: nn.SoftMax(dim=-1), (3, 5)),
    ("LogSoftMax-dim2", lambda: nn.LogSoftMax(dim=2), (3, 5)),
    ("LayerNorm", lambda: nn.LayerNorm(6), (4, 6)),
    ("LayerNorm-2d-shape", lambda: nn.LayerNorm((4, 6), eps=1e-3), (4, 6)),
    ("LayerNorm-noaffine", lambda: nn.LayerNorm(6, elementwise_affine=False), (6,)),
    ("LayerNorm-nobias", lambda: nn.LayerNorm(6, bias=False), (6,)),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), (4, 3, 5)),
    ("GroupNorm-1d-noaffine", lambda: nn.GroupNorm(3, 6, affine=False), (6, 5)),
    ("InstanceNorm2d", lambda: nn.InstanceNorm2d(3, affine=True), (3, 4, 5)),
    ("InstanceNorm1d", lambda: nn.InstanceNorm1d(3), (3, 6)),
    ("InstanceNorm2d-running", lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (3, 4, 5)),
    ("Upsample-nearest-scale", lambda: nn.Upsample(scale_factor=2), (2, 3, 4)),
    ("Upsample-nearest-size", lambda: nn.Upsample(size=(5, 7)), (2, 3, 4)),
    ("Upsample-nearest-1d", lambda: nn.Upsample(scale_factor=3), (2, 4)),
    ("Upsample-bilinear", lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4)),
    ("Upsample-bilinear-ac", lambda: nn.Upsample(size=(5, 6), mode="bilinear", align_corners=True), (2, 3, 4)),
    ("Upsample-bilinear-size", lambda: nn.Upsample(size=(7, 3), mode="bilinear"), (2, 3, 4)),
    ("Upsample-linear", lambda: nn.Upsample(scale_factor=2.5, mode="linear"), (2, 4)),
    ("UpsamplingBilinear2d", lambda: nn.UpsamplingBilinear2d(scale_factor=2), (2, 3, 3)),
    ("AdaptiveAvgPool2d-1", lambda: nn.AdaptiveAvgPool2d(1), (3, 5, 7)),
    ("AdaptiveAvgPool2d-div", lambda: nn.AdaptiveAvgPool2d((2, 3)), (3, 4, 6)),
    ("AdaptiveAvgPool2d-None", lambda: nn.AdaptiveAvgPool2d((None, 2)), (3, 5, 4)),
    ("AdaptiveMaxPool2d-1", lambda: nn.AdaptiveMaxPool2d((1, 1)), (3, 5, 7)),
    ("AdaptiveMaxPool2d-div", lambda: nn.AdaptiveMaxPool2d(2), (3, 4, 6)),
    ("AdaptiveAvgPool2d-uneven", lambda: nn.AdaptiveAvgPool2d((3, 4)), (2, 7, 5)),
    ("AdaptiveAvgPool2d-uneven-None", lambda: nn.AdaptiveAvgPool2d((None, 3)), (2, 5, 7)),
    ("AdaptiveMaxPool2d-uneven", lambda: nn.AdaptiveMaxPool2d((3, 4)), (2, 7, 5)),
    ("AdaptiveMaxPool2d-grow", lambda: nn.AdaptiveMaxPool2d((5, 2)), (2, 3, 5)),
    ("ZeroPad2d", lambda: nn.ZeroPad2d((1, 2, 0, 3)), (2, 3, 4)),
    ("ZeroPad2d-crop", lambda: nn.ZeroPad2d((-1, 1, 1, -1)), (2, 3, 4)),
    ("ReflectionPad2d", lambda: nn.ReflectionPad2d((2, 1, 1, 2)), (2, 3, 4)),
    ("ReplicationPad2d", lambda: nn.ReplicationPad2d(2), (2, 3, 4)),
    ("Dropout2d", lambda: nn.Dropout2d(0.5), (2, 3, 4)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(3, 4, 3), (3, 4, 5)),
    ("ConvTranspose2d-geometry", lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                                           output_padding=(1, 2), dilation=(2, 1), groups=2),
     (4, 4, 3)),
    ("ConvTranspose1d", lambda: nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1, bias=False), (2, 6)),
    ("Conv2d-reflect", lambda: nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"), (2, 5, 6)),
    ("Conv2d-replicate", lambda: nn.Conv2d(2, 3, 3, padding=1, stride=2, padding_mode="replicate"), (2, 5, 6)),
    ("Conv1d-reflect", lambda: nn.Conv1d(2, 3, 3, padding=2, padding_mode="reflect"), (2, 7)),
    ("MaxPool2d-ceil", lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 6, 7)),
    ("MaxPool2d-ceil-pad", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 6, 5)),
    ("AvgPool2d-ceil", lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True), (2, 6, 7)),
    ("AvgPool2d-ceil-exclude", lambda: nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), (2, 5, 5)),
    ("MaxPool1d-ceil", lambda: nn.MaxPool1d(2, ceil_mode=True), (2, 7)),
    ("Unflatten", lambda: nn.Unflatten(1, (2, 3)), (6, 4)),
    ("Unflatten-last", lambda: nn.Unflatten(-1, (2, -1)), (3, 6)),
]


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[layer[0] for layer in LAYERS])
def test_layer_exports(name, make, shape):
    nn.manual_seed(0)
    module = affine(make(), np.random.default_rng(1))
    check_onnx(module, data(*shape), opsets=OPSETS)


def test_embedding_gathers_integer_ids():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Flatten(), nn.Linear(20, 2))

    def ids(batch):
        return np.random.default_rng(0).integers(0, 10, size=(batch, 5))

    proto = check_onnx(model, ids, opsets=OPSETS)
    assert proto.graph.input[0].type.tensor_type.elem_type == 7  # int64 stays int64


def test_a_small_unet_like_graph():
    """Conv, pooling, upsampling and a skip joined along channels."""
    nn.manual_seed(0)
    x = nn.Input()
    skip = nn.ReLU()(nn.Conv2d(2, 4, 3, padding=1)(x))
    down = nn.Conv2d(4, 4, 3, padding=1)(nn.MaxPool2d(2)(skip))
    up = nn.Upsample(scale_factor=2, mode="bilinear")(down)
    y = nn.Conv2d(8, 2, 1)(nn.JoinTable(1)(up, skip))
    check_onnx(nn.Graph(x, nn.GroupNorm(1, 2)(y)), data(2, 8, 8))


def test_refusals_name_the_module():
    export = nn.onnx.export
    with pytest.raises(nn.onnx.ExportError, match="batch axis"):
        export(nn.Unflatten(0, (1, 1)), np.zeros((1, 3), np.float32))
    with pytest.raises(nn.onnx.ExportError, match=r"Conv2d.*padding_mode='circular'"):
        export(nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular"), np.zeros((1, 2, 4, 4), np.float32))
    assert issubclass(nn.onnx.ExportError, ValueError)


def test_conv_transpose_hook_with_pytorchs_attributes():
    """``nnumpy.onnx.conv_transpose`` is ready for a ConvTranspose layer with
    PyTorch's attributes; checked on a stand-in computed by torch."""
    import torch

    class StandIn(nn.Module):
        def __init__(self, stride, padding, output_padding, dilation, groups):
            super().__init__()
            rng = np.random.default_rng(0)
            self.weight = rng.normal(size=(4, 6 // groups, 3, 2)).astype(np.float32)
            self.bias = rng.normal(size=6).astype(np.float32)
            self.stride, self.padding, self.output_padding = stride, padding, output_padding
            self.dilation, self.groups = dilation, groups

        def updateOutput(self, input):
            args = (self.stride, self.padding, self.output_padding, self.groups, self.dilation)
            out = torch.nn.functional.conv_transpose2d(
                torch.from_numpy(input), torch.from_numpy(self.weight), torch.from_numpy(self.bias), *args)
            self.output = out.numpy()
            return self.output

    nn.onnx.register_converter(StandIn)(nn.onnx.conv_transpose)
    for args in ((1, 0, 0, 1, 1), (2, 1, 1, 1, 2), ((2, 3), (1, 0), (1, 2), (2, 1), 1)):
        check_onnx(StandIn(*args), data(4, 5, 4), opsets=(13, 18))
