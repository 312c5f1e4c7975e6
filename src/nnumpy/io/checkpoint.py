"""Checkpoints: a model file plus what resuming training needs.

A checkpoint is the model file's archive with the optimizer's state (arrays
as ``optimizer.<index>.<name>`` tensors), epoch, step, history, the caller's
extra data and every random generator's state added. Crash-safe like every
write of ``nnumpy.io``.
"""

import inspect
import os
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..module import Module
from ..optim import Optimizer
from .model_file import (
    ModelFileError,
    build_saved_model,
    class_name,
    json_restore,
    load_weights,
    model_tensors,
    read_archive,
    shape_from_json,
    write_archive,
)
from .registry import resolve_class

__all__ = ["save_checkpoint", "load_checkpoint", "restore_optimizer", "Checkpoint"]


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
    tensors = model_tensors(model)
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
            "class": class_name(type(optimizer)),
            "hyper": state.get("hyper", {}),
            "param_groups": _named_groups(state.get("param_groups"), optimizer, model),
            "state": entries,
        }
    write_archive(path, "checkpoint", model, tensors, meta, input_shape, None)


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


# the bit generators a checkpoint may name (nothing else of np.random is ever looked up)
BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM, "MT19937": np.random.MT19937,
                  "Philox": np.random.Philox, "SFC64": np.random.SFC64}


def _generator_from(state, where):
    state = json_restore(state)
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise ValueError(
            f"{where}: unknown bit generator {str(name)[:40]!r} (expected one of {sorted(BIT_GENERATORS)})"
        )
    bit_generator = BIT_GENERATORS[name]()
    bit_generator.state = state
    return bit_generator


def _check_generators(model, saved, path):
    """The generators of a checkpoint, checked against ``model`` before any is
    set: ``(default state or None, [(module, attr, Generator)])``. A use may
    only name a module of the model and an attribute that holds a Generator
    in the rebuilt module (the allow-list), and only nnumpy's known bit generators."""
    if saved is None:
        return None, []
    try:
        if not isinstance(saved, dict):
            raise ValueError("'generators' must be an object")
        default = _generator_from(saved["default"], "the default generator").state
        groups = saved.get("groups", {})
        uses = saved.get("modules", [])
        if not isinstance(groups, dict) or not isinstance(uses, list):
            raise ValueError("'groups' must be an object and 'modules' a list")
        made = {gid: np.random.Generator(_generator_from(state, f"generator {gid[:20]!r}"))
                for gid, state in groups.items()}
        modules = dict(model.named_modules())
        plan = []
        for use in uses:
            fields = ("module", "attr", "generator")
            if not isinstance(use, dict) or not all(isinstance(use.get(k), str) for k in fields):
                raise ValueError(f"malformed generator use {str(use)[:60]!r}")
            module = modules.get(use["module"])
            if module is None:
                raise ValueError(f"generator use names a module {use['module'][:60]!r} the model does not have")
            if not isinstance(vars(module).get(use["attr"]), np.random.Generator):
                raise ValueError(
                    f"generator use names {use['module'][:60] or 'the model'}.{use['attr'][:40]}, "
                    "which is not one of that module's generators"
                )
            if use["generator"] != "default" and use["generator"] not in made:
                raise ValueError(f"generator use refers to an unknown generator {use['generator'][:20]!r}")
            plan.append((module, use["attr"], use["generator"]))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise ModelFileError(path, f"bad random generator states ({type(error).__name__}: {error})") from None
    made["default"] = backend.default_rng()
    return default, [(m, attr, made[gid]) for m, attr, gid in plan]


def _restore_generators(default, uses):
    if default is None:
        return
    backend.default_rng().bit_generator.state = default
    for module, attr, generator in uses:
        setattr(module, attr, generator)


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


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(meta, tensors):
    """The problems with a checkpoint's own fields (counters, optimizer entry)."""
    problems = [f"field {k!r} must be an integer" for k in ("epoch", "step") if not _is_int(meta.get(k, 0))]
    optimizer = meta.get("optimizer")
    if optimizer is None:
        return problems
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("class"), str):
        return problems + ["field 'optimizer' must be null or an object with a class name"]
    if not isinstance(optimizer.get("hyper"), dict):
        problems.append("field 'optimizer.hyper' must be an object")
    groups = optimizer.get("param_groups")
    if groups is not None and not (isinstance(groups, list) and all(isinstance(g, dict) for g in groups)):
        problems.append("field 'optimizer.param_groups' must be a list of objects")
        groups = None
    cls = resolve_class(optimizer["class"])
    allowed = getattr(cls, "hyperparameters", None) if isinstance(cls, type) and issubclass(cls, Optimizer) else None
    if allowed and isinstance(optimizer.get("hyper"), dict):  # an allow-list: nothing else reaches setattr
        allowed = {*allowed, "initial_lr"}
        for where, entry in [("hyper", optimizer["hyper"])] + [(f"param_groups[{i}]", g) for i, g in
                                                             enumerate(groups or [])]:
            unknown = sorted(set(entry) - allowed - {"params", "param_names"})
            if unknown:
                problems.append(f"optimizer.{where} names {unknown[:5]}, which are not hyper-parameters of "
                                f"{optimizer['class']}")
    state = optimizer.get("state")
    if not isinstance(state, dict):
        return problems + ["field 'optimizer.state' must be an object"]
    for index, entry in state.items():
        if not index.isdigit() or not isinstance(entry, dict):
            problems.append(f"optimizer state entry {index[:20]!r} must be a parameter index with an object")
            continue
        for name, value in entry.items():
            if isinstance(value, dict):
                key = value.get("__tensor__")
                if set(value) != {"__tensor__"} or not isinstance(key, str) or not key.startswith("optimizer.") \
                        or key not in tensors:
                    problems.append(f"optimizer state {index}.{name[:40]} refers to no tensor of the file")
            elif not (value is None or isinstance(value, (bool, int, float))):
                problems.append(f"optimizer state {index}.{name[:40]} must be a number or a tensor")
    return problems


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
    meta, tensors = read_archive(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(path, "this is a model file, not a checkpoint (use load_model)")
    problems = _check_fields(meta, tensors)
    if problems:
        raise ModelFileError(path, problems)
    model = build_saved_model(path, meta, tensors)
    load_weights(path, model, tensors)
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
    generators = _check_generators(model, meta.get("generators"), path)
    if restore_rng:
        _restore_generators(*generators)
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
        input_shape=shape_from_json(shape),
        metadata=meta,
        path=os.fspath(path),
    )


def restore_optimizer(checkpoint, model=None):
    """Rebuild the checkpoint's optimizer (its saved class and
    hyper-parameters) bound to ``model`` (default ``checkpoint.model``), with
    its state restored. Returns None if the checkpoint holds no optimizer."""
    if checkpoint.optimizer_class is None:
        return None
    model = checkpoint.model if model is None else model
    cls = resolve_class(checkpoint.optimizer_class)
    path = checkpoint.path or "<checkpoint>"
    if cls is None or not issubclass(cls, Optimizer):
        raise ModelFileError(path, f"unknown optimizer class {checkpoint.optimizer_class!r} (register it)")
    hyper = dict(checkpoint.optimizer_state["hyper"])
    allowed = set(getattr(cls, "hyperparameters", ()) or ())
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items() if k in accepted and k in allowed}
    groups = checkpoint.optimizer_state.get("param_groups") or []
    try:
        if len(groups) > 1 and all("param_names" in g for g in groups):  # parameter groups, by parameter name
            optimizer = cls([{"params": list(g["param_names"])} for g in groups], model=model, **kwargs)
        else:
            optimizer = cls(model, **kwargs)
        optimizer.load_state_dict(checkpoint.optimizer_state)
    except (TypeError, ValueError, KeyError) as error:
        raise ModelFileError(path, f"cannot restore the optimizer {checkpoint.optimizer_class}: {error}") from None
    return optimizer
