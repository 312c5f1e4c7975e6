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
    "MAX_DEPTH",
    "ModuleConfig",
    "METADATA_KEY",
]

FORMAT = "nnumpy"
FORMAT_VERSION = 2  # 1: constructor arguments (init_args); 2: get_config, shared modules by reference
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
MAX_DEPTH = 300  # modules and values nested deeper than this are refused (a file cannot exhaust the stack)


class ModuleConfig:
    """A module of a file's architecture before it is built: its class and
    configuration (what ``parameter_shapes`` gets for a module-valued entry)."""

    def __init__(self, cls, config):
        self.cls, self.config = cls, config

    def parameter_shapes(self):
        return self.cls.parameter_shapes(self.config)

    def __repr__(self):
        return f"ModuleConfig({self.cls.__name__})"


class _Encoder:
    """A model's architecture as JSON-able specs: each module once
    (``{"class", "id", "config", "path"?, "frozen"?}``), later uses as ``{"ref": id}``."""

    def __init__(self, model):
        self.paths = {}
        for name, module in model.named_modules():
            self.paths.setdefault(id(module), name)
        self.ids = {}

    def module(self, module, depth):
        if id(module) in self.ids:
            return {"ref": self.ids[id(module)]}
        name = class_name(type(module))
        if depth > MAX_DEPTH:
            raise ModelFileError("<model>", f"modules nested deeper than {MAX_DEPTH} levels cannot be saved")
        self.ids[id(module)] = len(self.ids)
        spec = {"class": name, "id": self.ids[id(module)]}
        if id(module) in self.paths:
            spec["path"] = self.paths[id(module)]
        config = module.get_config()
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise ModelFileError("<model>", f"{name}.get_config() must return a dict with string keys")
        spec["config"] = {k: self.value(v, f"{name}({k}=...)", depth + 1) for k, v in config.items()}
        if module.frozen:
            spec["frozen"] = True
        return spec

    def value(self, value, where, depth):
        if depth > MAX_DEPTH:
            raise ModelFileError("<model>", f"{where}: nested deeper than {MAX_DEPTH} levels")
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, (np.dtype, type)) and _is_dtype(value):
            return np.dtype(value).name
        if isinstance(value, (tuple, list)):
            return [self.value(v, where, depth + 1) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.value(v, where, depth + 1) for k, v in value.items()}}
        if isinstance(value, Module):
            return {"__module__": self.module(value, depth + 1)}
        raise ModelFileError("<model>", f"{where}: cannot store a configuration value of type {type(value).__name__}")


def _is_dtype(value):
    try:
        return np.dtype(value).kind in "biufc" and not isinstance(value, str)
    except TypeError:
        return False


def module_config(module):
    """The architecture of ``module`` as a JSON-able spec (format version 2):
    ``{"class": name, "id": 0, "path": "", "config": {...}}``.

    The configuration is each class's ``get_config()`` (the module as it is
    now: hyper-parameters changed after construction included). Modules in a
    configuration are specs too, nested as ``{"__module__": spec}``; a module
    met again (shared weights, a module at two graph nodes) is
    ``{"__module__": {"ref": id}}``. Tuples become lists, dtypes strings,
    dicts ``{"__dict__": {...}}``; ``path`` is the module's ``state_dict``
    prefix.
    """
    return _Encoder(module).module(module, 0)


def _v1_to_v2(spec, ids, depth):
    """A format-1 spec (``{"class", "args", "children"?, "varargs"?, "frozen"?}``) as a format-2 one."""
    if depth > MAX_DEPTH:
        raise _TooDeep()
    if not isinstance(spec, dict):
        return spec  # the planner reports it
    name = spec.get("class")
    cls = resolve_class(name) if isinstance(name, str) else None
    star = "modules"
    if isinstance(cls, type) and issubclass(cls, Module):
        params = inspect.signature(cls.__init__).parameters.values()
        star = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), star)
    args = spec.get("args", {})
    config = {k: _v1_value(v, ids, depth + 1) for k, v in args.items()} if isinstance(args, dict) else args
    if "children" in spec and isinstance(config, dict):
        children = spec["children"] if isinstance(spec["children"], list) else [spec["children"]]
        config[star] = [{"__module__": _v1_to_v2(c, ids, depth + 1)} for c in children]
    elif "varargs" in spec and isinstance(config, dict):
        config[star] = _v1_value(spec["varargs"], ids, depth + 1)
    ids.append(None)
    out = {"class": name, "id": -len(ids), "config": config}  # no path: format 1 did not store it
    if spec.get("frozen"):
        out["frozen"] = True
    return out


def _v1_value(value, ids, depth):
    if depth > MAX_DEPTH:
        raise _TooDeep()
    if isinstance(value, list):
        return [_v1_value(v, ids, depth + 1) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__module__"}:
            return {"__module__": _v1_to_v2(value["__module__"], ids, depth + 1)}
        return {"__dict__": {k: _v1_value(v, ids, depth + 1) for k, v in value.items()}}
    return value


class _TooDeep(Exception):
    pass


class _Planner:
    """Checks an architecture without building anything: every class known,
    every field of the right type, references valid, nesting bounded; and
    collects what each module reports from ``parameter_shapes``."""

    def __init__(self):
        self.problems = []
        self.specs = {}  # id -> ModuleConfig
        self.entries = []  # (path or None, class name, shapes or None)

    def module(self, spec, depth, where):
        if depth > MAX_DEPTH:
            raise _TooDeep()
        if not isinstance(spec, dict):
            self.problems.append(f"{where}: malformed architecture entry {str(spec)[:80]!r} (expected an object)")
            return None
        if "ref" in spec:
            ref = spec["ref"]
            if set(spec) != {"ref"} or not _is_int(ref) or ref not in self.specs:
                self.problems.append(f"{where}: reference {str(ref)[:40]!r} to a module not defined before it")
                return None
            return self.specs[ref]
        name, config, ident = spec.get("class"), spec.get("config"), spec.get("id")
        bad = [k for k in spec if k not in ("class", "config", "id", "path", "frozen")]
        if bad:
            self.problems.append(f"{where}: unknown field(s) {sorted(bad)[:5]} in a module entry")
        if not isinstance(name, str):
            self.problems.append(f"{where}: malformed architecture entry (no class name)")
            return None
        where = f"{where} {name[:60]}"
        cls = resolve_class(name)
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            self.problems.append(
                f"unknown class {name[:80]!r} (not an nnumpy module; register it with register_module)"
            )
            cls = None
        if not isinstance(config, dict):
            self.problems.append(f"{where}: 'config' must be an object, got {type(config).__name__}")
            config = {}
        if not _is_int(ident):
            self.problems.append(f"{where}: 'id' must be an integer, got {str(ident)[:20]!r}")
        path = spec.get("path")
        if path is not None and not isinstance(path, str):
            self.problems.append(f"{where}: 'path' must be a string")
            path = None
        if not isinstance(spec.get("frozen", False), bool):
            self.problems.append(f"{where}: 'frozen' must be true or false")
        view = ModuleConfig(cls, None)
        view.config = {k: self.value(v, depth + 1, f"{where}({k}=...)") for k, v in config.items()}
        if _is_int(ident) and ident not in self.specs:  # only now: a module cannot contain itself
            self.specs[ident] = view
        elif _is_int(ident):
            self.problems.append(f"{where}: 'id' {ident} is used twice")
        shapes = None
        if cls is not None:
            try:
                shapes = cls.parameter_shapes(view.config)
                shapes = None if shapes is None else _checked_shapes(shapes)
            except Exception as error:
                self.problems.append(f"{where}: its configuration is invalid ({type(error).__name__}: {error})")
        self.entries.append((path, name, shapes))
        return view

    def value(self, value, depth, where):
        if depth > MAX_DEPTH:
            raise _TooDeep()
        if isinstance(value, list):
            return tuple(self.value(v, depth + 1, where) for v in value)
        if isinstance(value, dict):
            if set(value) == {"__module__"}:
                return self.module(value["__module__"], depth + 1, where)
            if set(value) == {"__dict__"} and isinstance(value["__dict__"], dict):
                return {k: self.value(v, depth + 1, where) for k, v in value["__dict__"].items()}
            self.problems.append(f"{where}: malformed value {str(value)[:60]!r}")
            return None
        return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_shapes(shapes):
    if not isinstance(shapes, dict):
        raise TypeError(f"parameter_shapes returned {type(shapes).__name__}, expected a dict")
    out = {}
    for key, shape in shapes.items():
        shape = tuple(shape)
        if not isinstance(key, str) or not all(_is_int(d) or isinstance(d, np.integer) for d in shape):
            raise TypeError(f"parameter_shapes returned {key!r}: {shape!r}, expected a name and integer sizes")
        if any(d < 0 for d in shape):
            raise ValueError(f"negative size in {key} {shape}")
        out[key] = tuple(int(d) for d in shape)
    return out


def _size(shape):
    size = 1
    for d in shape:
        size *= int(d)
    return size


def _plan(path, meta, headers):
    """Check ``meta``'s architecture against the file's tensor headers
    (``{key: (shape, dtype)}``) before anything is built; returns the
    format-2 root spec. ModelFileError listing every problem otherwise."""
    spec = meta.get("architecture")
    planner = _Planner()
    try:
        if meta.get("format_version") == 1:
            spec = _v1_to_v2(spec, [], 0)
        planner.module(spec, 0, "architecture:")
    except (_TooDeep, RecursionError):
        raise ModelFileError(path, f"architecture nested deeper than {MAX_DEPTH} levels") from None
    problems = planner.problems
    if not problems and headers is not None:
        claimed, total = {}, 0
        for prefix, name, shapes in planner.entries:
            if shapes is None:
                continue
            total += sum(_size(s) for s in shapes.values())
            if prefix is None:
                continue
            for key, shape in shapes.items():
                if key.startswith("~"):  # an array the constructor computes, not held by the file
                    continue
                full = f"{prefix}.{key}" if prefix else key
                if full in claimed:
                    problems.append(f"two modules of the architecture claim tensor {full!r}")
                claimed[full] = name
                header = headers.get(f"model.{full}")
                if header is None:
                    problems.append(f"{name} at {prefix or 'the top'!r} needs tensor {full!r} of shape {shape}, "
                                    f"which the file does not hold")
                elif tuple(header[0]) != shape:
                    problems.append(f"tensor {full!r} has shape {tuple(header[0])}, "
                                    f"but {name}'s configuration gives {shape}")
        held = sum(_size(h[0]) for key, h in headers.items() if key.startswith("model."))
        if not problems and total > 2 * held + 2**24:
            problems.append(f"the architecture would allocate {total} values, but the file holds only {held}: "
                            "refused before building it")
    if problems:
        raise ModelFileError(path, problems)
    return spec


class _Builder:
    """Builds a checked format-2 spec (``_plan``'s result)."""

    def __init__(self):
        self.built = {}
        self.order = []  # (module, frozen) in pre-order

    def module(self, spec):
        if "ref" in spec:
            return self.built[spec["ref"]]
        cls = resolve_class(spec["class"])
        slot = len(self.order)
        self.order.append(None)
        config = {k: self.value(v) for k, v in spec["config"].items()}
        try:
            module = cls.from_config(config)
        except Exception as error:
            raise ModelFileError(
                "<architecture>", f"could not rebuild {spec['class']}: {type(error).__name__}: {error}"
            ) from None
        if not isinstance(module, Module):
            raise ModelFileError("<architecture>", f"{spec['class']}.from_config returned {type(module).__name__}")
        self.built[spec["id"]] = module
        self.order[slot] = (module, bool(spec.get("frozen")))
        return module

    def value(self, value):
        if isinstance(value, list):
            return tuple(self.value(v) for v in value)
        if isinstance(value, dict):
            if "__module__" in value:
                return self.module(value["__module__"])
            return {k: self.value(v) for k, v in value["__dict__"].items()}
        return value


def _build(spec):
    builder = _Builder()
    generator = backend.default_rng()
    saved = generator.bit_generator.state
    try:
        model = builder.module(spec)
    finally:
        generator.bit_generator.state = saved
    for module, frozen in builder.order:  # pre-order: a module's flag, then its descendants' own
        if frozen:
            module.freeze()
        elif module.frozen:
            module.unfreeze()
    return model


def build_module(config):
    """Rebuild a module (untrained weights) from ``module_config``'s spec (or a
    format-1 ``{"class", "args", ...}`` one).

    Only nnumpy's classes and registered ones are accepted, and the spec is
    checked whole before anything is built. The default generator's state is
    left as it was (constructors draw initial weights from it; ``load_model``
    overwrites those anyway).
    """
    version = 1 if isinstance(config, dict) and "args" in config and "config" not in config else 2
    spec = _plan("<architecture>", {"format_version": version, "architecture": config}, None)
    return _build(spec)


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
        "input_shape": _shape_json(input_shape),
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


def is_several_shapes(shape):
    """True for a non-empty tuple or list of shapes (a model of several inputs), not one shape of sizes."""
    return isinstance(shape, (tuple, list)) and bool(shape) and all(isinstance(d, (tuple, list)) for d in shape)


def _shape_json(shape):
    """One example's shape as JSON: sizes (None: variable), or a list of such shapes (several inputs)."""
    if shape is None:
        return None
    if is_several_shapes(shape):
        return [_shape_json(d) for d in shape]
    return [None if d is None else int(d) for d in shape]


def shape_from_json(shape):
    """``_shape_json``'s inverse: a tuple of sizes, or a tuple of such tuples."""
    if shape is None:
        return None
    return tuple(shape_from_json(d) if isinstance(d, list) else d for d in shape)


def save_model(model, path, *, input_shape=None, metadata=None):
    """Write ``model`` (architecture, parameters, buffers) to one ``.npz`` file.

    Args:
        model: the Module; every class in it must be nnumpy's or registered.
        path: destination; replaced atomically.
        input_shape: the shape of one example without the batch axis, e.g.
            ``(1, 28, 28)``, or a tuple of such shapes for a model with several
            inputs; stored for tools that build inputs.
        metadata: a JSON-able dict of your own (dataset, accuracy, ...).
    """
    write_archive(path, "model", model, model_tensors(model), {}, input_shape, metadata)


# ------------------------------------------------------------------ reading
MAX_METADATA_BYTES = 64 * 2**20  # a larger JSON document is refused
_MAX_NPY_HEADER = 10000


def _zip_members(path, archive, problems):
    """The archive's members by tensor name, after checking that each is a
    stored (uncompressed) ``.npy`` whose size fits in the file."""
    size = os.path.getsize(path)
    members = {}
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy") or name in members:
            problems.append(f"unexpected archive member {name[:80]!r}")
            continue
        if info.compress_type != zipfile.ZIP_STORED:
            problems.append(
                f"member {name[:80]!r} is compressed: nnumpy writes model files uncompressed and refuses "
                "compressed members (a small file could inflate to gigabytes)"
            )
            continue
        if info.compress_size != info.file_size or info.header_offset + info.file_size > size:
            problems.append(f"member {name[:80]!r} declares {info.file_size} bytes, more than the file holds "
                            "(truncated or forged)")
            continue
        members[name[: -len(".npy")]] = info
    return members


def _npy_header(archive, info):
    """``(shape, dtype)`` from a member's ``.npy`` header, read without its data;
    checks that the member holds exactly the bytes the header declares."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_NPY_HEADER)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        offset = f.tell()
    if dtype.hasobject:
        raise _Pickled()
    if dtype.kind not in "biufc" or dtype.shape or dtype.names:
        raise ValueError(f"dtype {dtype} is not a plain numeric dtype")
    expected = offset + _size(shape) * dtype.itemsize
    if expected != info.file_size:
        raise ValueError(
            f"its header declares {dtype.name}{list(shape)} ({expected - offset} bytes) but it holds "
            f"{info.file_size - offset} (truncated or forged)"
        )
    return tuple(shape), dtype


class _Pickled(Exception):
    pass


def _check_tensor_table(declared, headers, problems):
    if not isinstance(declared, dict):
        problems.append("metadata field 'tensors' must be an object")
        return
    for key in sorted(declared.keys() - headers.keys()):
        problems.append(f"tensor {key[:80]!r} listed in the metadata is missing from the archive")
    for key in sorted(headers.keys() - declared.keys()):
        problems.append(f"unexpected tensor {key[:80]!r} not listed in the metadata")
    for key in sorted(declared.keys() & headers.keys()):
        info = declared[key]
        ok = (
            isinstance(info, dict)
            and isinstance(info.get("shape"), list)
            and all(_is_int(d) for d in info["shape"])
            and isinstance(info.get("dtype"), str)
            and isinstance(info.get("sha256"), str)
        )
        if not ok:
            problems.append(f"tensor {key[:80]!r}: malformed entry in the metadata's tensor table")
            continue
        shape, dtype = headers[key]
        if list(shape) != info["shape"] or dtype.name != info["dtype"]:
            problems.append(f"tensor {key!r} is {dtype.name}{list(shape)}, expected {info['dtype']}{info['shape']}")


def _check_fields(meta):
    """The problems with the metadata's own fields (types, format version)."""
    problems = []
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        return [f"bad format version {str(version)[:40]!r} (expected an integer from 1 to {FORMAT_VERSION})"]
    if version > FORMAT_VERSION:
        return [
            f"written in format version {version} by nnumpy {str(meta.get('nnumpy_version'))[:40]}; "
            f"this nnumpy reads up to version {FORMAT_VERSION}: upgrade nnumpy"
        ]
    if meta.get("kind") not in ("model", "checkpoint"):
        problems.append(f"metadata field 'kind' must be 'model' or 'checkpoint', got {str(meta.get('kind'))[:40]!r}")
    if not isinstance(meta.get("architecture"), dict):
        problems.append("metadata field 'architecture' is missing or not an object")
    shape = meta.get("input_shape")
    if shape is not None and not _is_shape(shape, nested=True):
        problems.append("metadata field 'input_shape' must be null, a list of sizes or a list of such lists")
    if not isinstance(meta.get("metadata", {}), dict):
        problems.append("metadata field 'metadata' must be an object")
    return problems


def _is_shape(shape, nested):
    """A list of sizes (None or ints >= 0), or with ``nested`` a non-empty list of such lists."""
    if not isinstance(shape, list):
        return False
    if nested and is_several_shapes(shape):
        return all(_is_shape(d, nested=False) for d in shape)
    return all(d is None or (_is_int(d) and d >= 0) for d in shape)


def _json(raw, path):
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except RecursionError:
        raise ModelFileError(path, "corrupt metadata (JSON nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(path, f"corrupt metadata ({error})") from None


def read_archive(path, *, headers_only=False):
    """Read and verify a model or checkpoint file: returns ``(metadata, tensors)``.

    Checked in this order, each step before anything larger is read: the
    archive's members (stored ``.npy`` only, sizes within the file), every
    tensor's ``.npy`` header (numeric dtype, the bytes it declares), the JSON
    metadata (its fields and types, the format version, the tensor table
    against the headers); then the tensors are read and their SHA-256
    checked. With ``headers_only``, ``tensors`` maps each name to its
    ``(shape, dtype)`` and no tensor data is read.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(path, "no such file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(path, "not an nnumpy model file (not an .npz archive; truncated or corrupt?)")
    try:
        with zipfile.ZipFile(path) as archive:
            return _read(path, archive, headers_only)
    except ModelFileError:
        raise
    except _Pickled:
        raise ModelFileError(
            path, "holds pickled Python objects, which are refused (loading never unpickles)"
        ) from None
    except Exception as error:  # zipfile/format errors of a damaged archive, whatever their type
        raise ModelFileError(path, f"corrupt or truncated file ({type(error).__name__}: {error})") from None


def _read(path, archive, headers_only):
    problems = []
    members = _zip_members(path, archive, problems)
    if METADATA_KEY not in members:
        raise ModelFileError(path, problems or ["not an nnumpy model file (no embedded metadata)"])
    headers = {}
    for name, info in members.items():
        try:
            headers[name] = _npy_header(archive, info)
        except _Pickled:
            raise
        except Exception as error:
            problems.append(f"member {name[:80]!r}: {error}")
    if problems:
        raise ModelFileError(path, problems)
    shape, dtype = headers.pop(METADATA_KEY)
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_METADATA_BYTES:
        raise ModelFileError(path, f"metadata must be at most {MAX_METADATA_BYTES} bytes of uint8")
    with archive.open(members[METADATA_KEY]) as f:
        meta = _json(np.lib.format.read_array(f, allow_pickle=False), path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(path, "not an nnumpy model file (unknown metadata format)")
    problems = _check_fields(meta)
    if not problems:
        _check_tensor_table(meta.get("tensors", {}), headers, problems)
    if problems:
        raise ModelFileError(path, problems)
    if headers_only:
        return meta, headers
    tensors = {}
    for key in sorted(headers):
        with archive.open(members[key]) as f:
            value = np.lib.format.read_array(f, allow_pickle=False)
        if sha256(value) != meta["tensors"][key]["sha256"]:
            problems.append(f"tensor {key!r} fails its SHA-256 check (corrupted data)")
        tensors[key] = value
    if problems:
        raise ModelFileError(path, problems)
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
        elif value.dtype.kind not in "fc" and key in dict(model.named_parameters()):
            problems.append(f"tensor {key!r} has dtype {value.dtype}, a parameter must be floating-point")
    if problems:
        raise ModelFileError(path, problems)
    float_dtypes = {v.dtype for v in state.values() if v.dtype.kind == "f"}
    if len(float_dtypes) == 1:
        (dtype,) = float_dtypes
        if any(p.dtype != dtype for p in model.parameters() if p.dtype.kind == "f"):
            model.to(dtype)
    model.load_state_dict(state, strict=False)
    modules = dict(model.named_modules())
    for key, value in state.items():  # keep the saved dtype of unset buffers too
        module, _, name = key.rpartition(".")
        owner = modules[module]
        if getattr(owner, name).dtype != value.dtype:
            setattr(owner, name, value.copy())


def build_saved_model(path, meta, tensors):
    """The model (untrained) of an archive's metadata, after checking its
    architecture and the shapes each class reports from its configuration
    against ``tensors`` (arrays, or ``(shape, dtype)`` headers) before any
    module is built; errors name ``path``."""
    headers = {k: (tuple(np.shape(v)) if hasattr(v, "shape") else tuple(v[0]), None) for k, v in tensors.items()}
    spec = _plan(path, meta, headers)
    try:
        return _build(spec)
    except ModelFileError as error:
        raise ModelFileError(path, error.problems) from None


def read_metadata(path):
    """The verified JSON metadata of a model or checkpoint file (without
    building the model or reading its tensors): format, versions,
    architecture, input_shape, dtype, user metadata, and for checkpoints
    epoch, step, history, ..."""
    meta, _ = read_archive(path, headers_only=True)
    return meta


def load_model(path):
    """Rebuild the model saved by ``save_model`` (or held in a checkpoint).

    Nothing is built before the whole file is checked: the archive, the
    tensor headers, the metadata, and the shapes each class reports from its
    configuration (``Module.parameter_shapes``) against the tensors, so a
    small forged file cannot make the loader allocate gigabytes.

    Raises:
        ModelFileError: unknown classes, missing or extra tensors, wrong
            shapes, checksum mismatch, truncated, corrupt, compressed or
            forged file, ill-typed fields, a bad format version, or a file
            that is not an nnumpy model file; the message lists every problem.
    """
    meta, tensors = read_archive(path)
    model = build_saved_model(path, meta, tensors)
    load_weights(path, model, tensors)
    return model
