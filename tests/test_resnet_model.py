"""models.resnet (nnumpy train --model resnet): shapes, parameter count, the
recipe, a PyTorch twin of the same weights computing the same logits, errors."""

import numpy as np
import pytest
import torch
from helpers import assert_close

import nnumpy
from nnumpy.models import MODELS, RECIPES, resnet


def test_resnet_shapes_parameters_and_recipe():
    model = resnet(rng=0)
    assert sum(p.size for p in model.parameters()) == 308_074
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    assert MODELS["resnet"] == (resnet, (1, 28, 28))
    recipe = RECIPES["resnet"]
    assert recipe.flip and recipe.crop_padding == 2 and recipe.weight_decay > 0 and recipe.schedule == "onecycle"
    small = resnet(channels=(4, 8), blocks=(2, 1), num_classes=3, in_channels=2, dtype=np.float64, rng=1)
    assert small.forward(np.zeros((1, 2, 9, 9))).shape == (1, 3)
    with pytest.raises(ValueError, match="resnet: channels"):
        resnet(channels=(8, 16), blocks=(1,))


def test_resnet_matches_a_torch_twin():
    """The same weights in torch.nn (torchvision-style blocks) give the same logits, train-mode gradients too."""
    model = resnet(channels=(4, 8, 8), rng=0, dtype=np.float64)
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            conv1, conv2 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False), tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.body = tnn.Sequential(conv1, tnn.BatchNorm2d(cout), tnn.ReLU(), conv2, tnn.BatchNorm2d(cout))
            self.down = None
            if stride != 1 or cin != cout:
                self.down = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

        def forward(self, x):
            return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))

    stem = [tnn.Conv2d(1, 4, 3, 1, 1, bias=False), tnn.BatchNorm2d(4), tnn.ReLU()]
    head = [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(8, 10)]
    twin = tnn.Sequential(*stem, Block(4, 4, 1), Block(4, 8, 2), Block(8, 8, 2), *head)
    twin = twin.double()
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(ours))
    x = np.random.default_rng(0).normal(size=(3, 1, 12, 12))
    y = model.forward(x)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = twin(tx)
    assert_close(y, ty, np.float64, "logits")
    g = np.random.default_rng(1).normal(size=y.shape)
    model.zeroGradParameters()
    gi = model.backward(x, g)
    ty.backward(torch.from_numpy(g))
    assert_close(gi, tx.grad, np.float64, "gradInput")
    for (_, grad), theirs in zip(model.parameter_pairs(), twin.parameters(), strict=True):
        assert_close(grad, theirs.grad, np.float64, "parameter gradient")
    nnumpy.gradcheck(
        resnet(channels=(2, 3), blocks=(1, 1), rng=0, dtype=np.float64),
        np.random.default_rng(2).normal(size=(2, 1, 6, 6)),
    )


def test_resnet_exports_to_onnx():
    from onnx_common import check_onnx  # onnx and onnxruntime are test dependencies: missing, this fails

    model = resnet(channels=(4, 8), blocks=(1, 2), rng=0)
    model.forward(np.random.default_rng(0).normal(size=(8, 1, 28, 28)).astype(np.float32))  # moves BN statistics
    check_onnx(model, lambda b: np.random.default_rng(b).normal(size=(b, 1, 28, 28)).astype(np.float32))
