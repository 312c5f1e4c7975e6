"""Hostile and broken model files and checkpoints: refused with ModelFileError
(naming the file and what is wrong) before any memory is allocated, without
ever calling into what the file names; killed saves leave no temporary files
that later saves keep."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from test_serialization import _rewrite

import nnumpy
from nnumpy import layers
from nnumpy.io import ModelFileError, load_checkpoint, load_model, read_metadata, save_checkpoint, save_model

linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc and RLIMIT_AS")

# A child process that loads a file under an address-space limit of its current size + 256 MiB,
# after checking that the limit bites (a 1 GiB array fails), and reports time and peak memory.
CHILD = textwrap.dedent(
    """
    import resource, sys, time
    import numpy as np
    from nnumpy.io import ModelFileError, load_checkpoint, load_model

    def vm_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

    limit = vm_bytes() + 256 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        np.ones(2**28, np.float32)
        print("NO-LIMIT")
    except MemoryError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        (load_checkpoint if sys.argv[2] == "checkpoint" else load_model)(sys.argv[1])
        print("LOADED")
    except ModelFileError as error:
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
        print("REFUSED", time.perf_counter() - start, grown, str(error))
    except MemoryError:
        print("MEMORY-ERROR")
    """
)


def _load_in_child(path, kind="model"):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), kind], capture_output=True, text=True, timeout=120
    )
    out = result.stdout.strip().splitlines()
    assert result.returncode == 0 and out, result.stderr[-2000:]
    assert "NO-LIMIT" not in out
    assert out[-1].startswith("REFUSED"), out
    _, seconds, grown_kib, message = out[-1].split(" ", 3)
    return float(seconds), int(grown_kib), message


def _tiny_embedding_file(tmp_path, kind="model"):
    path = tmp_path / "forged.npz"
    model = nnumpy.Sequential(layers.ReLU(), layers.Embedding(4, 4))
    (save_checkpoint(path, model) if kind == "checkpoint" else save_model(model, path))
    return path


def _set_embedding(meta, **config):
    meta["architecture"]["config"]["modules"][1]["__module__"]["config"].update(config)


@linux_only
@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_small_file_naming_a_huge_layer_is_refused_without_allocating(tmp_path, kind):
    """A few-KB file whose configuration says Embedding(16000, 16000) (1 GiB of
    float32) is refused from the configuration's parameter shapes against the
    tensor headers, before anything is built."""
    path = _tiny_embedding_file(tmp_path, kind)
    _rewrite(path, lambda meta, tensors: _set_embedding(meta, num_embeddings=16000, embedding_dim=16000))
    assert path.stat().st_size < 16_000
    seconds, grown_kib, message = _load_in_child(path, kind)
    assert "tensor '1.weight' has shape (4, 4), but Embedding's configuration gives (16000, 16000)" in message
    assert message.startswith(str(path)) and grown_kib < 64 * 1024 and seconds < 10


@linux_only
def test_small_file_naming_linear_16000_is_refused_without_allocating(tmp_path):
    path = tmp_path / "linear.npz"
    save_model(nnumpy.Sequential(layers.ReLU(), layers.Linear(4, 4)), path)
    _rewrite(path, lambda meta, tensors: _set_embedding(meta, n_in=16000, n_out=16000))
    assert path.stat().st_size < 8_000
    seconds, grown_kib, message = _load_in_child(path)
    assert "tensor '1.W' has shape (4, 4), but Linear's configuration gives (16000, 16000)" in message
    assert grown_kib < 64 * 1024 and seconds < 10


@linux_only
def test_huge_layer_without_a_tensor_or_a_path_is_refused(tmp_path):
    """Without the tensor (and without the module's path, as a format-1 file
    stores none) the total the architecture would allocate is checked."""
    path = _tiny_embedding_file(tmp_path)

    def forge(meta, tensors):
        _set_embedding(meta, num_embeddings=16000, embedding_dim=16000)
        del meta["architecture"]["config"]["modules"][1]["__module__"]["path"]
        del tensors["model.1.weight"]

    _rewrite(path, forge)
    _, grown_kib, message = _load_in_child(path)
    assert "would allocate 256000000 values, but the file holds only 0" in message and grown_kib < 64 * 1024


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory):
    """A ~1 MiB archive whose deflated tensor inflates to 1 GiB, beside a valid metadata member."""
    good = tmp_path_factory.mktemp("bomb") / "good.npz"
    save_model(nnumpy.Sequential(layers.Embedding(16384, 16384 // 1024)), good)
    path = good.with_name("bomb.npz")
    with zipfile.ZipFile(path, "w") as dst, zipfile.ZipFile(good) as src:
        dst.writestr("__metadata__.npy", src.read("__metadata__.npy"))
        info = zipfile.ZipInfo("model.0.weight.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(info, "w", force_zip64=True) as f:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f4", "fortran_order": False, "shape": (16384, 16384)}
            )
            f.write(header.getvalue())
            zeros = bytes(64 * 2**20)
            for _ in range(16):
                f.write(zeros)
    return path


@linux_only
def test_zip_bomb_is_refused_without_inflating(zip_bomb):
    assert zip_bomb.stat().st_size < 2 * 2**20
    seconds, grown_kib, message = _load_in_child(zip_bomb)
    assert "member 'model.0.weight.npy' is compressed" in message
    assert grown_kib < 64 * 1024 and seconds < 10


def test_compressed_member_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    save_model(nnumpy.Sequential(layers.Linear(3, 2)), path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez_compressed(path, **arrays)
    with pytest.raises(ModelFileError, match="is compressed: nnumpy writes model files uncompressed"):
        load_model(path)


def test_header_declaring_more_than_the_member_holds(tmp_path):
    path = tmp_path / "h.npz"
    save_model(nnumpy.Sequential(layers.Linear(3, 2)), path)
    with zipfile.ZipFile(path) as src:
        members = {n: src.read(n) for n in src.namelist()}
    data = members["model.0.W.npy"]
    members["model.0.W.npy"] = data.replace(b"(2, 3)", b"(9, 9)", 1)
    with zipfile.ZipFile(path, "w") as dst:
        for name, value in members.items():
            dst.writestr(name, value)
    with pytest.raises(ModelFileError, match=r"model.0.W.*declares float32\[9, 9\].*truncated or forged"):
        load_model(path)


# ------------------------------------------------------------------ malformed fields
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.npz"
    model = nnumpy.Sequential(layers.Linear(4, 3), layers.Dropout(0.2, rng=1), layers.Linear(3, 2))
    optimizer = nnumpy.SGD(model, lr=0.1, momentum=0.9)
    x = np.ones((2, 4), np.float32)
    model.forward(x)
    model.backward(x, np.ones((2, 2), np.float32))
    optimizer.step()
    save_checkpoint(path, model, optimizer, epoch=1)
    return path


def _arch(meta):
    return meta["architecture"]


def _first(meta):
    return meta["architecture"]["config"]["modules"][0]["__module__"]


BAD_SHAPE = "'input_shape' must be null, a list of sizes or a list of such lists"
MALFORMED = {
    "format version text": (lambda m: m.update(format_version="2"), "bad format version '2'"),
    "format version bool": (lambda m: m.update(format_version=True), "bad format version 'True'"),
    "format version zero": (lambda m: m.update(format_version=0), "bad format version '0'"),
    "format version newer": (lambda m: m.update(format_version=99), "format version 99.*upgrade nnumpy"),
    "no architecture": (lambda m: m.pop("architecture"), "'architecture' is missing"),
    "architecture a list": (lambda m: m.update(architecture=[1, 2]), "'architecture' is missing or not an object"),
    "kind": (lambda m: m.update(kind="weights"), "'kind' must be 'model' or 'checkpoint'"),
    "input shape": (lambda m: m.update(input_shape="28x28"), BAD_SHAPE),
    "input shapes mixed": (lambda m: m.update(input_shape=[[3], 5]), BAD_SHAPE),
    "input shapes negative": (lambda m: m.update(input_shape=[[3], [-1]]), BAD_SHAPE),
    "input shapes nested": (lambda m: m.update(input_shape=[[[3]], [5]]), BAD_SHAPE),
    "user metadata": (lambda m: m.update(metadata=[1]), "'metadata' must be an object"),
    "tensor table": (lambda m: m.update(tensors=[]), "'tensors' must be an object"),
    "tensor entry": (lambda m: m["tensors"].update({"model.0.W": {"shape": "big"}}), "malformed entry"),
    "class missing": (lambda m: _first(m).pop("class"), "no class name"),
    "class a number": (lambda m: _first(m).update({"class": 7}), "no class name"),
    "config a list": (lambda m: _first(m).update(config=[4, 3]), "'config' must be an object"),
    "config value": (lambda m: _first(m)["config"].update(n_in={"weird": 1}), "malformed value"),
    "config type": (lambda m: _first(m)["config"].update(n_out="three"), "Linear"),
    "config key": (lambda m: _first(m)["config"].update(forward=1), "unknown configuration key"),
    "unknown field": (lambda m: _first(m).update(code="x"), "unknown field"),
    "duplicate id": (lambda m: _first(m).update(id=0), "'id' 0 is used twice"),
    "dangling ref": (lambda m: _arch(m)["config"]["modules"].append({"__module__": {"ref": 42}}), "reference '42'"),
    "self ref": (lambda m: _arch(m)["config"].update(modules=[{"__module__": {"ref": 0}}]), "not defined before"),
    "path type": (lambda m: _first(m).update(path=[0]), "'path' must be a string"),
    "frozen type": (lambda m: _first(m).update(frozen="yes"), "'frozen' must be true or false"),
    "epoch": (lambda m: m.update(epoch="one"), "'epoch' must be an integer"),
    "optimizer": (lambda m: m.update(optimizer=[1]), "'optimizer' must be null or an object"),
    "optimizer state": (lambda m: m["optimizer"].update(state=[]), "'optimizer.state' must be an object"),
    "optimizer index": (lambda m: m["optimizer"]["state"].update(x={}), "must be a parameter index"),
    "optimizer tensor": (lambda m: m["optimizer"]["state"]["0"].update(momentum_buffer={"__tensor__": "model.0.W"}),
                         "refers to no tensor"),
    "optimizer value": (lambda m: m["optimizer"]["state"]["0"].update(step=[1, 2]), "must be a number or a tensor"),
    "optimizer step": (lambda m: m["optimizer"]["hyper"].update(step=1), r"names \['step'\], which are not hyper"),
    "group step": (lambda m: m["optimizer"]["param_groups"][0].update(step=1), r"names \['step'\]"),
    "generators": (lambda m: m.update(generators=[]), "bad random generator states"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_fields_raise_model_file_error(saved, name):
    mutate, expected = MALFORMED[name]
    _rewrite(saved, lambda meta, tensors: mutate(meta), fix_metadata=not name.startswith("tensor"))
    with pytest.raises(ModelFileError, match=expected) as info:
        load_checkpoint(saved)
    assert str(info.value).startswith(str(saved))


def test_deep_nesting_is_refused(tmp_path, saved):
    def deep_json(meta, tensors):
        meta["metadata"] = {"x": json.loads("[" * 50 + "]" * 50)}

    _rewrite(saved, deep_json)
    raw = saved.read_bytes()
    assert raw  # a valid file with some nesting still loads
    load_checkpoint(saved)
    for depth in (300, 100_000):
        text = json.dumps({"format": "nnumpy"})[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
        np.savez(saved, __metadata__=np.frombuffer(text.encode(), np.uint8))
        with pytest.raises(ModelFileError, match="nested|corrupt metadata|format version"):
            load_model(saved)

    def deep_architecture(meta, tensors):
        spec = {"class": "Identity", "id": 0, "config": {}}
        for i in range(1, 150):
            spec = {"class": "Sequential", "id": i, "config": {"modules": [{"__module__": spec}]}}
        meta["architecture"] = spec

    save_model(nnumpy.Sequential(layers.Identity()), tmp_path / "d.npz")
    _rewrite(tmp_path / "d.npz", deep_architecture)
    with pytest.raises(ModelFileError, match="architecture nested deeper than 300 levels"):
        load_model(tmp_path / "d.npz")


def test_random_damage_to_the_metadata_never_raises_anything_else(saved):
    """Every field replaced by values of the wrong type, one at a time."""
    with np.load(saved) as f:
        original = json.loads(f["__metadata__"].tobytes())
    bad_values = [None, 1, -1, 2.5, "x", [], [1, "a"], {}, {"a": []}, True]

    def paths(value, prefix=()):
        yield prefix
        if isinstance(value, dict):
            for k, v in value.items():
                yield from paths(v, prefix + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value[:3]):
                yield from paths(v, prefix + (i,))

    good = saved.read_bytes()
    checked = 0
    for where in list(paths(original))[1:]:
        if "history" in where or "extra" in where or "rng_state" in where or where[0] == "metadata":
            continue
        for bad in bad_values[:: 1 + checked % 3]:
            def mutate(meta, tensors, where=where, bad=bad):
                target = meta
                for key in where[:-1]:
                    target = target[key]
                target[where[-1]] = bad

            saved.write_bytes(good)
            _rewrite(saved, mutate, fix_metadata=where[0] != "tensors")
            try:
                load_checkpoint(saved)
            except ModelFileError:
                pass
            checked += 1
    assert checked > 200


# ------------------------------------------------------------------ names from the file
def test_a_checkpoint_cannot_call_numpy_random_functions(saved):
    np.random.seed(3)
    legacy = np.random.get_state()[1].copy()

    def name_seed(meta, tensors):
        meta["generators"]["default"]["bit_generator"] = "seed"
        meta["generators"]["groups"]["0"]["bit_generator"] = "seed"

    _rewrite(saved, name_seed)
    with pytest.raises(ModelFileError, match="unknown bit generator 'seed'"):
        load_checkpoint(saved)
    assert np.array_equal(np.random.get_state()[1], legacy)  # np.random.seed() was never called


def test_a_checkpoint_cannot_set_a_layer_s_forward(saved):
    def target_forward(meta, tensors):
        meta["generators"]["modules"][0]["attr"] = "forward"

    _rewrite(saved, target_forward)
    with pytest.raises(ModelFileError, match="1.forward, which is not one of that module's generators"):
        load_checkpoint(saved)
    _rewrite(saved, lambda meta, tensors: meta["generators"]["modules"][0].update(module="9"))
    with pytest.raises(ModelFileError, match="names a module '9' the model does not have"):
        load_checkpoint(saved)


def test_a_checkpoint_cannot_set_an_optimizer_s_step(saved):
    _rewrite(saved, lambda meta, tensors: meta["optimizer"]["hyper"].update(step=0, zero_grad=0))
    with pytest.raises(ModelFileError, match=r"\['step', 'zero_grad'\], which are not hyper-parameters of SGD"):
        load_checkpoint(saved)
    ckpt_path = saved
    _rewrite(ckpt_path, lambda meta, tensors: [meta["optimizer"]["hyper"].pop(k) for k in ("step", "zero_grad")])
    ckpt = load_checkpoint(ckpt_path)
    optimizer = nnumpy.io.restore_optimizer(ckpt)
    assert callable(optimizer.step) and optimizer.lr == 0.1


def test_the_generators_of_a_valid_checkpoint_still_restore(saved):
    ckpt = load_checkpoint(saved)
    assert isinstance(ckpt.model[1].rng, np.random.Generator)
    assert read_metadata(saved)["generators"]["modules"][0]["attr"] == "rng"


# ------------------------------------------------------------------ temporaries of killed saves
WRITER = textwrap.dedent(
    """
    import sys, time
    import nnumpy
    from nnumpy.io import atomic

    def pause(tmp):
        print("TEMP", tmp, flush=True)
        time.sleep(120)

    atomic.before_replace = pause
    nnumpy.save_model(nnumpy.Sequential(nnumpy.Linear(64, 64)), sys.argv[1])
    """
)


def _paused_writer(path):
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().split()
    assert line and line[0] == "TEMP", line
    return process, os.path.basename(line[1])


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_next_save_removes_temporaries_of_killed_writers_only(tmp_path):
    path = tmp_path / "m.npz"
    live, live_tmp = _paused_writer(path)  # a concurrent save in progress
    try:
        killed, killed_tmp = _paused_writer(path)
        killed.kill()
        killed.wait(timeout=30)
        killed.stdout.close()
        assert {killed_tmp, live_tmp} <= set(os.listdir(tmp_path))
        assert f".{os.getpid()}." not in killed_tmp and f".{killed.pid}." in killed_tmp
        save_model(nnumpy.Sequential(layers.Linear(2, 2)), path)
        names = set(os.listdir(tmp_path))
        assert killed_tmp not in names  # the dead writer's temporary is gone
        assert live_tmp in names  # the live writer's is kept
        assert load_model(path)[0].W.shape == (2, 2)
    finally:
        live.kill()
        live.wait(timeout=30)
        live.stdout.close()
    other_host = tmp_path / f".m.npz.otherhost.{killed.pid}.abc.tmp"
    other_host.write_bytes(b"")
    save_model(nnumpy.Sequential(layers.Linear(2, 2)), path)
    assert other_host.exists() and live_tmp not in os.listdir(tmp_path)


BUILT = []


@nnumpy.register_module
class NoShapes(nnumpy.Module):
    """A user layer with a parameter and no parameter_shapes: its constructor records each call."""

    _parameters = (("w", "gradw"),)

    def __init__(self, n):
        super().__init__()
        BUILT.append(n)
        self.w = np.ones(n, np.float32)
        self.gradw = np.zeros_like(self.w)

    def updateOutput(self, input):
        self.output = input * self.w
        return self.output


def test_a_class_without_parameter_shapes_is_built_only_after_every_other_check(tmp_path):
    path = tmp_path / "u.npz"
    save_model(nnumpy.Sequential(NoShapes(3), layers.Linear(3, 2)), path)
    assert NoShapes.parameter_shapes({"n": 3}) is None
    BUILT.clear()

    def forge(meta, tensors):
        meta["architecture"]["config"]["modules"][1]["__module__"]["config"]["n_in"] = 16000

    _rewrite(path, forge)
    with pytest.raises(ModelFileError, match="Linear's configuration gives"):
        load_model(path)
    _rewrite(path, lambda meta, tensors: tensors["model.1.W"].__setitem__((0, 0), 7.0), fix_metadata=False)
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model(path)
    assert BUILT == []  # never constructed while the file had a problem
    save_model(nnumpy.Sequential(NoShapes(3), layers.Linear(3, 2)), path)
    BUILT.clear()
    assert load_model(path)[0].w.shape == (3,) and BUILT == [3]
