"""Safe model files and crash-safe checkpoints.

A model file is ONE ``.npz`` archive: every parameter and buffer as a tensor
named by its ``state_dict`` key (``model.0.W``), and a JSON document
(``__metadata__``) holding the format version, the architecture (each module's
class name and constructor arguments, nested containers included), the input
shape, the dtype and the SHA-256 of every tensor. A checkpoint is the same file
with the optimizer's state (arrays as ``optimizer.<index>.<name>`` tensors),
epoch, step, history and every random generator's state added.

Loading never executes code: archives are read with ``allow_pickle=False`` and
classes are looked up by name among nnumpy's own modules and the ones
registered with ``register_module``. Every write goes to a temporary file in
the target's directory, is flushed and fsynced, then atomically renamed over
the target (and the directory fsynced), so a process killed mid-write leaves
the previous file intact.

Example:
    >>> import os, tempfile, numpy as np, nnumpy
    >>> net = nnumpy.Sequential(nnumpy.Linear(4, 3), nnumpy.ReLU(), nnumpy.Linear(3, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> nnumpy.save_model(net, path, input_shape=(4,))
    >>> x = np.ones((1, 4), np.float32)
    >>> bool((nnumpy.load_model(path).forward(x) == net.forward(x)).all())
    True
"""

import contextlib
import hashlib
import inspect
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .module import Module

__all__ = [
    "ModelFileError",
    "register_module",
    "module_config",
    "build_module",
    "save_model",
    "load_model",
    "read_metadata",
    "save_checkpoint",
    "load_checkpoint",
    "restore_optimizer",
    "Checkpoint",
    "atomic_write",
]

FORMAT = "nnumpy"
FORMAT_VERSION = 1
METADATA_KEY = "__metadata__"

# Called with the temporary file's path after it is fully written and fsynced,
# just before the rename; the kill-during-write test pauses here.
_before_replace = None


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be saved or loaded; the message lists
    every problem found (``problems`` holds them one by one)."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(f"{self.path}: " + "; ".join(self.problems))


# ------------------------------------------------------------------ atomic writes
@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path`` for writing; on success flush,
    fsync, rename it over ``path`` and fsync the directory. On error (or a
    kill) ``path`` is untouched and the temporary file is removed (or left as a
    hidden ``.name.*.tmp`` after a kill, which nothing reads).

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "history.json")
        >>> with atomic_write(p, "w") as f:
        ...     _ = f.write("{}")
        >>> open(p).read()
        '{}'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is not what an ordinary file gets
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if _before_replace is not None:
            _before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------ class registry
_REGISTRY = {}


def register_module(cls=None, *, name=None):
    """Allow ``load_model`` to rebuild instances of the user class ``cls``.

    Usable as ``register_module(MyLayer)`` or as a decorator (``@register_module``
    or ``@register_module(name="MyLayer")``). Also accepts optimizer classes
    (for ``restore_optimizer``). Returns the class.
    """
    if cls is None:
        return lambda c: register_module(c, name=name)
    from .optim import Optimizer

    if not (isinstance(cls, type) and issubclass(cls, (Module, Optimizer))):
        raise TypeError(f"register_module: expected a Module or Optimizer subclass, got {cls!r}")
    key = name or cls.__name__
    builtin = _builtin_classes().get(key)
    if builtin is not None and builtin is not cls:
        raise ValueError(
            f"register_module: the name {key!r} is taken by nnumpy's own {builtin.__module__}.{key}; "
            f"register with another name: register_module({cls.__name__}, name='My{key}')"
        )
    _REGISTRY[key] = cls
    return cls


def _subclasses(base):
    found, todo = [], [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _builtin_classes():
    """nnumpy's own public Module and Optimizer classes, by name."""
    import nnumpy  # noqa: F401  (imports every layer module)

    from .optim import Optimizer

    classes = {"Module": Module}
    for cls in _subclasses(Module) + _subclasses(Optimizer):
        if cls.__module__.startswith("nnumpy.") and not cls.__name__.startswith("_"):
            classes.setdefault(cls.__name__, cls)
    return classes


def _resolve(name):
    cls = _REGISTRY.get(name) or _builtin_classes().get(name)
    return cls


def _class_name(cls):
    for key, registered in _REGISTRY.items():
        if registered is cls:
            return key
    if _builtin_classes().get(cls.__name__) is cls:
        return cls.__name__
    raise ModelFileError(
        "<model>",
        f"class {cls.__module__}.{cls.__qualname__} is not one of nnumpy's and is not registered: "
        f"decorate it with @nnumpy.register_module so that it can be saved and loaded",
    )


# ------------------------------------------------------------------ architecture
def _encode_value(value, where):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.dtype, type)) and _is_dtype(value):
        return np.dtype(value).name
    if isinstance(value, (tuple, list)):
        return [_encode_value(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode_value(v, where) for k, v in value.items()}
    if isinstance(value, Module):
        return {"__module__": module_config(value)}
    raise ModelFileError("<model>", f"{where}: cannot store a constructor argument of type {type(value).__name__}")


def _is_dtype(value):
    try:
        return np.dtype(value).kind in "biufc" and not isinstance(value, str)
    except TypeError:
        return False


def _decode_value(value):
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    if isinstance(value, dict):
        if set(value) == {"__module__"}:
            return build_module(value["__module__"])
        return {k: _decode_value(v) for k, v in value.items()}
    return value


def module_config(module):
    """The architecture of ``module`` as a JSON-able dict:
    ``{"class": name, "args": {...}, "children": [...]}``.

    Arguments come from the constructor call (``module._init_args``), bound to
    parameter names with defaults filled in; dtypes become strings, tuples
    lists; random generators are dropped. A container's children are its
    current modules (so ``Sequential().add(...)`` is captured).
    """
    cls = type(module)
    name = _class_name(cls)
    args, kwargs = getattr(module, "_init_args", ((), {}))
    signature = inspect.signature(cls.__init__)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as error:
        raise ModelFileError("<model>", f"{name}: constructor arguments do not match its signature ({error})") from None
    bound.apply_defaults()
    config = {"class": name, "args": {}}
    params = list(signature.parameters.values())[1:]
    for param in params:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            if module.children():
                config["children"] = [module_config(child) for _, child in module.children()]
            else:
                config["varargs"] = _encode_value(list(bound.arguments.get(param.name, ())), f"{name}(*{param.name})")
            continue
        value = bound.arguments.get(param.name, param.default)
        if isinstance(value, np.random.Generator):
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            config["args"].update(_encode_value(dict(value), f"{name}(**{param.name})"))
        else:
            config["args"][param.name] = _encode_value(value, f"{name}({param.name}=...)")
    if module._frozen:
        config["frozen"] = True
    return config


def _unknown_classes(config, found):
    if not isinstance(config, dict) or "class" not in config:
        found.append(f"malformed architecture entry {str(config)[:80]!r}")
        return found
    if _resolve(config["class"]) is None or not issubclass(_resolve(config["class"]), Module):
        found.append(f"unknown class {config['class']!r} (not an nnumpy module; register it with register_module)")
    for child in config.get("children", ()):
        _unknown_classes(child, found)
    for value in config.get("args", {}).values():
        if isinstance(value, dict) and "__module__" in value:
            _unknown_classes(value["__module__"], found)
    return found


def build_module(config):
    """Rebuild a module (untrained weights) from ``module_config``'s dict.

    Only nnumpy's classes and registered ones are accepted. The default
    generator's state is left as it was (constructors draw initial weights
    from it; those are overwritten by ``load_model`` anyway).
    """
    problems = _unknown_classes(config, [])
    if problems:
        raise ModelFileError("<architecture>", problems)
    cls = _resolve(config["class"])
    args = {k: _decode_value(v) for k, v in config.get("args", {}).items()}
    positional = [build_module(c) for c in config.get("children", ())]
    positional += list(_decode_value(config.get("varargs", [])))
    generator = backend.default_rng()
    saved = generator.bit_generator.state
    try:
        module = cls(*positional, **args)
    except Exception as error:
        raise ModelFileError("<architecture>", f"could not rebuild {config['class']}: {error}") from None
    finally:
        generator.bit_generator.state = saved
    if config.get("frozen"):
        module.freeze()
    return module


# ------------------------------------------------------------------ JSON helpers
def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, (tuple, set)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot store a {type(value).__name__} in a model file's JSON metadata")


def _json_restore(value):
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {k: _json_restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_restore(v) for v in value]
    return value


def _sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ------------------------------------------------------------------ writing
def _model_tensors(model):
    return {f"model.{k}": np.asarray(v) for k, v in model.state_dict().items()}


def _model_dtype(model):
    dtypes = {p.dtype.name for p in model.parameters() if p.dtype.kind == "f"}
    return dtypes.pop() if len(dtypes) == 1 else (sorted(dtypes) or None)


def _write(path, kind, model, tensors, extra_meta, input_shape, metadata):
    from . import __version__

    if not isinstance(model, Module):
        raise TypeError(f"expected a Module to save, got {type(model).__name__}")
    for key, value in tensors.items():
        if value.dtype.kind not in "biufc":
            raise ModelFileError(path, f"tensor {key!r} has dtype {value.dtype}, which a model file cannot hold")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "nnumpy_version": __version__,
        "numpy_version": np.__version__,
        "architecture": module_config(model),
        "input_shape": None if input_shape is None else [None if d is None else int(d) for d in input_shape],
        "dtype": _model_dtype(model),
        "num_parameters": model.num_parameters,
        "tensors": {
            k: {"shape": list(v.shape), "dtype": v.dtype.name, "sha256": _sha256(v)} for k, v in tensors.items()
        },
        "metadata": metadata if metadata is not None else {},
    }
    meta.update(extra_meta)
    try:
        text = json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as error:
        raise ModelFileError(path, f"metadata is not JSON-serialisable: {error}") from None
    arrays = dict(tensors)
    arrays[METADATA_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def save_model(model, path, *, input_shape=None, metadata=None):
    """Write ``model`` (architecture, parameters, buffers) to one ``.npz`` file.

    Args:
        model: the Module; every class in it must be nnumpy's or registered.
        path: destination; replaced atomically.
        input_shape: the shape of one example without the batch axis, e.g.
            ``(1, 28, 28)``; stored for tools that build inputs.
        metadata: a JSON-able dict of your own (dataset, accuracy, ...).
    """
    _write(path, "model", model, _model_tensors(model), {}, input_shape, metadata)


def save_checkpoint(
    path,
    model,
    optimizer=None,
    *,
    epoch=0,
    step=0,
    history=None,
    rng_state=None,
    extra=None,
    input_shape=None,
):
    """Write a resumable checkpoint: the model file plus the optimizer state,
    ``epoch``, ``step``, ``history`` (JSON dict), ``rng_state`` (any JSON-able
    object of the caller's, e.g. data-loader states), ``extra``, and the state
    of nnumpy's default generator and of every generator the modules hold
    (restored by ``load_checkpoint``). Crash-safe: a kill mid-write leaves the
    previous checkpoint loadable.
    """
    tensors = _model_tensors(model)
    meta = {
        "epoch": int(epoch),
        "step": int(step),
        "history": history.to_dict() if hasattr(history, "to_dict") else history,
        "rng_state": rng_state,
        "extra": extra,
        "generators": _capture_generators(model),
        "optimizer": None,
    }
    if optimizer is not None:
        state = optimizer.state_dict()
        entries = {}
        for index, entry in state.get("state", {}).items():
            stored = {}
            for name, value in entry.items():
                if isinstance(value, np.ndarray):
                    key = f"optimizer.{int(index)}.{name}"
                    tensors[key] = value
                    stored[name] = {"__tensor__": key}
                else:
                    stored[name] = value
            entries[str(int(index))] = stored
        meta["optimizer"] = {
            "class": _class_name(type(optimizer)),
            "hyper": state.get("hyper", {}),
            "param_groups": _named_groups(state.get("param_groups"), optimizer, model),
            "state": entries,
        }
    _write(path, "checkpoint", model, tensors, meta, input_shape, None)


def _named_groups(groups, optimizer, model):
    """The optimizer's parameter groups, each with the model's names of its
    parameters (``"param_names"``), so that ``restore_optimizer`` rebuilds them."""
    if not groups:
        return groups
    names = {id(p): n for n, p in model.named_parameters()}
    groups = [dict(g) for g in groups]
    for packed, group in zip(groups, getattr(optimizer, "param_groups", []), strict=False):
        arrays = group.get("params", [])
        if "param_names" not in packed and all(id(p) in names for p in arrays):
            packed["param_names"] = [names[id(p)] for p in arrays]
    return groups


# ------------------------------------------------------------------ generators
def _capture_generators(model):
    default = backend.default_rng()
    groups, states, uses = {}, {}, []
    for prefix, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                if value is default:
                    gid = "default"
                else:
                    gid = groups.setdefault(id(value), str(len(groups)))
                    states[gid] = value.bit_generator.state
                uses.append({"module": prefix, "attr": attr, "generator": gid})
    return {"default": default.bit_generator.state, "groups": states, "modules": uses}


def _restore_generators(model, saved):
    if not saved:
        return
    default = backend.default_rng()
    default.bit_generator.state = _json_restore(saved["default"])
    made = {"default": default}
    for gid, state in saved.get("groups", {}).items():
        state = _json_restore(state)
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
        made[gid] = np.random.Generator(bit_generator)
    modules = dict(model.named_modules())
    for use in saved.get("modules", ()):
        module = modules.get(use["module"])
        if module is not None and use["generator"] in made:
            setattr(module, use["attr"], made[use["generator"]])


# ------------------------------------------------------------------ reading
def _read(path):
    """Read and verify a file: returns ``(metadata, tensors)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(path, "no such file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(path, "not an nnumpy model file (not an .npz archive; truncated or corrupt?)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if METADATA_KEY not in names:
                raise ModelFileError(path, "not an nnumpy model file (no embedded metadata)")
            raw = archive[METADATA_KEY]
            tensors = {name: archive[name] for name in names if name != METADATA_KEY}
    except ModelFileError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error) or "pickle" in str(error).lower():
            raise ModelFileError(
                path, "holds pickled Python objects, which are refused (loading never unpickles)"
            ) from None
        raise ModelFileError(path, f"corrupt file ({error})") from None
    except Exception as error:  # zipfile/format errors of a damaged archive, whatever their type
        raise ModelFileError(path, f"corrupt or truncated file ({type(error).__name__}: {error})") from None
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(path, f"corrupt metadata ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(path, "not an nnumpy model file (unknown metadata format)")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(
            path,
            f"written in format version {meta['format_version']} by nnumpy {meta.get('nnumpy_version')}; "
            f"this nnumpy reads up to version {FORMAT_VERSION}: upgrade nnumpy",
        )
    problems = []
    declared = meta.get("tensors", {})
    for key in declared.keys() - tensors.keys():
        problems.append(f"tensor {key!r} listed in the metadata is missing from the archive")
    for key in tensors.keys() - declared.keys():
        problems.append(f"unexpected tensor {key!r} not listed in the metadata")
    for key in sorted(declared.keys() & tensors.keys()):
        value, info = tensors[key], declared[key]
        if list(value.shape) != list(info["shape"]) or value.dtype.name != info["dtype"]:
            got = f"{value.dtype.name}{list(value.shape)}"
            problems.append(f"tensor {key!r} is {got}, expected {info['dtype']}{info['shape']}")
        elif _sha256(value) != info["sha256"]:
            problems.append(f"tensor {key!r} fails its SHA-256 check (corrupted data)")
    if problems:
        raise ModelFileError(path, sorted(problems))
    return meta, tensors


def _state_targets(model):
    """Every loadable key of ``model`` -> (shape or None when unset)."""
    targets = {}
    for prefix, module in model.named_modules():
        names = [p for p, _ in module._own_parameter_pairs()] if not module.children() else []
        names += list(type(module)._buffers)
        for name in names:
            value = getattr(module, name, None)
            targets[f"{prefix}.{name}" if prefix else name] = None if value is None else tuple(value.shape)
    return targets


def _load_weights(path, model, tensors):
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    targets = _state_targets(model)
    problems = []
    for key in targets:
        if key not in state and targets[key] is not None:
            problems.append(f"missing tensor {key!r} (expected shape {targets[key]})")
    for key, value in state.items():
        if key not in targets:
            problems.append(f"extra tensor {key!r} that the architecture has no place for")
        elif targets[key] is not None and tuple(value.shape) != targets[key]:
            problems.append(f"tensor {key!r} has shape {tuple(value.shape)}, the architecture expects {targets[key]}")
    if problems:
        raise ModelFileError(path, problems)
    float_dtypes = {v.dtype for v in state.values() if v.dtype.kind == "f"}
    if len(float_dtypes) == 1:
        (dtype,) = float_dtypes
        if any(p.dtype != dtype for p in model.parameters() if p.dtype.kind == "f"):
            model.to(dtype)
    model.load_state_dict(state, strict=False)
    for key, value in state.items():  # keep the saved dtype of unset buffers too
        module, _, name = key.rpartition(".")
        owner = dict(model.named_modules())[module]
        if getattr(owner, name).dtype != value.dtype:
            setattr(owner, name, value.copy())


def _build(path, meta):
    try:
        return build_module(meta["architecture"])
    except ModelFileError as error:
        raise ModelFileError(path, error.problems) from None


def read_metadata(path):
    """The verified JSON metadata of a model or checkpoint file (without
    building the model): format, versions, architecture, input_shape, dtype,
    user metadata, and for checkpoints epoch, step, history, ..."""
    meta, _ = _read(path)
    return meta


def load_model(path):
    """Rebuild the model saved by ``save_model`` (or held in a checkpoint).

    Raises:
        ModelFileError: unknown classes, missing or extra tensors, wrong
            shapes, checksum mismatch, truncated or corrupt file, or a file
            that is not an nnumpy model file; the message lists every problem.
    """
    meta, tensors = _read(path)
    model = _build(path, meta)
    _load_weights(path, model, tensors)
    return model


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns."""

    model: Module
    optimizer_class: str = None
    optimizer_state: dict = None
    epoch: int = 0
    step: int = 0
    history: dict = None
    rng_state: object = None
    extra: object = None
    input_shape: tuple = None
    metadata: dict = field(default_factory=dict)
    path: str = None


def load_checkpoint(path, *, restore_rng=True):
    """Load a checkpoint written by ``save_checkpoint``.

    Returns a ``Checkpoint`` with ``model`` (rebuilt, weights loaded),
    ``optimizer_class`` (name or None), ``optimizer_state`` (for
    ``optimizer.load_state_dict``), ``epoch``, ``step``, ``history``,
    ``rng_state``, ``extra``, ``input_shape`` and ``metadata`` (the whole JSON
    document). With ``restore_rng`` (default) nnumpy's default generator and
    the generators held by the model's modules are set back to their saved
    states, so training continues bit for bit.
    """
    meta, tensors = _read(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(path, "this is a model file, not a checkpoint (use load_model)")
    model = _build(path, meta)
    _load_weights(path, model, tensors)
    optimizer = meta.get("optimizer")
    optimizer_state = None
    if optimizer is not None:
        state = {}
        for index, entry in optimizer["state"].items():
            restored = {}
            for name, value in entry.items():
                if isinstance(value, dict) and set(value) == {"__tensor__"}:
                    restored[name] = tensors[value["__tensor__"]].copy()
                else:
                    restored[name] = value
            state[int(index)] = restored
        optimizer_state = {"hyper": optimizer["hyper"], "state": state}
        if optimizer.get("param_groups") is not None:
            optimizer_state["param_groups"] = optimizer["param_groups"]
    if restore_rng:
        _restore_generators(model, meta.get("generators"))
    shape = meta.get("input_shape")
    return Checkpoint(
        model=model,
        optimizer_class=None if optimizer is None else optimizer["class"],
        optimizer_state=optimizer_state,
        epoch=meta.get("epoch", 0),
        step=meta.get("step", 0),
        history=meta.get("history"),
        rng_state=meta.get("rng_state"),
        extra=meta.get("extra"),
        input_shape=None if shape is None else tuple(shape),
        metadata=meta,
        path=os.fspath(path),
    )


def restore_optimizer(checkpoint, model=None):
    """Rebuild the checkpoint's optimizer (its saved class and
    hyper-parameters) bound to ``model`` (default ``checkpoint.model``), with
    its state restored. Returns None if the checkpoint holds no optimizer."""
    from .optim import Optimizer

    if checkpoint.optimizer_class is None:
        return None
    model = checkpoint.model if model is None else model
    cls = _resolve(checkpoint.optimizer_class)
    path = checkpoint.path or "<checkpoint>"
    if cls is None or not issubclass(cls, Optimizer):
        raise ModelFileError(path, f"unknown optimizer class {checkpoint.optimizer_class!r} (register it)")
    hyper = dict(checkpoint.optimizer_state["hyper"])
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items() if k in accepted}
    groups = checkpoint.optimizer_state.get("param_groups") or []
    if len(groups) > 1 and all("param_names" in g for g in groups):  # parameter groups, by parameter name
        optimizer = cls([{"params": list(g["param_names"])} for g in groups], model=model, **kwargs)
    else:
        optimizer = cls(model, **kwargs)
    optimizer.load_state_dict(checkpoint.optimizer_state)
    return optimizer
