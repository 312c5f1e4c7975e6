"""PyTorch <-> nnumpy weights: MLP-F and CNN-F moved from PyTorch to nnumpy
and back give PyTorch's outputs; mismatches are refused before anything changes."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import nnumpy as nn
from nnumpy.interop import load_torch_state_dict, to_torch_state_dict
from nnumpy.models import cnn_f, mlp_f

tnn = torch.nn


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def torch_mlp_f():
    return tnn.Sequential(
        tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 256), tnn.ReLU(), tnn.Linear(256, 10), tnn.LogSoftmax(1)
    )


def torch_cnn_f():
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1),
        tnn.BatchNorm2d(32),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1),
        tnn.BatchNorm2d(64),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(3136, 128),
        tnn.ReLU(),
        tnn.Dropout(0.25),
        tnn.Linear(128, 10),
        tnn.LogSoftmax(1),
    )


def perturb_batchnorm(torch_model, seed=0):
    """Non-trivial running statistics and affine parameters on the torch side."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in torch_model.modules():
            if isinstance(m, tnn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=g))
    return torch_model


def round_trip(make_torch, make_ours, sample_shape, as_tensors):
    torch.manual_seed(0)
    theirs = perturb_batchnorm(make_torch()).eval()
    x = np.random.default_rng(0).normal(size=(7, *sample_shape)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    state = theirs.state_dict()
    if not as_tensors:
        state = {k: v.numpy() for k, v in state.items()}
    ours = load_torch_state_dict(make_ours(), state).evaluate()
    assert rel_err(ours.forward(x), expected) <= 1e-5
    # and back into a fresh torch model (strict loading: every key, num_batches_tracked included)
    back = make_torch().eval()
    back.load_state_dict(to_torch_state_dict(ours, as_tensors=True))
    with torch.no_grad():
        again = back(torch.from_numpy(x)).numpy()
    assert rel_err(again, expected) <= 1e-5
    return ours, theirs


@pytest.mark.parametrize("as_tensors", [True, False], ids=["tensors", "numpy"])
def test_mlp_f_round_trip(as_tensors):
    ours, theirs = round_trip(torch_mlp_f, mlp_f, (784,), as_tensors)
    np.testing.assert_array_equal(ours[2].W, theirs[2].weight.detach().numpy())


def test_cnn_f_round_trip():
    ours, theirs = round_trip(torch_cnn_f, cnn_f, (1, 28, 28), as_tensors=True)
    np.testing.assert_array_equal(ours[5].running_var, theirs[5].running_var.numpy())


def test_numpy_output_and_keys():
    state = to_torch_state_dict(mlp_f())
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
    model = mlp_f()
    state = to_torch_state_dict(model)
    state["0.weight"][...] = 0  # copies, not views
    assert np.any(model[0].W != 0)


def test_batchnorm_1d_and_no_bias():
    torch.manual_seed(1)
    theirs = perturb_batchnorm(
        tnn.Sequential(tnn.Linear(5, 4, bias=False), tnn.BatchNorm1d(4), tnn.Tanh(), tnn.BatchNorm1d(4, affine=False))
    ).eval()
    ours = nn.Sequential(nn.Linear(5, 4, bias=False), nn.BatchNorm1d(4), nn.Tanh(), nn.BatchNorm1d(4, affine=False))
    load_torch_state_dict(ours, theirs.state_dict()).evaluate()
    x = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    assert rel_err(ours.forward(x), theirs(torch.from_numpy(x)).detach().numpy()) <= 1e-5
    assert to_torch_state_dict(ours, like=theirs)["1.num_batches_tracked"] == 7


def test_seed_batchnorm_pair_maps_to_affine_batchnorm():
    """BatchNormalization + ChannelwiseScaling is PyTorch's affine BatchNorm with eps=1e-3;
    BatchNormalization alone is affine=False. The torch model has a different layout
    (nested, activations elsewhere): modules are paired by order, and ``like`` names them back."""
    torch.manual_seed(2)
    theirs = perturb_batchnorm(
        tnn.Sequential(
            tnn.Sequential(tnn.Linear(5, 4), tnn.BatchNorm1d(4, eps=1e-3)),
            tnn.ReLU(),
            tnn.BatchNorm1d(4, eps=1e-3, affine=False),
        )
    ).eval()
    ours = nn.Sequential(
        nn.Linear(5, 4),
        nn.BatchNormalization(),  # not sized yet: sized by the copy
        nn.ChannelwiseScaling(4),
        nn.ReLU(),
        nn.BatchNormalization(n_feats=4),
    )
    load_torch_state_dict(ours, theirs.state_dict()).evaluate()
    x = np.random.default_rng(2).normal(size=(6, 5)).astype(np.float32)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    assert rel_err(ours.forward(x), expected) <= 1e-5
    state = to_torch_state_dict(ours, as_tensors=True, like=theirs)
    assert list(state) == list(theirs.state_dict())
    fresh = tnn.Sequential(
        tnn.Sequential(tnn.Linear(5, 4), tnn.BatchNorm1d(4, eps=1e-3)),
        tnn.ReLU(),
        tnn.BatchNorm1d(4, eps=1e-3, affine=False),
    ).eval()
    fresh.load_state_dict(state)
    assert rel_err(fresh(torch.from_numpy(x)).detach().numpy(), expected) <= 1e-5


def _snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _assert_unchanged(model, snapshot):
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snapshot[k], err_msg=k)


def test_shape_mismatch_names_both_sides_and_changes_nothing():
    theirs = tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 128), tnn.ReLU(), tnn.Linear(128, 10))
    ours = mlp_f()
    before = _snapshot(ours)
    with pytest.raises(
        ValueError, match=r"torch 2\.weight has shape \(128, 256\) but nnumpy model\[2\] Linear"
    ) as info:
        load_torch_state_dict(ours, theirs.state_dict())
    assert "torch 4.weight has shape (10, 128)" in str(info.value)  # every problem is listed
    _assert_unchanged(ours, before)  # the first Linear fits but was not copied either


def test_count_kind_and_bias_mismatches():
    ours = mlp_f()
    before = _snapshot(ours)
    with pytest.raises(ValueError, match=r"has 2 modules with arrays .* nnumpy model has 3"):
        load_torch_state_dict(ours, tnn.Sequential(tnn.Linear(784, 256), tnn.Linear(256, 10)).state_dict())
    mixed = tnn.Sequential(tnn.Linear(784, 256), tnn.BatchNorm1d(256), tnn.Linear(256, 10))
    with pytest.raises(ValueError, match=r"torch module '1' is a BatchNorm but nnumpy model\[2\] is a Linear"):
        load_torch_state_dict(ours, mixed.state_dict())
    nobias = tnn.Sequential(tnn.Linear(784, 256, bias=False), tnn.Linear(256, 256), tnn.Linear(256, 10))
    with pytest.raises(ValueError, match=r"torch module '0' has \['weight'\] .* has \['bias', 'weight'\]"):
        load_torch_state_dict(ours, nobias.state_dict())
    _assert_unchanged(ours, before)
    with pytest.raises(ValueError, match=r"torch 0\.weight has shape \(256, 784\) but .* \(128, 784\)"):
        to_torch_state_dict(nn.Sequential(nn.Linear(784, 128)), like=tnn.Sequential(tnn.Linear(784, 256)))


def test_module_without_torch_counterpart():
    class Scale(nn.Module):
        _parameters = (("s", "grads"),)

        def __init__(self):
            self.s = np.ones(3, np.float32)
            self.grads = np.zeros(3, np.float32)

    with pytest.raises(ValueError, match=r"Scale\(\) at model\[1\] has no PyTorch counterpart"):
        to_torch_state_dict(nn.Sequential(nn.Linear(3, 3), Scale()))


def test_torch_not_imported_for_numpy_state():
    code = (
        "import sys, numpy as np, nnumpy as nn\n"
        "from nnumpy.interop import load_torch_state_dict, to_torch_state_dict\n"
        "m = nn.Sequential(nn.Linear(3, 2))\n"
        "load_torch_state_dict(m, {'0.weight': np.ones((2, 3)), '0.bias': np.zeros(2)})\n"
        "assert (m[0].W == 1).all() and m[0].W.dtype == np.float32\n"
        "to_torch_state_dict(m)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_conv_geometry_and_groups():
    torch.manual_seed(3)
    theirs = perturb_batchnorm(
        tnn.Sequential(
            tnn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2),
            tnn.BatchNorm1d(6),
            tnn.ELU(),
            tnn.Flatten(),
            tnn.Linear(6 * 4, 3),
        )
    ).eval()
    ours = nn.Sequential(
        nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2),
        nn.BatchNorm1d(6),
        nn.ELU(),
        nn.Flatten(),
        nn.Linear(6 * 4, 3),
    )
    load_torch_state_dict(ours, theirs.state_dict()).evaluate()
    x = np.random.default_rng(3).normal(size=(5, 4, 9)).astype(np.float32)
    assert rel_err(ours.forward(x), theirs(torch.from_numpy(x)).detach().numpy()) <= 1e-5
    wrong = tnn.Sequential(tnn.Conv2d(4, 6, 3), tnn.BatchNorm1d(6), tnn.Linear(6 * 4, 3))
    with pytest.raises(ValueError, match=r"torch module '0' is a Conv2d but nnumpy model\[0\] is a Conv1d"):
        load_torch_state_dict(ours, wrong.state_dict())
