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


def _restore_generators(model, saved):
    if not saved:
        return
    default = backend.default_rng()
    default.bit_generator.state = json_restore(saved["default"])
    made = {"default": default}
    for gid, state in saved.get("groups", {}).items():
        state = json_restore(state)
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
        made[gid] = np.random.Generator(bit_generator)
    modules = dict(model.named_modules())
    for use in saved.get("modules", ()):
        module = modules.get(use["module"])
        if module is not None and use["generator"] in made:
            setattr(module, use["attr"], made[use["generator"]])


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
    meta, tensors = read_archive(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(path, "this is a model file, not a checkpoint (use load_model)")
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
    if checkpoint.optimizer_class is None:
        return None
    model = checkpoint.model if model is None else model
    cls = resolve_class(checkpoint.optimizer_class)
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
