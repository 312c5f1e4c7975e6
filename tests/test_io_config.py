"""Module configurations (get_config / from_config / parameter_shapes): every
registered class stores what it is now, hyper-parameters changed after
construction included, through a model file and a checkpoint; containers,
graphs and shared modules round-trip; format-1 files still load."""

import json

import numpy as np
import pytest
from module_table import MODULES
from module_table import make_input as table_input
from test_serialization import _assert_same_state, _input

import nnumpy
from nnumpy import layers
from nnumpy.io import (
    ModelFileError,
    build_module,
    load_checkpoint,
    load_model,
    module_config,
    read_metadata,
    registry,
    save_checkpoint,
    save_model,
)

# every entry of the one table (tests/module_table.py), then containers holding
# modules whose hyper-parameters change and a graph sharing a module: (id, constructor, input spec)
TABLE = [(e.name, lambda e=e: e.make(0), e.inputs[0]) for e in MODULES]
ENTRIES = {e.name: e for e in MODULES}


def _load(name, loaded):
    """A loaded module with its table entry's forward keywords (masks, need_weights) bound again."""
    return ENTRIES[name].bind(loaded) if name in ENTRIES else loaded


CONTAINERS = [
    ("Sequential", lambda: nnumpy.Sequential(layers.Linear(4, 3), layers.Dropout(0.2, rng=1)), (2, 4)),
    ("Residual", lambda: nnumpy.Residual(layers.Linear(4, 4), layers.LeakyReLU(0.1)), (2, 4)),
    ("ConcatTable", lambda: nnumpy.ConcatTable(layers.Linear(4, 2), layers.ELU(0.5)), (2, 4)),
    ("ParallelTable", lambda: nnumpy.ParallelTable(layers.Linear(4, 2), layers.Tanh()), ((2, 4), (2, 3))),
    ("Concat", lambda: nnumpy.Concat(1, layers.Linear(4, 2), layers.Linear(4, 3)), (2, 4)),
    ("CAddTable", lambda: nnumpy.CAddTable(), ((2, 4), (2, 4))),
    ("CSubTable", lambda: nnumpy.CSubTable(), ((2, 4), (2, 4))),
    ("CMulTable", lambda: nnumpy.CMulTable(), ((2, 4), (2, 4))),
    ("JoinTable", lambda: nnumpy.JoinTable(1), ((2, 4), (2, 3))),
    ("SplitTable", lambda: nnumpy.SplitTable(1), (2, 4)),
    ("SelectTable", lambda: nnumpy.SelectTable(-1), ((2, 4), (2, 3))),
    ("Graph", lambda: _graph(), (2, 4)),
]
ALL = TABLE + [(f"{name}-io", make, spec) for name, make, spec in CONTAINERS]


def _graph():
    x = nnumpy.Input()
    shared = layers.Linear(4, 4)
    h = shared(layers.LeakyReLU(0.3)(shared(x, name="proj")))
    return nnumpy.Graph(x, nnumpy.CAddTable()(h, x))


def _float_hyperparameters(module):
    """The configuration entries that are floats held in an attribute of the same name."""
    return [k for k, v in module.get_config().items()
            if isinstance(v, float) and isinstance(getattr(module, k, None), float)]  # fmt: skip


def _leaves(out):
    return [leaf for part in out for leaf in _leaves(part)] if isinstance(out, (tuple, list)) else [out]


def _output(module, x):
    module.evaluate()
    return _leaves(module.forward(x))


def _check_same(module, loaded, x, changed):
    assert type(loaded) is type(module)
    assert loaded.get_config().keys() == module.get_config().keys()
    for key, value in changed.items():
        assert getattr(loaded, key) == value, key
    _assert_same_state(module, loaded)
    for a, b in zip(_output(module, x), _output(loaded, x), strict=True):
        if a is not None:
            assert np.array_equal(a, b)


def test_every_registered_class_has_an_entry():
    named = {entry[0].split("-")[0] for entry in ALL}
    missing = {
        name for name, cls in registry.builtin_classes().items()
        if issubclass(cls, nnumpy.Module) and cls is not nnumpy.Module and getattr(nnumpy, name, None) is cls
    } - named  # fmt: skip (every public module class of nnumpy)
    # base classes, seed-dialect aliases and classes not exported as layers
    assert missing <= {"BatchNorm", "Composite", "Container", "Block", "Criterion", "LayerStack"} | {
        n for n in missing if "Seed" in n or n.startswith("_") or n.endswith("Base")
    }, sorted(missing)


MUTATED = []


@pytest.mark.parametrize("name, make, shape", ALL, ids=[e[0] for e in ALL])
def test_hyperparameters_changed_after_construction_survive(tmp_path, name, make, shape):
    """Each float hyper-parameter is changed after construction; the model
    file and the checkpoint both store and restore the new value."""
    module = make()
    dtype = np.float64 if "f64" in name else np.float32
    x = table_input(shape, dtype)
    module.forward(x)
    changed = {}
    for key in _float_hyperparameters(module):
        value = getattr(module, key)
        setattr(module, key, round(value * 0.5 + 0.01, 6) if value >= 0 else round(value * 0.5, 6))
        changed[key] = getattr(module, key)
    MUTATED.extend(f"{name}.{k}" for k in changed)
    save_model(module, tmp_path / "m.npz")
    _check_same(module, _load(name, load_model(tmp_path / "m.npz")), x, changed)
    save_checkpoint(tmp_path / "c.npz", module, epoch=1)
    _check_same(module, _load(name, load_checkpoint(tmp_path / "c.npz").model), x, changed)


def test_the_mutation_test_changed_the_issue_s_hyperparameters():
    """The hyper-parameters the issue names are among those changed above."""
    if not MUTATED:  # run alone: collect them again
        for name, make, _ in ALL:
            MUTATED.extend(f"{name}.{k}" for k in _float_hyperparameters(make()))
    for expected in ("Dropout.p", "LeakyReLU.slope", "BatchNorm1d.momentum", "BatchNorm1d.eps", "ELU.alpha"):
        assert expected in MUTATED
    assert len(set(MUTATED)) >= 20


@pytest.mark.parametrize("name, make, shape", ALL, ids=[e[0] for e in ALL])
def test_parameter_shapes_match_what_the_constructor_allocates(name, make, shape):
    """``parameter_shapes(config)`` (when the class reports them) is exactly the
    shapes of the state a module built from that configuration holds."""
    module = make()
    reported = type(module).parameter_shapes(module.get_config())
    if reported is None:
        assert type(module).__name__ in PENDING_SHAPES, f"{type(module).__name__} reports no parameter shapes"
        return
    config_modules = {id(m) for m in _modules_in(module.get_config())}
    children = {str(name) for name, child in module.children() if id(child) in config_modules}
    # a configuration's modules report their own state; "~name" is an array the constructor computes
    own = {k: tuple(v.shape) for k, v in module.state_dict().items() if k.split(".")[0] not in children}
    reported = {k: v for k, v in reported.items() if not k.startswith("~")}
    assert {k: tuple(v) for k, v in reported.items()} == own


def _modules_in(value):
    if isinstance(value, nnumpy.Module):
        return [value]
    if isinstance(value, (list, tuple)):
        return [m for v in value for m in _modules_in(v)]
    if isinstance(value, dict):
        return [m for v in value.values() for m in _modules_in(v)]
    return []


# classes with parameters whose files are being rewritten elsewhere (see the report / docs/files.md)
PENDING_SHAPES = set()  # every built-in class with state reports its shapes


def test_shared_module_is_saved_once_and_stays_shared(tmp_path):
    shared = layers.Linear(3, 3)
    net = nnumpy.Sequential(shared, layers.ReLU(), shared, nnumpy.Sequential(shared))
    save_model(net, tmp_path / "s.npz")
    spec = read_metadata(tmp_path / "s.npz")["architecture"]
    text = json.dumps(spec)
    assert text.count('"Linear"') == 1 and text.count('"ref"') == 2
    loaded = load_model(tmp_path / "s.npz")
    assert loaded[0] is loaded[2] is loaded[3][0]
    x = _input((2, 3))
    assert np.array_equal(loaded.forward(x), net.forward(x))
    assert list(loaded.state_dict()) == ["0.W", "0.b"]


def test_graph_round_trips_with_names_sharing_and_several_outputs(tmp_path):
    a, b = nnumpy.Input("a"), nnumpy.Input()
    shared = layers.Linear(4, 4)
    h = shared(a, name="enc")
    k = shared(b)
    both = nnumpy.ConcatTable(layers.Identity(), layers.Tanh())(h)
    net = nnumpy.Graph([a, b], [nnumpy.CAddTable()(both[0], k), both[1], nnumpy.JoinTable(1)([h])])
    save_model(net, tmp_path / "g.npz")
    loaded = load_model(tmp_path / "g.npz")
    assert repr(loaded) == repr(net) and list(loaded.state_dict()) == ["enc.W", "enc.b"]
    x = (_input((2, 4), seed=1), _input((2, 4), seed=2))
    for p, q in zip(loaded.forward(x), net.forward(x), strict=True):
        assert np.array_equal(p, q)
    assert loaded.children()[0][1] is dict(loaded.children())["enc"]


def test_config_changes_after_construction_of_containers(tmp_path):
    net = nnumpy.Sequential(layers.Linear(3, 3))
    net.add(layers.Dropout(0.5))
    net[1].p = 0.25
    block = nnumpy.Residual(layers.Linear(3, 3))
    block.body = layers.Linear(3, 3, bias=False)  # replaced after construction
    save_model(nnumpy.Sequential(net, block), tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded[0][1].p == 0.25 and loaded[1].body.b is None


def test_format_1_files_still_load(tmp_path):
    """A file of the previous release (architecture as constructor arguments)."""
    net = nnumpy.Sequential(layers.Linear(4, 3), layers.BatchNorm1d(3, momentum=0.3), layers.LeakyReLU(0.2),
                            nnumpy.Concat(1, layers.Linear(3, 2), layers.Identity()))  # fmt: skip
    net.forward(_input((5, 4)))
    save_model(net, tmp_path / "new.npz")
    v1 = {"class": "Sequential", "args": {}, "children": [
        {"class": "Linear", "args": {"n_in": 4, "n_out": 3, "bias": True, "dtype": "float32", "rng": None}},
        {"class": "BatchNorm1d", "args": {"num_features": 3, "eps": 1e-5, "momentum": 0.3, "affine": True,
                                          "dtype": "float32"}, "frozen": True},
        {"class": "LeakyReLU", "args": {"slope": 0.2}},
        {"class": "Concat", "args": {"dim": 1}, "children": [
            {"class": "Linear", "args": {"n_in": 3, "n_out": 2, "bias": True, "dtype": "float32", "rng": None}},
            {"class": "Identity", "args": {}}]},
    ]}  # fmt: skip
    with np.load(tmp_path / "new.npz") as f:
        meta = json.loads(f["__metadata__"].tobytes())
        tensors = {k: f[k] for k in f.files if k != "__metadata__"}
    meta.update(format_version=1, architecture=v1)
    np.savez(tmp_path / "old.npz", __metadata__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **tensors)
    loaded = load_model(tmp_path / "old.npz")
    assert loaded[1].frozen and loaded[1].momentum == 0.3 and loaded[2].slope == 0.2 and loaded[3].dim == 1
    x = _input((2, 4))
    assert np.array_equal(loaded.evaluate().forward(x), net.evaluate().forward(x))
    assert isinstance(build_module(v1), nnumpy.Sequential)


def test_from_config_refuses_unknown_keys_and_build_module_checks_first():
    with pytest.raises(TypeError, match="unknown configuration key"):
        layers.Dropout.from_config({"p": 0.1, "forward": 1})
    spec = module_config(nnumpy.Sequential(layers.Linear(2, 2)))
    spec["config"]["modules"][0]["__module__"]["config"]["n_out"] = "many"
    with pytest.raises(ModelFileError, match="Linear"):
        build_module(spec)


DATA = __import__("pathlib").Path(__file__).parent / "data"


def test_files_written_by_the_previous_release_load():
    """tests/data/*_v1.npz were written by nnumpy before format 2 (its
    save_model and save_checkpoint, see the commit that added them)."""
    assert read_metadata(DATA / "model_v1.npz")["format_version"] == 1
    net = load_model(DATA / "model_v1.npz")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert np.array_equal(net.evaluate().forward(x), np.load(DATA / "expected_v1.npy"))
    assert net[1].momentum == 0.3 and net[2].slope == 0.2 and net[3].p == 0.25
    assert net[4].frozen and net[4][0].frozen and not net[0].frozen
    ckpt = load_checkpoint(DATA / "checkpoint_v1.npz")
    optimizer = nnumpy.io.restore_optimizer(ckpt)
    assert (ckpt.epoch, ckpt.step, type(optimizer).__name__, optimizer.lr) == (2, 7, "Adam", 0.01)
    assert np.array_equal(ckpt.model.evaluate().forward(x), np.load(DATA / "expected_v1.npy"))


def test_checkpoint_of_a_graph_with_a_shared_module_resumes(tmp_path):
    net = _graph()
    optimizer = nnumpy.Adam(net, lr=0.01)
    x, target = _input((3, 4), seed=4), _input((3, 4), seed=5)

    def step(model, opt):
        opt.zero_grad()
        out = model.forward(x)
        model.backward(x, 2 * (out - target) / out.size)
        opt.step()
        return model.forward(x)

    step(net, optimizer)
    save_checkpoint(tmp_path / "g.npz", net, optimizer, epoch=1)
    expected = step(net, optimizer)
    ckpt = load_checkpoint(tmp_path / "g.npz")
    resumed = nnumpy.io.restore_optimizer(ckpt)
    assert list(ckpt.model.state_dict()) == ["proj.W", "proj.b"]
    assert np.array_equal(step(ckpt.model, resumed), expected)
