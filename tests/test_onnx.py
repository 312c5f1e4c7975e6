"""ONNX export: every exportable module, MLP-F, CNN-F and random stacks pass
the ONNX checker at opsets 13, 18, 21 and match nnumpy's evaluate-mode
forward when run by onnxruntime (batch 1 and 7)."""

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import nnumpy as nn
import nnumpy.onnx as nxo
from nnumpy.layers import AvgPool1d, AvgPool2d, Conv1d, Conv2d, GlobalAvgPool2d, MaxPool1d, MaxPool2d
from nnumpy.models import cnn_f, mlp_f
from nnumpy.module import Module

OPSETS = (13, 18, 21)
BATCHES = (1, 7)


def run_onnx(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def randomize_stats(model, rng):
    """Non-trivial BatchNorm statistics and affine parameters, so a wrong
    mapping cannot pass by accident."""
    for _, m in model.named_modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean[...] = rng.normal(size=c)
            m.running_var[...] = rng.uniform(0.5, 2.0, size=c)
            if m.affine:
                m.weight[...] = rng.uniform(0.5, 1.5, size=c)
                m.bias[...] = rng.normal(size=c)
        elif isinstance(m, nn.BatchNormalization) and m.moving_mean is not None:
            c = m.moving_mean.shape[0]
            m.moving_mean[...] = rng.normal(size=c)
            m.moving_variance[...] = rng.uniform(0.5, 2.0, size=c)
    return model


def check_export(model, sample_shape, opsets=OPSETS, seed=0, dtype=np.float32):
    """Export at each opset, run the checker and onnxruntime, compare with nnumpy."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(max(BATCHES), *sample_shape)).astype(dtype)
    modes = [m.training for _, m in model.named_modules()]
    expected = {}
    for batch in BATCHES:
        model.evaluate()
        expected[batch] = model.forward(x[:batch]).copy()
    model.train()
    for opset in opsets:
        proto = nxo.export(model, x[:1], None, opset=opset)
        onnx.checker.check_model(proto, full_check=True)
        assert [m.training for _, m in model.named_modules()] == modes
        for batch in BATCHES:
            got = run_onnx(proto, x[:batch])
            assert got.shape == expected[batch].shape
            err = rel_err(got, expected[batch])
            assert err <= 1e-5, f"{model!r}\nopset {opset}, batch {batch}: relative error {err:.3g}"
    return proto


# --------------------------------------------------------------- one module each
def _seed_bn(c):
    return nn.Sequential(nn.BatchNormalization(n_feats=c), nn.ChannelwiseScaling(c))


MODULES = [
    ("Linear", lambda: nn.Linear(5, 4), (5,)),
    ("Linear-nobias", lambda: nn.Linear(5, 4, bias=False), (5,)),
    ("ReLU", nn.ReLU, (6,)),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), (6,)),
    ("ELU", lambda: nn.ELU(0.7), (6,)),
    ("SoftPlus", nn.SoftPlus, (6,)),
    ("Sigmoid", nn.Sigmoid, (6,)),
    ("Tanh", nn.Tanh, (6,)),
    ("SoftMax", nn.SoftMax, (6,)),
    ("SoftMax-4d", nn.SoftMax, (3, 4, 5)),
    ("LogSoftMax", nn.LogSoftMax, (6,)),
    ("LogSoftMax-3d", nn.LogSoftMax, (3, 5)),
    ("Identity", nn.Identity, (6,)),
    ("Dropout", lambda: nn.Dropout(0.5), (6,)),
    ("Flatten", nn.Flatten, (2, 3, 4)),
    ("BatchNorm1d-2d", lambda: nn.BatchNorm1d(6), (6,)),
    ("BatchNorm1d-3d", lambda: nn.BatchNorm1d(3, eps=1e-3), (3, 5)),
    ("BatchNorm1d-noaffine", lambda: nn.BatchNorm1d(6, affine=False), (6,)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), (3, 4, 5)),
    ("BatchNormalization-2d", lambda: _seed_bn(6), (6,)),
    ("BatchNormalization-4d", lambda: _seed_bn(3), (3, 4, 5)),
    ("BatchNormalization-unsized", nn.BatchNormalization, (6,)),
    ("ChannelwiseScaling-3d", lambda: nn.ChannelwiseScaling(3), (3, 5)),
]
MODULES += [
    ("Conv2d", lambda: Conv2d(3, 4, 3), (3, 6, 7)),
    (
        "Conv2d-stride-pad-dil",
        lambda: Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 0), dilation=(1, 2)),
        (4, 9, 8),
    ),
    ("Conv2d-groups-nobias", lambda: Conv2d(4, 6, 3, groups=2, bias=False), (4, 5, 5)),
    ("Conv2d-same", lambda: Conv2d(2, 3, 4, padding="same"), (2, 6, 6)),
    ("Conv2d-valid", lambda: Conv2d(2, 3, 3, padding="valid", stride=2), (2, 7, 6)),
    ("Conv1d", lambda: Conv1d(3, 4, 5, stride=2, padding=1, dilation=2, groups=1), (3, 17)),
    ("Conv1d-groups-same", lambda: Conv1d(4, 4, 4, groups=4, padding="same"), (4, 9)),
    ("MaxPool2d", lambda: MaxPool2d(2), (3, 5, 6)),
    ("MaxPool2d-pad", lambda: MaxPool2d(3, stride=2, padding=1), (2, 7, 5)),
    ("MaxPool1d", lambda: MaxPool1d(3, stride=2, padding=1), (2, 9)),
    ("AvgPool2d", lambda: AvgPool2d(2), (3, 5, 6)),
    ("AvgPool2d-pad-include", lambda: AvgPool2d(3, stride=2, padding=1), (2, 7, 5)),
    ("AvgPool2d-pad-exclude", lambda: AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 7, 5)),
    ("AvgPool1d-exclude", lambda: AvgPool1d(4, stride=3, padding=2, count_include_pad=False), (2, 10)),
    ("GlobalAvgPool2d", GlobalAvgPool2d, (3, 4, 5)),
    ("GlobalAvgPool2d-keepdims", lambda: GlobalAvgPool2d(keepdims=True), (3, 4, 5)),
]


@pytest.mark.parametrize("name, make, shape", MODULES, ids=[m[0] for m in MODULES])
def test_each_module_exports(name, make, shape):
    nn.manual_seed(0)
    model = randomize_stats(make(), np.random.default_rng(1))
    check_export(model, shape)


def test_mlp_f():
    nn.manual_seed(0)
    proto = check_export(mlp_f(), (784,))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 784
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "LogSoftmax"]
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in proto.graph.initializer)


def test_cnn_f():
    nn.manual_seed(0)
    model = randomize_stats(cnn_f(), np.random.default_rng(2))
    proto = check_export(model, (1, 28, 28))
    assert "Dropout" not in [n.op_type for n in proto.graph.node]


def test_float64_model_exports_double():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3), nn.SoftMax()).to(np.float64)
    proto = check_export(model, (5,), opsets=(18,), dtype=np.float64)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert all(t.data_type == onnx.TensorProto.DOUBLE for t in proto.graph.initializer)


def test_float64_model_exported_as_float32():
    nn.manual_seed(0)
    model = nn.Sequential(Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), GlobalAvgPool2d(), nn.Linear(3, 2))
    model.to(np.float64)
    x = np.random.default_rng(0).normal(size=(7, 2, 6, 6))
    proto = nxo.export(model, x[:1], dtype=np.float32)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert rel_err(run_onnx(proto, x.astype(np.float32)), model.evaluate().forward(x)) <= 1e-5
    assert model[0].W.dtype == np.float64
    with pytest.raises(ValueError, match="float dtype"):
        nxo.export(model, x[:1], dtype=np.int32)


# --------------------------------------------------------------- random stacks
ACTIVATIONS = [nn.ReLU, lambda: nn.LeakyReLU(0.1), lambda: nn.ELU(0.5), nn.SoftPlus, nn.Sigmoid, nn.Tanh]


def _draw(rng, shape, used):
    """One module applicable to per-sample ``shape``; returns ``(module, new_shape)``."""
    c, spatial = shape[0], shape[1:]
    options = [
        lambda: (ACTIVATIONS[rng.integers(len(ACTIVATIONS))](), shape),
        lambda: (nn.Dropout(0.3), shape),
        lambda: (nn.Identity(), shape),
        lambda: (nn.ChannelwiseScaling(c), shape),
        lambda: (nn.BatchNormalization(n_feats=c), shape),
        lambda: (nn.SoftMax() if rng.random() < 0.5 else nn.LogSoftMax(), shape),
    ]
    if len(shape) == 1:
        out = int(rng.integers(2, 9))
        options += [
            lambda: (nn.Linear(c, out, bias=bool(rng.random() < 0.8)), (out,)),
            lambda: (nn.BatchNorm1d(c, affine=bool(rng.random() < 0.7)), shape),
        ]
    else:
        options += [lambda: (nn.Flatten(), (int(np.prod(shape)),))]
    if len(shape) == 2:
        (length,) = spatial
        groups = int(rng.choice([g for g in (1, 2) if c % g == 0]))
        out = groups * int(rng.integers(1, 4))
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k))
        if length + 2 * p >= k:
            options.append(
                lambda: (Conv1d(c, out, k, stride=s, padding=p, groups=groups), (out, (length + 2 * p - k) // s + 1))
            )
        options.append(lambda: (nn.BatchNorm1d(c), shape))
        if length >= 2:
            pool = MaxPool1d if rng.random() < 0.5 else AvgPool1d
            options.append(lambda: (pool(2), (c, length // 2)))
    if len(shape) == 3:
        h, w = spatial
        groups = int(rng.choice([g for g in (1, 3) if c % g == 0]))
        out = groups * int(rng.integers(1, 3))
        k, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        reach = d * (k - 1) + 1
        pad = d * (k - 1) // 2
        if min(h, w) + 2 * pad >= reach:
            ho, wo = h + 2 * pad - reach + 1, w + 2 * pad - reach + 1
            options.append(lambda: (Conv2d(c, out, k, dilation=d, groups=groups), (out, ho, wo)))
        options.append(lambda: (nn.BatchNorm2d(c), shape))
        options.append(lambda: (GlobalAvgPool2d(), (c,)))
        if min(h, w) >= 3:
            kind = [MaxPool2d, AvgPool2d][int(rng.integers(2))]
            options.append(lambda: (kind(3, stride=2, padding=1), (c, (h - 1) // 2 + 1, (w - 1) // 2 + 1)))
    module, new_shape = options[int(rng.integers(len(options)))]()
    used.add(type(module).__name__)
    return module, new_shape


def random_stack(seed, used):
    rng = np.random.default_rng(seed)
    shapes = [(6,), (3, 9), (3, 7, 6)]
    shape = shapes[seed % len(shapes)]
    start = shape
    model, current = nn.Sequential(), nn.Sequential()
    for _ in range(int(rng.integers(4, 9))):
        module, shape = _draw(rng, shape, used)
        current.add(module)
        if rng.random() < 0.25:  # close a nested Sequential
            model.add(current)
            current = nn.Sequential()
    model.add(current)
    return randomize_stats(model, rng), start


def test_random_stacks():
    used = set()
    for seed in range(40):
        nn.manual_seed(seed)
        model, shape = random_stack(seed, used)
        check_export(model, shape, seed=seed)
    expected = {"Linear", "ReLU", "Sigmoid", "Tanh", "Dropout", "Identity", "BatchNorm1d", "BatchNormalization"}
    expected |= {"Conv1d", "Conv2d", "BatchNorm2d", "GlobalAvgPool2d"}
    assert expected <= used, f"random stacks never drew {expected - used}"


# --------------------------------------------------------------- behaviour
def test_mode_restored_and_state_untouched():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    model.train()
    model[2].evaluate()  # a mixed-mode model stays mixed
    before = [m.training for _, m in model.named_modules()]
    stats = model[1].running_mean.copy(), model[1].running_var.copy()
    nxo.export(model, np.ones((2, 4), np.float32) * 3)
    assert [m.training for _, m in model.named_modules()] == before
    np.testing.assert_array_equal(model[1].running_mean, stats[0])
    np.testing.assert_array_equal(model[1].running_var, stats[1])


def test_mode_restored_after_error():
    class Odd(Module):
        def updateOutput(self, input):
            return input

    model = nn.Sequential(nn.Linear(4, 3), Odd()).train()
    with pytest.raises(TypeError):
        nxo.export(model, np.ones((1, 4), np.float32))
    assert all(m.training for _, m in model.named_modules())


class Swish(Module):
    def updateOutput(self, input):
        self.output = input / (1 + np.exp(-input))
        return self.output


def test_unsupported_module_named_with_position():
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), Swish()))
    with pytest.raises(TypeError, match=r"no ONNX converter for Swish .*model\[1\]\[1\].*register_converter"):
        nxo.export(model, np.ones((1, 4), np.float32))
    with pytest.raises(TypeError, match=r"Swish .*the model itself"):
        nxo.export(Swish(), np.ones((1, 4), np.float32))


def test_register_converter_for_user_module():
    class MySwish(Swish):
        pass

    @nxo.register_converter(MySwish)
    def _swish(g, module, x, example):
        return g.node("Mul", [x, g.node("Sigmoid", [x])])

    model = nn.Sequential(nn.Linear(4, 3), MySwish(), nn.Linear(3, 2))
    check_export(model, (4,), opsets=(18,))


def test_subclass_uses_base_converter_only_with_the_same_forward():
    class Relu2(nn.ReLU):
        pass

    class Relu6(nn.ReLU):
        def updateOutput(self, input):
            self.output = np.clip(input, 0, 6)
            return self.output

    check_export(nn.Sequential(nn.Linear(3, 3), Relu2()), (3,), opsets=(18,))
    with pytest.raises(TypeError, match="no ONNX converter for Relu6"):
        nxo.export(nn.Sequential(Relu6()), np.ones((1, 3), np.float32))


def test_writes_file(tmp_path):
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.SoftMax())
    path = tmp_path / "m.onnx"
    returned = nxo.export(model, np.zeros((1, 3), np.float32), path)
    loaded = onnx.load(str(path))
    assert loaded == returned
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert rel_err(run_onnx(loaded, x), model.evaluate().forward(x)) <= 1e-6


def test_wrong_example_input_names_the_failing_module():
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(5, 2)))
    with pytest.raises(ValueError, match=r"tracing model\[1\]\[1\] failed: Linear\(5 -> 2\): expected input"):
        nxo.export(model, np.ones((1, 4), np.float32))


def test_identity_model_and_bad_arguments():
    proto = check_export(nn.Sequential(nn.Dropout(), nn.Identity()), (3,), opsets=(13,))
    assert [n.op_type for n in proto.graph.node] == ["Identity"]
    with pytest.raises(ValueError, match="opset must be an int in"):
        nxo.export(nn.ReLU(), np.ones((1, 3), np.float32), opset=11)
    with pytest.raises(ValueError, match="batch axis"):
        nxo.export(nn.ReLU(), np.float32(1.0))
    with pytest.raises(TypeError, match="expected a Module"):
        nxo.export(lambda x: x, np.ones((1, 3), np.float32))


def test_missing_onnx_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes ``import onnx`` fail
    with pytest.raises(ImportError, match=r"pip install nnumpy\[onnx\]"):
        nxo.export(nn.ReLU(), np.ones((1, 3), np.float32))


def test_nnumpy_imports_without_onnx():
    code = (
        "import sys\n"
        "sys.modules['onnx'] = None\n"
        "import nnumpy\n"
        "assert nnumpy.onnx.converter_for(nnumpy.Linear(2, 2)) is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_export_file_uses_saved_input_shape(tmp_path):
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3), nn.LogSoftMax())
    randomize_stats(model, np.random.default_rng(3))
    x = np.random.default_rng(3).normal(size=(7, 6)).astype(np.float32)
    expected = model.evaluate().forward(x)
    model.train()
    nn.save_model(model, tmp_path / "m.npz", input_shape=(6,))
    nn.save_checkpoint(tmp_path / "c.npz", model, nn.Adam(model, lr=1e-3), epoch=2, input_shape=(6,))
    for name in ("m.npz", "c.npz"):
        proto = nxo.export_file(tmp_path / name, tmp_path / "out.onnx", opset=21)
        onnx.checker.check_model(str(tmp_path / "out.onnx"), full_check=True)
        assert proto.opset_import[0].version == 21
        assert rel_err(run_onnx(proto, x), expected) <= 1e-5
    nn.save_model(model, tmp_path / "noshape.npz")
    with pytest.raises(ValueError, match="records no input_shape"):
        nxo.export_file(tmp_path / "noshape.npz", tmp_path / "out.onnx")
