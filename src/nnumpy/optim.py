"""Optimizers.

Two families:

* the seeds' functional optimizers ``sgd_momentum`` and ``adam_optimizer``
  with seed 001's exact formulas and state layout (they live in
  ``nnumpy.compat`` with the other seed dialects); they take the nested
  per-module lists that ``Sequential.getParameters()`` returns;
* optimizer classes with ``torch.optim``'s signatures, update rules,
  defaults and parameter groups: ``SGD``, ``Adam`` (``amsgrad``), ``AdamW``,
  ``Adamax``, ``Adadelta``, ``RMSprop``, ``Adagrad``, ``NAdam``, ``RAdam``,
  and ``Lion`` (also under the seeds' spellings ``RMSProp``, ``AdaGrad``,
  ``Nadam``, and ``Momentum``);
* seed 003's optimizers, which ``SGD()``, ``Momentum(lr=...)``,
  ``RMSProp(1e-3, 1e-8, 0.9)``, ``Adam(lr=...)`` and ``Nadam(...)`` build
  when given no model or parameters: called as ``opt(params, grads)``.

Every update is in place: parameter arrays are never rebound, so layers,
optimizers and checkpoints keep sharing them. Class optimizers re-read the
model's parameter and gradient arrays at every ``step()`` and skip frozen
modules.
"""

import math

import numpy as np

from .compat import (  # noqa: F401  (the seeds' optimizers, re-exported)
    Seed003Adam,
    Seed003Momentum,
    Seed003Nadam,
    Seed003Optimizer,
    Seed003RMSProp,
    Seed003SGD,
    adam_optimizer,
    flatten_arrays,
    sgd_momentum,
)
from .module import Module

__all__ = [
    "sgd_momentum",
    "adam_optimizer",
    "Optimizer",
    "SGD",
    "Momentum",
    "Adam",
    "AdamW",
    "Adamax",
    "Adadelta",
    "RMSprop",
    "Adagrad",
    "NAdam",
    "RAdam",
    "Lion",
    "RMSProp",
    "AdaGrad",
    "Nadam",
    "Seed003Optimizer",
    "Seed003SGD",
    "Seed003Momentum",
    "Seed003RMSProp",
    "Seed003Adam",
    "Seed003Nadam",
]


# --------------------------------------------------------------------- parameter groups
def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _leaf_names(root):
    """``{dotted name: (leaf, position)}`` for every parameter of ``root``
    (the names of ``root.named_parameters()``)."""
    names = {}
    for prefix, module in root.named_modules():
        if module.children():
            continue
        for position, (attr, _) in enumerate(module.own_parameter_pairs()):
            names[f"{prefix}.{attr}" if prefix else attr] = (module, position)
    return names


class _ModuleSet(Module):
    """The leaves an optimizer's groups name when no model was given: what
    ``opt.model`` is then (``DistributedOptimizer`` reduces its gradients)."""

    def __init__(self, leaves):
        super().__init__()
        self._members = list(leaves)

    def children(self):
        return list(enumerate(self._members))

    def leaves(self):
        return list(self._members)


class Optimizer:
    """Base class of ``torch.optim``-style optimizers: parameter groups,
    per-parameter state, ``step()`` / ``zero_grad()`` / ``state_dict()``.

    ``params`` (the first argument) says what to train:

    * a ``Module`` (the model): all its parameters, one group;
    * a list of group dicts, each with ``"params"`` and any hyper-parameters
      of its own (the others come from the constructor's arguments), e.g.
      ``SGD([{"params": model[0], "lr": 1e-2}, {"params": model[2:]}], lr=1e-3)``.
      A group's ``"params"`` is a Module, a list of Modules, a list of
      parameter arrays, or a list of parameter names from
      ``model.named_parameters()`` (``"0.W"``; ``(name, array)`` pairs too);
      arrays and names are looked up in ``model=`` (the module that holds
      them, where their gradients live), which they require;
    * a list of Modules, arrays or names: one group.

    A parameter may belong to one group only. ``param_groups`` is a list of
    dicts as in PyTorch (``opt.param_groups[1]["lr"] = 0.1`` changes one
    group; learning-rate schedules scale each group's rate); a group's
    ``"params"`` lists its parameter arrays as of the last ``step()``.
    ``opt.lr`` (any hyper-parameter) reads the first group's value and
    setting it sets every group's.

    Every step re-reads each module's parameter and gradient arrays (a
    rebound ``layer.W`` or ``self.gradW`` is honoured), skips frozen modules,
    and updates parameters in place. State is keyed by the parameter's
    position among all the optimizer's parameters (group after group), as in
    ``torch.optim``'s ``state_dict``.

    Built without parameters (``Adagrad(lr=0.1)``), an optimizer is called as
    ``opt(params, grads)`` on flat or nested lists of arrays. ``SGD``,
    ``Momentum``, ``RMSprop``, ``Adam`` and ``NAdam`` built so are seed 003's
    optimizers instead (its signatures, defaults and update rules; see
    ``Seed003Optimizer``).
    """

    hyperparameters = ()
    _extra_group_keys = ("initial_lr",)  # what schedules keep in a group

    def __new__(cls, *args, **kwargs):
        seed = cls.__dict__.get("_seed003")
        if seed is not None and "params" not in kwargs and "model" not in kwargs and (not args or _is_number(args[0])):
            return seed.build(cls.__name__, *args, **kwargs)
        return super().__new__(cls)

    def __getnewargs_ex__(self):
        return (), {"params": None}  # copies and pickles are rebuilt as this class, not as seed 003's

    def __init__(self, params, defaults, *, model=None):
        name = type(self).__name__
        object.__setattr__(self, "defaults", dict(defaults))
        self.state = {}
        self.param_groups = []
        self._entries = []  # per group: [(leaf, positions or None for all)]
        if model is not None and not isinstance(model, Module):
            raise TypeError(f"{name}: model= must be a Module, got {type(model).__name__}")
        if params is None:
            params = model
        self._root = model if model is not None else (params if isinstance(params, Module) else None)
        self._validate(self.defaults, "")
        for group in self._groups_from(params):
            self.add_param_group(group)
        if params is None:
            self.param_groups.append({"params": [], **self.defaults})  # opt(params, grads) uses these
            self._entries.append([])
        self.model = self._root
        if self.model is None and params is not None:
            self.model = _ModuleSet(dict.fromkeys(leaf for entries in self._entries for leaf, _ in entries))

    def _groups_from(self, params):
        name = type(self).__name__
        if params is None:
            return []
        if isinstance(params, Module):
            return [{"params": params}]
        if _is_number(params):
            raise TypeError(
                f"{name}: expected the model (a Module) or parameter groups as first argument, got "
                f"{type(params).__name__} {params!r}; did you mean {name}(model, lr={params!r})?"
            )
        if isinstance(params, (np.ndarray, str, dict)) or not hasattr(params, "__iter__"):
            raise TypeError(
                f"{name}: expected the model (a Module), a list of parameter groups (dicts) or a list of "
                f"Modules, arrays or names as first argument, got {type(params).__name__}"
            )
        items = list(params)
        if not items:
            raise ValueError(f"{name}: got an empty parameter list")
        if all(isinstance(item, dict) for item in items):
            return items
        if any(isinstance(item, dict) for item in items):
            raise TypeError(
                f"{name}: give either a list of parameter groups (dicts) or one list of parameters, not both"
            )
        return [{"params": items}]

    def add_param_group(self, param_group):
        """Add a group (a dict with ``"params"`` and optional hyper-parameters), as ``torch.optim``."""
        name = type(self).__name__
        where = f" (param_groups[{len(self.param_groups)}])"
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: a parameter group is a dict with a 'params' entry, got {param_group!r}"[:300])
        unknown = set(param_group) - {"params", *self.hyperparameters, *self._extra_group_keys}
        if unknown:
            raise ValueError(
                f"{name}: unknown key(s) {sorted(unknown)} in a parameter group{where}; "
                f"a group takes 'params' and {', '.join(repr(h) for h in self.hyperparameters)}"
            )
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._validate(group, where)
        entries = self._resolve(param_group["params"], where)
        seen = {id(p): i for i, group_entries in enumerate(self._entries) for p in self._arrays(group_entries)}
        for p in self._arrays(entries):
            if id(p) in seen:
                raise ValueError(
                    f"{name}: a parameter appears in more than one group{where} (also in group {seen[id(p)]})"
                )
            seen[id(p)] = len(self.param_groups)
        group["params"] = self._arrays(entries)
        self.param_groups.append(group)
        self._entries.append(entries)
        if isinstance(getattr(self, "model", None), _ModuleSet):
            self.model._members.extend(leaf for leaf, _ in entries if leaf not in self.model._members)

    def _resolve(self, params, where):
        """A group's ``"params"`` as ``[(leaf, positions or None)]``."""
        name = type(self).__name__
        if isinstance(params, Module):
            return [(leaf, None) for leaf in params.leaves()]
        if isinstance(params, (str, np.ndarray)) or not hasattr(params, "__iter__"):
            params = [params] if isinstance(params, str) else params
            if not isinstance(params, list):
                raise TypeError(
                    f"{name}: a group's 'params' is a Module or a list of Modules, arrays or names, "
                    f"got {type(params).__name__}{where}"
                )
        entries, by_leaf = [], {}
        names = ids = None
        for item in params:
            if isinstance(item, Module):
                entries.extend((leaf, None) for leaf in item.leaves())
                continue
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                item = item[0]  # a (name, array) pair from named_parameters()
            if not isinstance(item, (str, np.ndarray)) and not hasattr(item, "__array_namespace__"):
                raise TypeError(
                    f"{name}: cannot train a {type(item).__name__}{where}: expected a Module, array or name"
                )
            if self._root is None:
                raise TypeError(
                    f"{name}: parameters given as arrays or names{where} need the module that holds them "
                    f"(their gradients live there): pass model=..., e.g. {name}(groups, lr=..., model=model), "
                    f"or give the modules themselves"
                )
            if isinstance(item, str):
                names = _leaf_names(self._root) if names is None else names
                if item not in names:
                    raise ValueError(f"{name}: {type(self._root).__name__} has no parameter named {item!r}{where}")
                leaf, position = names[item]
            else:
                if ids is None:
                    ids = {
                        id(p): (leaf, pos) for leaf in self._root.leaves() for pos, p in enumerate(leaf.getParameters())
                    }
                if id(item) not in ids:
                    raise ValueError(
                        f"{name}: an array of shape {tuple(item.shape)}{where} is not a parameter of the model"
                    )
                leaf, position = ids[id(item)]
            if id(leaf) in by_leaf:
                by_leaf[id(leaf)].append(position)
            else:
                by_leaf[id(leaf)] = [position]
                entries.append((leaf, by_leaf[id(leaf)]))
        return entries

    @staticmethod
    def _arrays(entries):
        """The parameter arrays of a group's entries, read now."""
        out = []
        for leaf, positions in entries:
            params = leaf.getParameters()
            out.extend(params if positions is None else [params[i] for i in positions])
        return out

    def _validate(self, group, where):
        name = type(self).__name__
        if not _is_number(group.get("lr", 0.0)) or not math.isfinite(group.get("lr", 0.0)) or group.get("lr", 0.0) < 0:
            raise ValueError(f"{name}: lr must be a finite number >= 0, got {group.get('lr')!r}{where}")
        for key in ("eps", "weight_decay", "momentum", "lr_decay"):
            if key in group and not float(group[key]) >= 0:
                raise ValueError(f"{name}: {key} must be >= 0, got {group[key]!r}{where}")
        for i, beta in enumerate(group.get("betas", ())):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: betas[{i}] must be in [0, 1), got {beta!r}{where}")
        if "betas" in group and len(group["betas"]) != 2:
            raise ValueError(f"{name}: betas must be a pair, got {group['betas']!r}{where}")
        self._check_group(group, where)

    def _check_group(self, group, where):
        """Class-specific hyper-parameter checks."""

    # ---- hyper-parameters as attributes: the first group's value; setting one sets every group's
    def __getattr__(self, key):
        if key in type(self).hyperparameters:
            groups = self.__dict__.get("param_groups")
            return groups[0][key] if groups else self.__dict__["defaults"][key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __setattr__(self, key, value):
        if key in type(self).hyperparameters and "param_groups" in self.__dict__:
            self.defaults[key] = value
            for group in self.param_groups:
                group[key] = value
        else:
            object.__setattr__(self, key, value)

    # ---- the step
    def _each(self):
        """``(group, index, leaf, param, grad)`` for every parameter, read afresh, group after group."""
        index = 0
        for group, entries in zip(self.param_groups, self._entries, strict=True):
            arrays = []
            for leaf, positions in entries:
                params, grads = leaf.getParameters(), leaf.getGradParameters()
                if len(params) != len(grads):
                    raise ValueError(f"{leaf!r}: {len(params)} parameters but {len(grads)} gradients")
                for i in range(len(params)) if positions is None else positions:
                    arrays.append(params[i])
                    yield group, index, leaf, params[i], grads[i]
                    index += 1
            group["params"] = arrays

    def step(self):
        """Update every trainable parameter in place."""
        if self.model is None:
            raise RuntimeError(
                f"{type(self).__name__} was built without a model: call it as opt(params, grads), "
                f"or build it as {type(self).__name__}(model, ...)"
            )
        for group, index, leaf, param, grad in self._each():
            if not leaf.frozen:
                self._update(self.state.setdefault(index, {}), param, grad, group)

    def __call__(self, params, gradients):
        """Update ``params`` in place from ``gradients`` (lists, flat or nested),
        with the first group's hyper-parameters."""
        params, gradients = flatten_arrays(params), flatten_arrays(gradients)
        if len(params) != len(gradients):
            raise ValueError(f"{type(self).__name__}: got {len(params)} parameters but {len(gradients)} gradients")
        for index, (param, grad) in enumerate(zip(params, gradients, strict=True)):
            self._update(self.state.setdefault(index, {}), param, grad, self.param_groups[0])

    def reset_t(self):
        """Restart the bias-correction step count of every parameter, keeping
        the moments."""
        for entry in self.state.values():
            if "step" in entry:
                entry["step"] = 0
            if "mu_product" in entry:
                entry["mu_product"] = 1.0

    def zero_grad(self):
        """Zero the gradients of the modules this optimizer trains."""
        if self._root is not None and all(p is None for entries in self._entries for _, p in entries):
            self._root.zeroGradParameters()
            return
        for leaf in dict.fromkeys(leaf for entries in self._entries for leaf, _ in entries):
            leaf.zeroGradParameters()

    def _update(self, state, param, grad, h):
        raise NotImplementedError

    @staticmethod
    def _decayed(param, grad, h, decoupled=False):
        """The gradient after weight decay: ``grad + weight_decay * param``
        (L2 penalty, PyTorch's ``weight_decay``); with ``decoupled`` (AdamW's
        rule) ``param`` shrinks in place by ``1 - lr * weight_decay`` and
        ``grad`` comes back unchanged."""
        if not h["weight_decay"]:
            return grad
        if decoupled:
            param *= 1 - h["lr"] * h["weight_decay"]
            return grad
        return grad + h["weight_decay"] * param

    @staticmethod
    def _moments(state, grad, beta1, beta2):
        """Adam's moment estimates, updated in place and returned:
        ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * g * g``."""
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        return m, v

    # ---- state
    def state_dict(self):
        """``{"state": {index: {name: array or number}}, "param_groups": [...],
        "hyper": {...}}`` (copies). As ``torch.optim``: each group holds its
        hyper-parameters and ``"params"``, the indices of its parameters (with
        ``"param_names"`` when the optimizer knows the model); ``"hyper"`` is
        the first group's hyper-parameters."""
        names = {}
        if self._root is not None:
            names = {id(p): n for n, p in self._root.named_parameters()}
        groups, index = [], 0
        for group, entries in zip(self.param_groups, self._entries, strict=True):
            arrays = self._arrays(entries)
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(arrays)))
            if names and all(id(p) in names for p in arrays):
                packed["param_names"] = [names[id(p)] for p in arrays]
            groups.append(packed)
            index += len(arrays)
        state = {
            index: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
            for index, entry in self.state.items()
        }
        return {"state": state, "param_groups": groups, "hyper": {k: getattr(self, k) for k in self.hyperparameters}}

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned: every group's hyper-parameters
        and the per-parameter state. The groups must match this optimizer's
        (their number and sizes), as in ``torch.optim``. A state of nnumpy
        0.1 (``{"hyper", "state"}``, one group) loads too."""
        name = type(self).__name__
        allowed = {*self.hyperparameters, *self._extra_group_keys}
        sizes = [len(self._arrays(entries)) for entries in self._entries]
        saved_groups = state_dict.get("param_groups")
        if saved_groups is None:
            saved_groups = [dict(state_dict.get("hyper", {}))] * len(self.param_groups)
        else:
            saved_sizes = [len(g.get("params", ())) for g in saved_groups]
            if saved_sizes != sizes:
                raise ValueError(
                    f"{name}.load_state_dict: the saved state has parameter groups of sizes {saved_sizes}, "
                    f"this optimizer {sizes}; build it with the same groups first"
                )
        updates = []
        for i, saved in enumerate(saved_groups):
            values = {k: v for k, v in saved.items() if k not in ("params", "param_names")}
            unknown = set(values) - allowed
            if unknown:
                raise ValueError(f"{name}.load_state_dict: unknown hyper-parameter(s) {sorted(unknown)} in group {i}")
            values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}
            self._validate({**self.param_groups[i], **values}, f" (saved group {i})")
            updates.append(values)
        shapes = [p.shape for entries in self._entries for p in self._arrays(entries)]
        state = {}
        for index, entry in state_dict.get("state", {}).items():
            index = int(index)
            if not 0 <= index < len(shapes):
                raise ValueError(f"{name}.load_state_dict: state for parameter {index}, but there are {len(shapes)}")
            restored = {}
            for key, value in entry.items():
                if isinstance(value, np.ndarray):
                    if value.shape != shapes[index] and value.ndim:
                        raise ValueError(
                            f"{name}.load_state_dict: state {key!r} of parameter {index} has shape "
                            f"{tuple(value.shape)}, the parameter {tuple(shapes[index])}"
                        )
                    value = np.array(value)
                elif not _is_number(value) and not isinstance(value, bool):
                    raise ValueError(
                        f"{name}.load_state_dict: state {key!r} of parameter {index} must be an array or a number, "
                        f"got {type(value).__name__}"
                    )
                restored[str(key)] = value
            state[index] = restored
        for group, values in zip(self.param_groups, updates, strict=True):
            group.update(values)
        if saved_groups and updates:
            self.defaults.update({k: v for k, v in updates[0].items() if k in self.hyperparameters})
        self.state = state

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        groups = f", groups={len(self.param_groups)}" if len(self.param_groups) > 1 else ""
        return f"{type(self).__name__}({args}{groups})"


# --------------------------------------------------------------------- torch.optim's rules
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (``torch.optim.SGD``).

    ``g = grad + weight_decay * p``; with momentum ``buf = momentum * buf +
    (1 - dampening) * g`` (``buf = g`` at the first step), then ``g = g +
    momentum * buf`` (Nesterov) or ``g = buf``; ``p -= lr * g``.

    Args:
        params: the model, parameter groups, ... (see ``Optimizer``).
        lr: learning rate (0.01; torch 2's default is 1e-3).
        momentum, dampening, weight_decay, nesterov: as ``torch.optim.SGD``.
        model: the module that holds parameters given as arrays or names.

    ``SGD()`` / ``SGD(0.1)`` without parameters is seed 003's ``SGD(lr=1e-3)``.

    Example:
        >>> import nnumpy
        >>> net = nnumpy.Sequential(nnumpy.Linear(4, 8), nnumpy.ReLU(), nnumpy.Linear(8, 2))
        >>> SGD([{"params": net[0], "lr": 1e-2}, {"params": net[2:]}], lr=1e-3, momentum=0.9)
        SGD(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, groups=2)
    """

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(
        self, params=None, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *, model=None
    ):
        hyper = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, hyper, model=model)

    def _check_group(self, group, where):
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{type(self).__name__}: Nesterov momentum requires momentum > 0 and dampening = 0{where}")

    def _update(self, state, param, grad, h):
        grad = self._decayed(param, grad, h)
        momentum = h["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, copy=True)
            else:
                buf *= momentum
                buf += (1 - h["dampening"]) * grad
            grad = grad + momentum * buf if h["nesterov"] else buf
        param -= h["lr"] * grad


class Momentum(SGD):
    """``SGD`` with ``momentum=0.9`` by default.

    ``Momentum(lr=...)`` without parameters is seed 003's ``Momentum(lr=1e-3,
    momentum=0.9)`` (``u = momentum * u + lr * g; p -= u``).
    """

    def __init__(
        self, params=None, lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, *, model=None
    ):
        super().__init__(
            params,
            lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            model=model,
        )


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``): bias-corrected first and second moments.

    ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g*g`` (with ``amsgrad``,
    ``v_max = max(v_max, v)`` replaces ``v`` below);
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``;
    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2).

    ``Adam(lr=...)`` without parameters is seed 003's ``Adam(lr=1e-3,
    beta1=0.9, beta2=0.999, eps=1e-8)``.
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(
        self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *, model=None
    ):
        hyper = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad))
        super().__init__(params, hyper, model=model)

    def _update(self, state, param, grad, h):
        beta1, beta2 = h["betas"]
        lr = h["lr"]
        grad = self._decayed(param, grad, h, self._decoupled)
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
            if h["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # In place with one scratch array, and the bias corrections folded into
        # two scalars: m / (sqrt(v) / c2 + eps) = c2 * m / (sqrt(v) + eps * c2).
        # 11 passes and no temporaries instead of 15 and 5 (the optimizer step
        # was a third of MLP-F's train step).
        c2 = math.sqrt(1 - beta2**t)
        scratch = np.multiply(grad, 1 - beta1)
        m *= beta1
        m += scratch
        np.multiply(grad, 1 - beta2, out=scratch)
        scratch *= grad
        v *= beta2
        v += scratch
        if h["amsgrad"]:
            v = np.maximum(state.setdefault("max_exp_avg_sq", np.zeros_like(param)), v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v, out=scratch)
        denom += h["eps"] * c2
        update = np.divide(m, denom, out=scratch)
        update *= lr * c2 / (1 - beta1**t)
        param -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``):
    ``p *= 1 - lr * weight_decay`` before the Adam step. Default
    ``weight_decay=0.01``."""

    _decoupled = True

    def __init__(
        self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False, *, model=None
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, model=model)


class Adamax(Optimizer):
    """Adamax (``torch.optim.Adamax``), Adam with the infinity norm:
    ``m = b1*m + (1-b1)*g``; ``u = max(b2*u, |g| + eps)``;
    ``p -= lr / (1 - b1**t) * m / u``."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params=None, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, model=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay), model=model)

    def _update(self, state, param, grad, h):
        beta1, beta2 = h["betas"]
        grad = self._decayed(param, grad, h)
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_inf=np.zeros_like(param))
        state["step"] += 1
        m, u = state["exp_avg"], state["exp_inf"]
        m *= beta1
        m += (1 - beta1) * grad
        u *= beta2
        np.maximum(u, np.abs(grad) + h["eps"], out=u)
        param -= (h["lr"] / (1 - beta1 ** state["step"])) * (m / u)


class Adadelta(Optimizer):
    """Adadelta (``torch.optim.Adadelta``): ``s = rho*s + (1-rho)*g*g``;
    ``d = sqrt(a + eps) / sqrt(s + eps) * g``; ``a = rho*a + (1-rho)*d*d``;
    ``p -= lr * d``."""

    hyperparameters = ("lr", "rho", "eps", "weight_decay")

    def __init__(self, params=None, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, model=None):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay), model=model)

    def _check_group(self, group, where):
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"{type(self).__name__}: rho must be in [0, 1], got {group['rho']!r}{where}")

    def _update(self, state, param, grad, h):
        rho, eps = h["rho"], h["eps"]
        grad = self._decayed(param, grad, h)
        if not state:
            state.update(step=0, square_avg=np.zeros_like(param), acc_delta=np.zeros_like(param))
        state["step"] += 1
        s, a = state["square_avg"], state["acc_delta"]
        s *= rho
        s += (1 - rho) * grad * grad
        delta = np.sqrt(a + eps) / np.sqrt(s + eps) * grad
        a *= rho
        a += (1 - rho) * delta * delta
        param -= h["lr"] * delta


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``).

    ``sq = alpha*sq + (1-alpha)*g*g``; ``avg = sqrt(sq) + eps`` (centered:
    ``sqrt(sq - mean_g**2) + eps``); with momentum ``buf = momentum*buf +
    g/avg``, ``p -= lr*buf``, else ``p -= lr * g / avg``.

    ``RMSprop(lr=...)`` (or ``RMSProp``) without parameters is seed 003's
    ``RMSProp(lr=1e-3, eps=1e-8, beta=0.9)``, whose ``eps`` is inside the root.
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(
        self, params=None, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *, model=None
    ):
        hyper = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
        super().__init__(params, hyper, model=model)

    def _update(self, state, param, grad, h):
        alpha = h["alpha"]
        grad = self._decayed(param, grad, h)
        if not state:
            state.update(step=0, square_avg=np.zeros_like(param))
            if h["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(param)
            if h["centered"]:
                state["grad_avg"] = np.zeros_like(param)
        state["step"] += 1
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * grad * grad
        if h["centered"]:
            ga = state.setdefault("grad_avg", np.zeros_like(param))
            ga *= alpha
            ga += (1 - alpha) * grad
            avg = np.sqrt(sq - ga * ga)
        else:
            avg = np.sqrt(sq)
        avg += h["eps"]
        if h["momentum"] > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(param))
            buf *= h["momentum"]
            buf += grad / avg
            param -= h["lr"] * buf
        else:
            param -= h["lr"] * (grad / avg)


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``): ``sum += g*g``;
    ``p -= lr / (1 + (t-1)*lr_decay) * g / (sqrt(sum) + eps)``.

    A group's own ``initial_accumulator_value`` starts its sums (PyTorch
    starts every group's at the constructor's value)."""

    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(
        self,
        params=None,
        lr=0.01,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        *,
        model=None,
    ):
        hyper = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, hyper, model=model)

    def _update(self, state, param, grad, h):
        grad = self._decayed(param, grad, h)
        if not state:
            state.update(step=0, sum=np.full_like(param, h["initial_accumulator_value"]))
        state["step"] += 1
        clr = h["lr"] / (1 + (state["step"] - 1) * h["lr_decay"])
        total = state["sum"]
        total += grad * grad
        std = np.sqrt(total)
        std += h["eps"]
        param -= clr * (grad / std)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (``torch.optim.NAdam``), with the momentum
    schedule ``mu_t = b1 * (1 - 0.5 * 0.96**(t * momentum_decay))``;
    ``decoupled_weight_decay`` decays the weights as AdamW (NAdamW).

    ``NAdam(lr=...)`` (or ``Nadam``) without parameters is seed 003's
    ``Nadam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)``.
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay")

    def __init__(
        self,
        params=None,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        *,
        model=None,
    ):
        hyper = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
        )
        super().__init__(params, hyper, model=model)

    def _update(self, state, param, grad, h):
        beta1, beta2 = h["betas"]
        lr, decay = h["lr"], h["momentum_decay"]
        grad = self._decayed(param, grad, h, h["decoupled_weight_decay"])
        if not state:
            state.update(step=0, mu_product=1.0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        state["step"] += 1
        t = state["step"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        m, v = self._moments(state, grad, beta1, beta2)
        denom = np.sqrt(v / (1 - beta2**t))
        denom += h["eps"]
        param -= (lr * (1 - mu) / (1 - mu_product)) * (grad / denom)
        param -= (lr * mu_next / (1 - mu_product * mu_next)) * (m / denom)


class RAdam(Optimizer):
    """Rectified Adam (``torch.optim.RAdam``): Adam whose adaptive term is
    switched on, and scaled by the rectification ``r_t``, once the variance
    of the adaptive rate is tractable (``rho_t > 5``); before that, SGD with
    bias-corrected momentum. ``decoupled_weight_decay`` decays the weights as
    AdamW."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")

    def __init__(
        self,
        params=None,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        *,
        model=None,
    ):
        hyper = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
        )
        super().__init__(params, hyper, model=model)

    def _update(self, state, param, grad, h):
        beta1, beta2 = h["betas"]
        lr = h["lr"]
        grad = self._decayed(param, grad, h, h["decoupled_weight_decay"])
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        state["step"] += 1
        t = state["step"]
        m, v = self._moments(state, grad, beta1, beta2)
        c1, c2 = 1 - beta1**t, 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / c2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            param -= (m / c1) * lr * (math.sqrt(c2) / (np.sqrt(v) + h["eps"])) * rect
        else:
            param -= (m / c1) * lr


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization
    Algorithms"; not in ``torch.optim``): the sign of an interpolated momentum.

    ``p *= 1 - lr * weight_decay``; ``p -= lr * sign(b1*m + (1-b1)*g)``;
    ``m = b2*m + (1-b2)*g``. Use a learning rate 3-10x smaller than AdamW's
    and a weight decay 3-10x larger.
    """

    hyperparameters = ("lr", "betas", "weight_decay")

    def __init__(self, params=None, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, model=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay), model=model)

    def _update(self, state, param, grad, h):
        beta1, beta2 = h["betas"]
        lr = h["lr"]
        if not state:
            state["exp_avg"] = np.zeros_like(param)
        m = state["exp_avg"]
        grad = self._decayed(param, grad, h, decoupled=True)
        param -= lr * np.sign(beta1 * m + (1 - beta1) * grad)
        m *= beta2
        m += (1 - beta2) * grad


SGD._seed003 = Seed003SGD
Momentum._seed003 = Seed003Momentum
RMSprop._seed003 = Seed003RMSProp
Adam._seed003 = Seed003Adam
NAdam._seed003 = Seed003Nadam

# the seeds' spellings
RMSProp = RMSprop
AdaGrad = Adagrad
Nadam = NAdam
