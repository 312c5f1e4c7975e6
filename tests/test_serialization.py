"""Model files and checkpoints: nested containers and metadata, registered
user classes, every kind of damaged or hostile file gives one ModelFileError
that lists what is wrong, and a checkpoint resumes training bit for bit.
(Every module of the one table, tests/module_table.py, round-trips through a
model file in tests/test_modules.py.)"""

import json
import zipfile

import numpy as np
import pytest

import nnumpy
from nnumpy import Module, Sequential, layers
from nnumpy.io import (
    ModelFileError,
    build_module,
    load_checkpoint,
    load_model,
    model_file,
    module_config,
    read_metadata,
    register_module,
    registry,
    restore_optimizer,
    save_checkpoint,
    save_model,
)

R = np.random.default_rng


def _input(shape, dtype=np.float32, seed=0):
    if isinstance(shape, np.ndarray):  # the input itself (integer ids for Embedding)
        return shape
    if isinstance(shape[0], tuple):  # a module that takes a tuple
        return tuple(_input(part, dtype, seed + i) for i, part in enumerate(shape))
    return R(seed).normal(size=shape).astype(dtype)


def _child(spec, i):
    """The spec of child ``i`` of a Sequential's spec."""
    return spec["config"]["modules"][i]["__module__"]


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and np.array_equal(sa[key], sb[key]), key


def _network():
    inner = Sequential(layers.Linear(6, 5), layers.BatchNorm1d(5), layers.ReLU())
    net = Sequential(layers.Linear(4, 6), layers.Tanh(), inner, layers.Dropout(0.25, rng=3))
    net.add(layers.BatchNormalization(0.5)).add(layers.Linear(5, 3))
    return net


def test_nested_sequential_round_trip_and_metadata(tmp_path):
    net = _network()
    x = _input((8, 4))
    for seed in range(3):
        net.forward(_input((8, 4), seed=seed))
    path = tmp_path / "net.npz"
    save_model(net, path, input_shape=(4,), metadata={"dataset": "toy", "accuracy": 0.5})
    loaded = load_model(path)
    _assert_same_state(net, loaded)
    net.evaluate(), loaded.evaluate()
    assert np.array_equal(loaded.forward(x), net.forward(x))
    meta = read_metadata(path)
    assert meta["format_version"] == 2 and meta["kind"] == "model" and meta["nnumpy_version"] == nnumpy.__version__
    assert meta["input_shape"] == [4] and meta["dtype"] == "float32" and meta["metadata"]["accuracy"] == 0.5
    assert _child(meta["architecture"], 2)["class"] == "Sequential"
    assert all(len(t["sha256"]) == 64 for t in meta["tensors"].values())
    # the file is a plain npz: no pickles inside
    with np.load(path, allow_pickle=False) as f:
        assert "model.2.1.running_mean" in f.files


def test_config_is_json_with_lists_and_dtype_strings():
    net = Sequential(layers.Linear(2, 3, dtype=np.float64, rng=np.random.default_rng(0)))
    config = module_config(net)
    json.dumps(config)
    assert _child(config, 0)["config"]["dtype"] == "float64" and "rng" not in _child(config, 0)["config"]
    if hasattr(layers, "Conv2d"):
        conv = module_config(layers.Conv2d(1, 2, (3, 3), stride=(1, 2)))
        assert conv["config"]["kernel_size"] == [3, 3] and conv["config"]["stride"] == [1, 2]
        assert build_module(conv).stride == (1, 2)


def test_dtype_changed_after_construction_is_kept(tmp_path):
    net = Sequential(layers.Linear(3, 2), layers.BatchNorm1d(2)).to(np.float64)
    save_model(net, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert {p.dtype for p in loaded.parameters()} == {np.dtype(np.float64)}
    _assert_same_state(net, loaded)


def test_frozen_modules_stay_frozen(tmp_path):
    net = Sequential(layers.Linear(3, 2), layers.Linear(2, 2))
    net[0].freeze()
    save_model(net, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded[0].frozen and not loaded[1].frozen


def test_loading_does_not_move_the_default_generator(tmp_path):
    save_model(_network(), tmp_path / "m.npz")
    nnumpy.manual_seed(5)
    state = nnumpy.backend.default_rng().bit_generator.state
    load_model(tmp_path / "m.npz")
    assert nnumpy.backend.default_rng().bit_generator.state == state


# ------------------------------------------------------------------ user classes
@register_module
class UserScale(Module):
    """A user layer: y = x * w."""

    _parameters = (("w", "gradw"),)

    def __init__(self, n, init=1.0):
        super().__init__()
        self.w = np.full(n, init, np.float32)
        self.gradw = np.zeros_like(self.w)

    def updateOutput(self, input):
        self.output = input * self.w
        return self.output


@register_module(name="MyResidual")
class Residual(Module):
    """A user container holding another module as a constructor argument."""

    def __init__(self, inner, scale=1.0):
        super().__init__()
        self.inner, self.scale = inner, scale

    def children(self):
        return [("inner", self.inner)]

    def updateOutput(self, input):
        self.output = input + self.scale * self.inner.forward(input)
        return self.output


def test_registered_user_classes_round_trip(tmp_path):
    net = Sequential(Residual(Sequential(layers.Linear(3, 3), UserScale(3, init=2.0)), scale=0.5), layers.ReLU())
    x = _input((2, 3))
    save_model(net, tmp_path / "u.npz")
    loaded = load_model(tmp_path / "u.npz")
    assert _child(read_metadata(tmp_path / "u.npz")["architecture"], 0)["class"] == "MyResidual"
    assert np.array_equal(loaded.forward(x), net.forward(x))
    _assert_same_state(net, loaded)


def test_unregistered_class_cannot_be_saved(tmp_path):
    class Mystery(layers.ReLU):
        pass

    with pytest.raises(ModelFileError, match="Mystery is not one of nnumpy's and is not registered"):
        save_model(Sequential(Mystery()), tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_register_module_refuses_builtin_names_and_non_modules():
    class Linear(Module):
        pass

    with pytest.raises(ValueError, match="taken by nnumpy's own"):
        register_module(Linear)
    with pytest.raises(TypeError, match="Module or Optimizer subclass"):
        register_module(dict)


# ------------------------------------------------------------------ damaged and hostile files
def _rewrite(path, mutate, fix_metadata=True):
    """Re-save ``path`` after ``mutate(meta, tensors)``; with ``fix_metadata``
    the tensor table (shapes, checksums) is recomputed, so only the mutation is wrong."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(f["__metadata__"].tobytes())
        tensors = {k: f[k] for k in f.files if k != "__metadata__"}
    mutate(meta, tensors)
    if fix_metadata:
        meta["tensors"] = {
            k: {"shape": list(v.shape), "dtype": v.dtype.name, "sha256": model_file.sha256(v)}
            for k, v in tensors.items()
        }
    raw = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, __metadata__=raw, **tensors)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.npz"
    save_model(Sequential(layers.Linear(4, 3), layers.ReLU(), layers.Linear(3, 2)), path)
    return path


def test_unknown_class(saved, monkeypatch):
    def rename(meta, tensors):
        _child(meta["architecture"], 1)["class"] = "os.system"
        _child(meta["architecture"], 0)["class"] = "Evil"

    _rewrite(saved, rename)
    with pytest.raises(ModelFileError) as info:
        load_model(saved)
    assert "unknown class 'Evil'" in str(info.value) and "unknown class 'os.system'" in str(info.value)


def test_unknown_class_after_unregistering(tmp_path, monkeypatch):
    save_model(Sequential(UserScale(2)), tmp_path / "s.npz")
    monkeypatch.setattr(registry, "REGISTERED", {})
    with pytest.raises(ModelFileError, match="unknown class 'UserScale'.*register_module"):
        load_model(tmp_path / "s.npz")


def test_missing_extra_and_misshapen_tensors_are_all_listed(saved):
    def damage(meta, tensors):
        del tensors["model.0.b"]
        tensors["model.7.W"] = np.zeros(2, np.float32)
        tensors["model.2.W"] = np.zeros((5, 5), np.float32)

    _rewrite(saved, damage)
    with pytest.raises(ModelFileError) as info:
        load_model(saved)
    message = str(info.value)  # found from the configuration's shapes, before building
    assert "Linear at '0' needs tensor '0.b' of shape (3,), which the file does not hold" in message
    assert "tensor '2.W' has shape (5, 5), but Linear's configuration gives (2, 3)" in message
    assert len(info.value.problems) == 2

    def extra_only(meta, tensors):
        tensors["model.7.W"] = np.zeros(2, np.float32)

    save_model(Sequential(layers.Linear(4, 3), layers.ReLU(), layers.Linear(3, 2)), saved)
    _rewrite(saved, extra_only)
    with pytest.raises(ModelFileError, match="extra tensor '7.W' that the architecture has no place for"):
        load_model(saved)


def test_checksum_mismatch(saved):
    _rewrite(saved, lambda meta, tensors: tensors["model.0.W"].__setitem__((0, 0), 42.0), fix_metadata=False)
    with pytest.raises(ModelFileError, match="'model.0.W' fails its SHA-256 check"):
        load_model(saved)


def test_metadata_and_archive_disagree(saved):
    def drop(meta, tensors):
        tensors.pop("model.2.b")

    _rewrite(saved, drop, fix_metadata=False)
    with pytest.raises(ModelFileError, match="'model.2.b' listed in the metadata is missing"):
        load_model(saved)


def test_corrupted_bytes_anywhere(saved):
    """A flipped byte gives ModelFileError (never another exception); only a
    flip in bytes nothing reads (zip timestamps, .npy header padding) may load."""
    good = saved.read_bytes()
    offsets = range(0, len(good), max(1, len(good) // 60))
    refused = 0
    for offset in offsets:
        damaged = bytearray(good)
        damaged[offset] ^= 0x5A
        saved.write_bytes(bytes(damaged))
        try:
            load_model(saved)
        except ModelFileError:
            refused += 1
    assert refused >= 0.7 * len(offsets)


def test_truncated_file(saved):
    good = saved.read_bytes()
    for length in (0, 10, len(good) // 3, len(good) // 2, len(good) - 30, len(good) - 1):
        saved.write_bytes(good[:length])
        with pytest.raises(ModelFileError, match="not an .npz archive|corrupt|truncated|metadata"):
            load_model(saved)


def test_not_an_nnumpy_file(tmp_path):
    (tmp_path / "a.npz").write_text("hello")
    with pytest.raises(ModelFileError, match="not an nnumpy model file"):
        load_model(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", W=np.zeros(3))
    with pytest.raises(ModelFileError, match="no embedded metadata"):
        load_model(tmp_path / "b.npz")
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "missing.npz")


class _Trap:
    """Unpickling this would create a directory: the test checks it never happens."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.mkdir, (self.marker,))


def test_pickle_bearing_file_is_refused(saved, tmp_path):
    marker = str(tmp_path / "pwned")

    def inject(meta, tensors):
        tensors["model.0.W"] = np.array([_Trap(marker)], dtype=object)

    with np.load(saved, allow_pickle=False) as f:
        meta = json.loads(f["__metadata__"].tobytes())
        tensors = {k: f[k] for k in f.files if k != "__metadata__"}
    inject(meta, tensors)
    np.savez(saved, __metadata__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **tensors)  # pickles
    with pytest.raises(ModelFileError, match="pickled Python objects, which are refused"):
        load_model(saved)
    assert not (tmp_path / "pwned").exists()


def test_newer_format_version(saved):
    _rewrite(saved, lambda meta, tensors: meta.update(format_version=99))
    with pytest.raises(ModelFileError, match="format version 99.*upgrade nnumpy"):
        load_model(saved)


def test_failed_save_leaves_previous_file(saved):
    before = saved.read_bytes()

    class Unstorable(layers.ReLU):
        pass

    with pytest.raises(ModelFileError):
        save_model(Sequential(Unstorable()), saved)
    with pytest.raises(ModelFileError, match="not JSON-serialisable"):
        save_model(Sequential(layers.ReLU()), saved, metadata={"bad": object()})
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


# ------------------------------------------------------------------ checkpoints
OPTIMIZERS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("NAdam", dict(lr=0.01)),
]


def _stochastic_net():
    """Dropouts on nnumpy's default generator, on an own seed, and two sharing one Generator."""
    shared = np.random.default_rng(7)
    return Sequential(
        layers.Linear(6, 8),
        layers.Dropout(0.3),
        layers.BatchNorm1d(8),
        layers.ReLU(),
        layers.Dropout(0.2, rng=4),
        layers.Linear(8, 8),
        layers.Dropout(0.1, rng=shared),
        layers.Tanh(),
        layers.Dropout(0.1, rng=shared),
        layers.Linear(8, 3),
    )


def _train(model, optimizer, steps, seed):
    losses = []
    for step in range(steps):
        x, target = _input((16, 6), seed=seed + step), _input((16, 3), seed=1000 + seed + step)
        optimizer.zero_grad()
        out = model.forward(x)
        losses.append(float(((out - target) ** 2).mean()))
        model.backward(x, 2 * (out - target) / out.size)
        optimizer.step()
    return losses


@pytest.mark.parametrize("opt_name, hyper", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_checkpoint_resumes_bit_for_bit(tmp_path, opt_name, hyper):
    nnumpy.manual_seed(123)
    model = _stochastic_net()
    optimizer = getattr(nnumpy, opt_name)(model, **hyper)
    _train(model, optimizer, 3, seed=0)
    path = tmp_path / "ckpt.npz"
    loader_state = {"seed": 1, "epoch": 2, "position": 0}
    save_checkpoint(
        path, model, optimizer, epoch=2, step=3, history={"loss": [1.5, np.float32(1.25)]},
        rng_state={"loader": loader_state}, extra={"note": "x"}, input_shape=(6,),
    )  # fmt: skip
    reference = _train(model, optimizer, 4, seed=3)  # the uninterrupted run

    nnumpy.manual_seed(999)  # scramble the global generator: the checkpoint must restore it
    ckpt = load_checkpoint(path)
    resumed_opt = restore_optimizer(ckpt)
    assert type(resumed_opt).__name__ == opt_name and ckpt.optimizer_class == opt_name
    assert (ckpt.epoch, ckpt.step, ckpt.extra, ckpt.input_shape) == (2, 3, {"note": "x"}, (6,))
    assert ckpt.history == {"loss": [1.5, 1.25]} and ckpt.rng_state == {"loader": loader_state}
    resumed = _train(ckpt.model, resumed_opt, 4, seed=3)
    assert resumed == reference
    _assert_same_state(model, ckpt.model)
    assert ckpt.model[6].rng is ckpt.model[8].rng and ckpt.model[6].rng is not ckpt.model[1].rng
    assert ckpt.model[1].rng is nnumpy.backend.default_rng()


def _one_step(model, optimizer, n_in, n_out):
    x = np.ones((1, n_in), np.float32)
    model.forward(x)
    model.backward(x, np.ones((1, n_out), np.float32))
    optimizer.step()


def test_checkpoint_optimizer_state_round_trip(tmp_path):
    model = Sequential(layers.Linear(3, 2))
    optimizer = nnumpy.Adam(model, lr=0.02, betas=(0.8, 0.9))
    _one_step(model, optimizer, 3, 2)
    save_checkpoint(tmp_path / "c.npz", model, optimizer)
    ckpt = load_checkpoint(tmp_path / "c.npz", restore_rng=False)
    state = optimizer.state_dict()
    assert ckpt.optimizer_state["hyper"]["betas"] == [0.8, 0.9] and ckpt.optimizer_state["hyper"]["lr"] == 0.02
    for index, entry in state["state"].items():
        for name, value in entry.items():
            assert np.array_equal(ckpt.optimizer_state["state"][index][name], value)
    fresh = nnumpy.Adam(ckpt.model)
    fresh.load_state_dict(ckpt.optimizer_state)
    assert fresh.betas == (0.8, 0.9) and fresh.state[0]["step"] == 1


def test_checkpoint_without_optimizer_and_load_model_on_checkpoint(tmp_path):
    model = _network()
    save_checkpoint(tmp_path / "c.npz", model, epoch=1)
    ckpt = load_checkpoint(tmp_path / "c.npz")
    assert ckpt.optimizer_class is None and ckpt.optimizer_state is None and restore_optimizer(ckpt) is None
    _assert_same_state(model, load_model(tmp_path / "c.npz"))
    save_model(model, tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="model file, not a checkpoint"):
        load_checkpoint(tmp_path / "m.npz")


def test_checkpoint_file_is_one_plain_npz(tmp_path):
    model = Sequential(layers.Linear(2, 2))
    optimizer = nnumpy.SGD(model, lr=0.1, momentum=0.9)
    _one_step(model, optimizer, 2, 2)
    save_checkpoint(tmp_path / "c.npz", model, optimizer)
    with zipfile.ZipFile(tmp_path / "c.npz") as archive:
        names = sorted(archive.namelist())
    assert names == ["__metadata__.npy", "model.0.W.npy", "model.0.b.npy", "optimizer.0.momentum_buffer.npy",
                     "optimizer.1.momentum_buffer.npy"]  # fmt: skip


def test_unknown_optimizer_class(tmp_path):
    model = Sequential(layers.Linear(2, 2))
    path = tmp_path / "c.npz"
    save_checkpoint(path, model, nnumpy.SGD(model, lr=0.1))
    _rewrite(path, lambda meta, tensors: meta["optimizer"].update({"class": "Evil"}))
    ckpt = load_checkpoint(path)
    with pytest.raises(ModelFileError, match="c.npz: unknown optimizer class 'Evil'"):
        restore_optimizer(ckpt)
