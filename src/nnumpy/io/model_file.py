"""Model files: one ``.npz`` archive holding a model's architecture, its
tensors and a JSON document, written atomically, verified when read.

``save_model`` / ``load_model`` / ``read_metadata``, and the pieces that
checkpoints (``checkpoint.py``) build on: ``write_archive``, ``read_archive``,
``model_tensors``, ``load_weights``, ``build_saved_model``, ``class_name``.
Architectures are ``module_config`` dicts (class name + constructor
arguments), rebuilt by ``build_module`` from registered classes only.
"""

import hashlib
import inspect
import json
import os
import zipfile

import numpy as np

from .. import backend
from ..module import Module
from .atomic import atomic_write
from .registry import registered_name, resolve_class

__all__ = [
    "ModelFileError",
    "module_config",
    "build_module",
    "save_model",
    "load_model",
    "read_metadata",
    "class_name",
    "model_tensors",
    "write_archive",
    "read_archive",
    "load_weights",
    "build_saved_model",
    "json_restore",
    "sha256",
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
]

FORMAT = "nnumpy"
FORMAT_VERSION = 1
METADATA_KEY = "__metadata__"


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be saved or loaded; the message lists
    every problem found (``problems`` holds them one by one)."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(f"{self.path}: " + "; ".join(self.problems))


def class_name(cls):
    """The name model files store for ``cls``; ModelFileError when it is neither nnumpy's nor registered."""
    name = registered_name(cls)
    if name is None:
        raise ModelFileError(
            "<model>",
            f"class {cls.__module__}.{cls.__qualname__} is not one of nnumpy's and is not registered: "
            f"decorate it with @nnumpy.register_module so that it can be saved and loaded",
        )
    return name


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

    Arguments come from the constructor call (``module.init_args``), bound to
    parameter names with defaults filled in; dtypes become strings, tuples
    lists; random generators are dropped. A container's children are its
    current modules (so ``Sequential().add(...)`` is captured).
    """
    cls = type(module)
    name = class_name(cls)
    args, kwargs = module.init_args
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
    if module.frozen:
        config["frozen"] = True
    return config


def _unknown_classes(config, found):
    if not isinstance(config, dict) or "class" not in config:
        found.append(f"malformed architecture entry {str(config)[:80]!r}")
        return found
    cls = resolve_class(config["class"])
    if cls is None or not issubclass(cls, Module):
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
    cls = resolve_class(config["class"])
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


def json_restore(value):
    """Undo the JSON encoding of arrays in metadata (``{"__ndarray__": ..., "dtype": ...}``)."""
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {k: json_restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_restore(v) for v in value]
    return value


def sha256(array):
    """Hex SHA-256 of an array's bytes (C order), as stored in the tensor table."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ------------------------------------------------------------------ writing
def model_tensors(model):
    """The model's ``state_dict`` as archive tensors named ``model.<key>``."""
    return {f"model.{k}": np.asarray(v) for k, v in model.state_dict().items()}


def _model_dtype(model):
    dtypes = {p.dtype.name for p in model.parameters() if p.dtype.kind == "f"}
    return dtypes.pop() if len(dtypes) == 1 else (sorted(dtypes) or None)


def write_archive(path, kind, model, tensors, extra_meta, input_shape, metadata):
    """Write an archive of ``kind`` ("model" or "checkpoint") atomically: ``tensors``
    plus the JSON metadata (architecture, shapes, checksums, ``extra_meta``)."""
    from .._version import __version__

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
            k: {"shape": list(v.shape), "dtype": v.dtype.name, "sha256": sha256(v)} for k, v in tensors.items()
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
    write_archive(path, "model", model, model_tensors(model), {}, input_shape, metadata)


# ------------------------------------------------------------------ reading
def read_archive(path):
    """Read and verify a model or checkpoint file: returns ``(metadata, tensors)``."""
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
        elif sha256(value) != info["sha256"]:
            problems.append(f"tensor {key!r} fails its SHA-256 check (corrupted data)")
    if problems:
        raise ModelFileError(path, sorted(problems))
    return meta, tensors


def _state_targets(model):
    """Every loadable key of ``model`` -> (shape or None when unset)."""
    targets = {}
    for prefix, module in model.named_modules():
        names = [p for p, _ in module.own_parameter_pairs()] if not module.children() else []
        names += module.own_buffer_names()
        for name in names:
            value = getattr(module, name, None)
            targets[f"{prefix}.{name}" if prefix else name] = None if value is None else tuple(value.shape)
    return targets


def load_weights(path, model, tensors):
    """Load the ``model.*`` tensors into ``model`` after checking that every key
    and shape fits (ModelFileError listing every problem otherwise)."""
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


def build_saved_model(path, meta):
    """The model (untrained) of an archive's metadata; errors name ``path``."""
    try:
        return build_module(meta["architecture"])
    except ModelFileError as error:
        raise ModelFileError(path, error.problems) from None


def read_metadata(path):
    """The verified JSON metadata of a model or checkpoint file (without
    building the model): format, versions, architecture, input_shape, dtype,
    user metadata, and for checkpoints epoch, step, history, ..."""
    meta, _ = read_archive(path)
    return meta


def load_model(path):
    """Rebuild the model saved by ``save_model`` (or held in a checkpoint).

    Raises:
        ModelFileError: unknown classes, missing or extra tensors, wrong
            shapes, checksum mismatch, truncated or corrupt file, or a file
            that is not an nnumpy model file; the message lists every problem.
    """
    meta, tensors = read_archive(path)
    model = build_saved_model(path, meta)
    load_weights(path, model, tensors)
    return model
