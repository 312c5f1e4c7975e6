"""Parameter groups (by module, list of modules, arrays, names) against
``torch.optim`` over 20 steps for every optimizer, groups kept through
``state_dict`` and checkpoints, the new optimizers (Adamax, Adadelta, RAdam,
Adam/AdamW with amsgrad, Lion against its reference code), and seed 003's
optimizers (``SGD(0.1)``, ``RMSProp(1e-3, 1e-8, 0.9)``, ...) against a
verbatim copy of the seed's code."""

import copy

import numpy as np
import pytest
import torch
from helpers import assert_close
from test_optim import feed  # the same random gradients for our model and the torch parameters

import nnumpy
from nnumpy import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Linear,
    Lion,
    Momentum,
    NAdam,
    Nadam,
    RAdam,
    RMSProp,
    RMSprop,
    Sequential,
    Tanh,
)
from nnumpy.distributed import DistributedOptimizer

torch.set_num_threads(1)
STEPS = 20


def net(dtype=np.float64, seed=0):
    """Five parameters' worth of layers: [0] Linear, [2] Linear, [4] Linear."""
    return Sequential(
        Linear(3, 4, rng=seed), Tanh(), Linear(4, 4, rng=seed + 1), Tanh(), Linear(4, 2, rng=seed + 2)
    ).to(dtype)


def torch_params(model):
    return [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in model.parameters()]


@pytest.fixture(autouse=True)
def torch_float64_scalars():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# (class, constructor defaults, overrides of group 0 (model[0]), of group 1 (model[2]));
# group 2 (model[4]) keeps the defaults
GROUP_CONFIGS = [
    (SGD, {"lr": 0.1, "momentum": 0.9}, {"lr": 0.01, "nesterov": True}, {"momentum": 0.0, "weight_decay": 0.1}),
    (Adam, {"lr": 1e-2}, {"lr": 1e-3, "betas": (0.8, 0.99)}, {"weight_decay": 0.1, "amsgrad": True}),
    (AdamW, {"lr": 1e-2, "amsgrad": True}, {"weight_decay": 0.0}, {"lr": 3e-2, "eps": 1e-6}),
    (Adamax, {"lr": 2e-2}, {"lr": 1e-3}, {"betas": (0.5, 0.9), "weight_decay": 0.05}),
    (Adadelta, {"lr": 1.0}, {"rho": 0.5}, {"lr": 0.1, "weight_decay": 0.1}),
    (RMSprop, {"lr": 1e-2}, {"momentum": 0.9}, {"centered": True, "alpha": 0.9}),
    # torch starts every group's sum at the constructor's initial_accumulator_value (ours honours a group's own)
    (Adagrad, {"lr": 0.1, "initial_accumulator_value": 0.1}, {"lr_decay": 0.05}, {"lr": 0.05, "weight_decay": 0.01}),
    (NAdam, {"lr": 2e-3}, {"momentum_decay": 1e-2}, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    (RAdam, {"lr": 1e-2}, {"lr": 1e-3}, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
]
GROUP_IDS = [c[0].__name__ for c in GROUP_CONFIGS]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cls,defaults,first,second", GROUP_CONFIGS, ids=GROUP_IDS)
def test_groups_follow_torch_over_20_steps(cls, defaults, first, second, dtype):
    model = net(dtype)
    tparams = torch_params(model)
    opt = cls([{"params": model[0], **first}, {"params": model[2], **second}, {"params": model[4]}], **defaults)
    topt = getattr(torch.optim, cls.__name__)(
        [{"params": tparams[0:2], **first}, {"params": tparams[2:4], **second}, {"params": tparams[4:]}], **defaults
    )
    assert len(opt.param_groups) == 3
    for ours, theirs in zip(opt.param_groups, topt.param_groups, strict=True):
        for key in cls.hyperparameters:
            assert ours[key] == (tuple(theirs[key]) if isinstance(ours[key], tuple) else theirs[key]), key
    for step in range(STEPS):
        feed(model, tparams, step)
        opt.step()
        topt.step()
    for i, (p, tp) in enumerate(zip(model.parameters(), tparams, strict=True)):
        assert_close(p, tp, dtype, f"{cls.__name__} parameter {i} after {STEPS} steps")


def lion_reference(params, grads, state, lr, betas, weight_decay):
    """Lion as its authors' PyTorch code writes it (lucidrains/lion-pytorch's update_fn)."""
    beta1, beta2 = betas
    for i, (p, grad) in enumerate(zip(params, grads, strict=True)):
        exp_avg = state.setdefault(i, torch.zeros_like(p))
        p.data.mul_(1 - lr * weight_decay)
        update = exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
        p.add_(update, alpha=-lr)
        exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)


def test_lion_follows_its_reference_with_groups():
    model = net()
    tparams = torch_params(model)
    opt = Lion([{"params": model[0], "lr": 1e-3}, {"params": [model[2], model[4]], "weight_decay": 0.5}], lr=1e-2)
    assert opt.defaults == {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.0}
    s1, s2 = {}, {}
    with torch.no_grad():
        for step in range(STEPS):
            feed(model, tparams, step)
            opt.step()
            lion_reference(tparams[:2], [p.grad for p in tparams[:2]], s1, 1e-3, (0.9, 0.99), 0.0)
            lion_reference(tparams[2:], [p.grad for p in tparams[2:]], s2, 1e-2, (0.9, 0.99), 0.5)
    for p, tp in zip(model.parameters(), tparams, strict=True):
        assert_close(p, tp, np.float64, "Lion")


# ------------------------------------------------------------------ what a group's "params" may be
def _group_forms(model):
    """The same two groups (model[0] at lr 0.05; model[2] and model[4] at the default), written every way."""
    names = [n for n, _ in model.named_parameters()]
    return {
        "modules": ([{"params": model[0], "lr": 0.05}, {"params": model[2:]}], {}),
        "list-of-modules": ([{"params": [model[0]], "lr": 0.05}, {"params": [model[2], model[4]]}], {}),
        "arrays": (
            [{"params": model[0].parameters(), "lr": 0.05}, {"params": model[2:].parameters()}],
            {"model": model},
        ),
        "names": ([{"params": names[:2], "lr": 0.05}, {"params": names[2:]}], {"model": model}),
        "named_parameters": (
            [
                {"params": list(model.named_parameters())[:2], "lr": 0.05},
                {"params": list(model.named_parameters())[2:]},
            ],
            {"model": model},
        ),
    }


@pytest.mark.parametrize("form", list(_group_forms(net())), ids=str)
def test_every_way_of_naming_a_group_trains_the_same(form):
    model = net()
    groups, kwargs = _group_forms(model)[form]
    tparams = torch_params(model)
    opt = SGD(groups, lr=0.1, momentum=0.9, **kwargs)
    topt = torch.optim.SGD([{"params": tparams[:2], "lr": 0.05}, {"params": tparams[2:]}], lr=0.1, momentum=0.9)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 4]
    assert opt.param_groups[0]["params"][0] is model[0].W  # the arrays themselves, as torch lists its tensors
    for step in range(5):
        feed(model, tparams, step)
        opt.step()
        topt.step()
    for p, tp in zip(model.parameters(), tparams, strict=True):
        assert_close(p, tp, np.float64, form)


def test_the_issue_example_and_attributes():
    model = net(np.float32)
    opt = SGD([{"params": model[0], "lr": 1e-2}, {"params": model[2:]}], lr=1e-3)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    assert opt.lr == 1e-2  # the first group's
    opt.param_groups[1]["lr"] = 0.5  # one group, as in torch
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 0.5]
    opt.lr = 0.2  # every group
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2] and opt.defaults["lr"] == 0.2
    assert repr(opt) == "SGD(lr=0.2, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, groups=2)"
    # a group of model[2:] covers model[2] and model[4]; the Tanh layers have no parameters
    x = np.ones((2, 3), np.float32)
    model.forward(x)
    model.backward(x, np.ones((2, 2), np.float32))
    opt.zero_grad()
    assert all(not g.any() for g in model.grad_parameters())


def test_add_param_group_and_frozen_modules():
    model = net()
    opt = Adam(model[0], lr=0.1)
    opt.add_param_group({"params": model[2], "lr": 0.01})
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    model[2].freeze()
    before = [p.copy() for p in model.parameters()]
    feed(model)
    opt.step()
    after = model.parameters()
    assert not np.array_equal(before[0], after[0])  # group 0 trained
    assert np.array_equal(before[2], after[2]) and np.array_equal(before[3], after[3])  # frozen
    assert np.array_equal(before[4], after[4])  # model[4] in no group
    assert sorted(opt.state) == [0, 1]


def test_rebound_arrays_in_groups_are_followed():
    model = net()
    opt = SGD(["0.W"], lr=1.0, model=model)
    model[0].W = np.zeros((4, 3))
    model[0].gradW = np.ones((4, 3))
    opt.step()
    np.testing.assert_array_equal(model[0].W, -1.0)
    assert opt.param_groups[0]["params"][0] is model[0].W


# ------------------------------------------------------------------ state_dict and checkpoints
def test_state_dict_keeps_groups_like_torch():
    model = net()
    opt = AdamW([{"params": model[0], "lr": 0.05}, {"params": model[2:], "weight_decay": 0.5}], lr=0.01, model=model)
    feed(model)
    opt.step()
    saved = opt.state_dict()
    tparams = torch_params(model)
    topt = torch.optim.AdamW(
        [{"params": tparams[:2], "lr": 0.05}, {"params": tparams[2:], "weight_decay": 0.5}], lr=0.01
    )
    for ours, theirs in zip(saved["param_groups"], topt.state_dict()["param_groups"], strict=True):
        assert ours["params"] == theirs["params"]
        assert {k: ours[k] for k in AdamW.hyperparameters} == {
            k: tuple(theirs[k]) if k == "betas" else theirs[k] for k in AdamW.hyperparameters
        }
    assert saved["param_groups"][1]["param_names"] == ["2.W", "2.b", "4.W", "4.b"]
    assert set(saved["state"]) == set(range(6))
    twin = copy.deepcopy(model)
    other = AdamW([{"params": twin[0]}, {"params": twin[2:]}], lr=1.0)
    other.load_state_dict(saved)
    assert [g["lr"] for g in other.param_groups] == [0.05, 0.01]
    assert [g["weight_decay"] for g in other.param_groups] == [0.01, 0.5]
    for step in range(1, 6):
        for m in (model, twin):
            feed(m, None, step)
        opt.step()
        other.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_refuses_other_groups_and_foreign_names():
    model = net()
    opt = SGD([{"params": model[0]}, {"params": model[2:]}], lr=0.1)
    saved = opt.state_dict()
    with pytest.raises(
        ValueError, match=r"^SGD.load_state_dict: the saved state has parameter groups of sizes \[2, 4\], "
    ):
        SGD(model, lr=0.1).load_state_dict(saved)
    evil = copy.deepcopy(saved)
    evil["param_groups"][0]["step"] = 5  # no name from a file reaches setattr unless it is a hyper-parameter
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['step'\] in group 0"):
        opt.load_state_dict(evil)
    evil = copy.deepcopy(saved)
    evil["param_groups"][1]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -1.0 \(saved group 1\)"):
        opt.load_state_dict(evil)
    evil = copy.deepcopy(saved)
    evil["state"] = {0: {"momentum_buffer": np.zeros(7)}}
    with pytest.raises(
        ValueError, match=r"state 'momentum_buffer' of parameter 0 has shape \(7,\), the parameter \(4, 3\)"
    ):
        opt.load_state_dict(evil)
    evil["state"] = {0: {"momentum_buffer": {"__class__": "Generator"}}}
    with pytest.raises(
        ValueError, match=r"state 'momentum_buffer' of parameter 0 must be an array or a number, got dict"
    ):
        opt.load_state_dict(evil)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.1]  # nothing changed by the refused loads


def test_old_state_dicts_without_groups_still_load():
    model = net()
    opt = SGD(model, lr=0.1, momentum=0.9)
    feed(model)
    opt.step()
    legacy = {"hyper": {k: getattr(opt, k) for k in SGD.hyperparameters}, "state": opt.state_dict()["state"]}
    legacy["hyper"]["lr"] = 0.3
    other = SGD(copy.deepcopy(model), lr=0.1)
    other.load_state_dict(legacy)
    assert other.lr == 0.3 and other.momentum == 0.9
    np.testing.assert_array_equal(other.state[0]["momentum_buffer"], opt.state[0]["momentum_buffer"])


@pytest.mark.parametrize("with_model", [False, True], ids=["groups-of-modules", "groups-by-name"])
def test_checkpoint_round_trips_groups_through_the_top_level_api(tmp_path, with_model):
    model = net(np.float32)
    groups = [{"params": model[0], "lr": 0.05, "momentum": 0.5}, {"params": model[2:]}]
    if with_model:
        groups = [{"params": ["0.W", "0.b"], "lr": 0.05, "momentum": 0.5}, {"params": ["2.W", "2.b", "4.W", "4.b"]}]
    opt = SGD(groups, lr=0.1, momentum=0.9, model=model if with_model else None)
    sched = nnumpy.StepLR(opt, step_size=2, gamma=0.5)
    for step in range(3):
        feed(model, None, step)
        opt.step()
        sched.step()
    nnumpy.save_checkpoint(tmp_path / "c.npz", model, opt)
    ckpt = nnumpy.load_checkpoint(tmp_path / "c.npz")
    restored = nnumpy.io.restore_optimizer(ckpt)
    assert [len(g["params"]) for g in restored.param_groups] == [2, 4]
    for ours, saved in zip(restored.param_groups, opt.param_groups, strict=True):
        assert {k: ours[k] for k in (*SGD.hyperparameters, "initial_lr")} == {
            k: saved[k] for k in (*SGD.hyperparameters, "initial_lr")
        }
    for step in range(3, 6):  # the restored run continues exactly
        feed(model, None, step)
        feed(ckpt.model, None, step)
        opt.step()
        restored.step()
    for a, b in zip(model.parameters(), ckpt.model.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ errors
def test_group_errors():
    model = net()
    with pytest.raises(ValueError, match=r"^SGD: a parameter appears in more than one group \(param_groups\[1\]\)"):
        SGD([{"params": model[0]}, {"params": model[:3]}])
    with pytest.raises(ValueError, match=r"^Adam: unknown key\(s\) \['learning_rate'\] in a parameter group"):
        Adam([{"params": model, "learning_rate": 0.1}])
    with pytest.raises(
        TypeError, match=r"^SGD: parameters given as arrays or names \(param_groups\[0\]\) need the module"
    ):
        SGD(["0.W"], lr=0.1)
    with pytest.raises(ValueError, match=r"^SGD: Sequential has no parameter named '9.W' \(param_groups\[0\]\)$"):
        SGD(["9.W"], lr=0.1, model=model)
    with pytest.raises(
        ValueError, match=r"^SGD: an array of shape \(3,\) \(param_groups\[0\]\) is not a parameter of the model$"
    ):
        SGD([np.zeros(3)], lr=0.1, model=model)
    with pytest.raises(ValueError, match=r"^Adam: betas\[0\] must be in \[0, 1\), got 1.5 \(param_groups\[1\]\)$"):
        Adam([{"params": model[0]}, {"params": model[2], "betas": (1.5, 0.9)}])
    with pytest.raises(
        ValueError, match=r"^SGD: Nesterov momentum requires momentum > 0 and dampening = 0 \(param_groups\[0\]\)"
    ):
        SGD([{"params": model, "nesterov": True}])
    with pytest.raises(ValueError, match=r"^SGD: got an empty parameter list$"):
        SGD([])
    with pytest.raises(TypeError, match=r"^SGD: give either a list of parameter groups \(dicts\) or one list"):
        SGD([{"params": model[0]}, model[2]])
    with pytest.raises(TypeError, match=r"^SGD: expected the model .* got ndarray$"):
        SGD(np.zeros(3))
    with pytest.raises(ValueError, match=r"^Adadelta: rho must be in \[0, 1\], got 2"):
        Adadelta(model, rho=2)
    with pytest.raises(ValueError, match=r"^RAdam: lr must be a finite number >= 0, got inf$"):
        RAdam(model, lr=float("inf"))


# ------------------------------------------------------------------ seed 003's optimizers
# Verbatim copies of seed 003's classes (the reference); only the ABC base is left out.
class SeedSGD:
    def __init__(self, lr=1e-3):
        self.lr = lr

    def __call__(self, params, gradients):
        for weights, gradient in zip(params, gradients):  # noqa: B905
            weights -= self.lr * gradient


class SeedMomentum:
    def __init__(self, lr=1e-3, momentum=0.9):
        self.lr = lr
        self.momentum = momentum
        self._u = []

    def __call__(self, params, gradients):
        if len(self._u) == 0:
            self._u = [0] * len(params)
        for i, (weights, gradient) in enumerate(zip(params, gradients)):  # noqa: B905
            self._u[i] = self._u[i] * self.momentum + self.lr * gradient
            weights -= self._u[i]


class SeedRMSProp:
    def __init__(self, lr=1e-3, eps=1e-8, beta=0.9):
        self.lr = lr
        self.eps = eps
        self.beta = beta
        self._g = []

    def __call__(self, params, gradients):
        if len(self._g) == 0:
            self._g = [0] * len(params)
        for i, (weights, gradient) in enumerate(zip(params, gradients)):  # noqa: B905
            self._g[i] = self._g[i] * self.beta + gradient * gradient * (1 - self.beta)
            weights -= (self.lr * gradient) / np.sqrt(self._g[i] + self.eps)


class SeedAdam:
    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self._m = []
        self._u = []
        self.t = 1

    def __call__(self, params, gradients):
        if (len(self._u) == 0) and (len(self._m) == 0):
            self._u = [0] * len(params)
            self._m = [0] * len(params)
        for i, (weights, gradient) in enumerate(zip(params, gradients)):  # noqa: B905
            self._m[i] = self.beta1 * self._m[i] + (1 - self.beta1) * gradient
            self._u[i] = self.beta2 * self._u[i] + (1 - self.beta2) * gradient * gradient
            hat_m = self._m[i] / (1 - self.beta1**self.t)
            hat_u = self._u[i] / (1 - self.beta2**self.t)
            weights -= (self.lr * hat_m) / (np.sqrt(hat_u) + self.eps)
        self.t += 1

    def reset_t(self):
        self.t = 1


class SeedNadam:
    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self._m = []
        self._u = []
        self.t = 1

    def __call__(self, params, gradients):
        if (len(self._u) == 0) and (len(self._m) == 0):
            self._u = [0] * len(params)
            self._m = [0] * len(params)
        for i, (weights, gradient) in enumerate(zip(params, gradients)):  # noqa: B905
            self._m[i] = self.beta1 * self._m[i] + (1 - self.beta1) * gradient
            self._u[i] = self.beta2 * self._u[i] + (1 - self.beta2) * gradient * gradient
            hat_m = self._m[i] / (1 - self.beta1**self.t)
            hat_u = self._u[i] / (1 - self.beta2**self.t)
            weights -= (self.lr * (self.beta1 * hat_m + ((1 - self.beta1) * gradient) / (1 - self.beta1**self.t))) / (
                np.sqrt(hat_u) + self.eps
            )
        self.t += 1

    def reset_t(self):
        self.t = 1


SEED_CASES = [
    ("SGD()", lambda: SGD(), lambda: SeedSGD()),
    ("SGD(0.1)", lambda: SGD(0.1), lambda: SeedSGD(0.1)),
    ("SGD(lr=0.05)", lambda: SGD(lr=0.05), lambda: SeedSGD(lr=0.05)),
    ("Momentum(lr=0.01)", lambda: Momentum(lr=0.01), lambda: SeedMomentum(lr=0.01)),
    ("Momentum(0.02, 0.5)", lambda: Momentum(0.02, 0.5), lambda: SeedMomentum(0.02, 0.5)),
    ("RMSProp(1e-3, 1e-8, 0.9)", lambda: RMSProp(1e-3, 1e-8, 0.9), lambda: SeedRMSProp(1e-3, 1e-8, 0.9)),
    ("RMSprop(lr=0.01, beta=0.5)", lambda: RMSprop(lr=0.01, beta=0.5), lambda: SeedRMSProp(lr=0.01, beta=0.5)),
    ("Adam()", lambda: Adam(), lambda: SeedAdam()),
    ("Adam(1e-2, 0.8, 0.99, 1e-6)", lambda: Adam(1e-2, 0.8, 0.99, 1e-6), lambda: SeedAdam(1e-2, 0.8, 0.99, 1e-6)),
    ("Nadam(lr=1e-2, beta1=0.85)", lambda: Nadam(lr=1e-2, beta1=0.85), lambda: SeedNadam(lr=1e-2, beta1=0.85)),
    ("NAdam()", lambda: NAdam(), lambda: SeedNadam()),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name,ours,seed", SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_seed_003_constructors_give_the_seeds_optimizers(name, ours, seed, dtype):
    model, mirror = net(dtype), net(dtype)
    opt, ref = ours(), seed()
    assert isinstance(opt, nnumpy.Seed003Optimizer) and opt.model is None
    for step in range(STEPS):
        for m in (model, mirror):
            feed(m, None, step)
        opt(model.parameters(), model.grad_parameters())
        ref(mirror.parameters(), mirror.grad_parameters())
    for a, b in zip(model.parameters(), mirror.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)  # the seed's formulas, operation for operation
        assert a.dtype == dtype
    if hasattr(ref, "t"):
        assert opt.t == ref.t == STEPS + 1
        opt.reset_t()
        assert opt.t == 1


def test_seed_003_signatures_defaults_and_errors():
    assert repr(SGD()) == "SGD(lr=0.001)"
    assert repr(Momentum(lr=0.01)) == "Momentum(lr=0.01, momentum=0.9)"
    assert repr(RMSProp(1e-3, 1e-8, 0.9)) == "RMSProp(lr=0.001, eps=1e-08, beta=0.9)"
    assert repr(Adam()) == "Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08)"
    assert repr(Nadam()) == "Nadam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08)"
    assert isinstance(SGD(nnumpy.Linear(2, 2)), SGD)  # with a model: torch.optim's SGD
    with pytest.raises(
        TypeError, match=r"^SGD: built without a model or parameters this is seed 003's SGD\(lr=1e-3\).*"
    ):
        SGD(lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match=r"pass the model or parameters first: Adam\(model, \.\.\.\)$"):
        Adam(lr=0.1, betas=(0.9, 0.99))
    with pytest.raises(
        RuntimeError, match=r"^SGD was built without a model \(seed 003's way\): call it as opt\(params, grads\)"
    ):
        SGD(0.1).step()
    with pytest.raises(ValueError, match=r"^Adam: got 2 parameters but 1 gradients$"):
        Adam()([np.zeros(2), np.zeros(3)], [np.zeros(2)])
    with pytest.raises(TypeError, match="optimizer built on a model"):
        DistributedOptimizer(SGD(0.1))
    # a schedule drives a seed 003 optimizer through its lr attribute
    opt = SGD(0.1)
    sched = nnumpy.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert opt.lr == 0.05 and sched.get_last_lr() == [0.05]


def test_seed_003_state_dict_round_trip():
    w1, w2 = np.ones(3), np.ones(3)
    a, b = Adam(lr=0.1), Adam(lr=0.5)
    for _ in range(3):
        a([w1], [np.full(3, 0.3)])
    b.load_state_dict(a.state_dict())
    assert b.lr == 0.1 and b.t == a.t == 4
    w2[...] = w1
    a([w1], [np.full(3, -0.2)])
    b([w2], [np.full(3, -0.2)])
    np.testing.assert_array_equal(w1, w2)
    with pytest.raises(ValueError, match="unknown hyper-parameter 'step'"):
        b.load_state_dict({"hyper": {"step": 1}})


def test_copies_and_pickles_stay_torch_style():
    import pickle

    model = net()
    opt = SGD(model, lr=0.1, momentum=0.9)
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert type(clone) is SGD and clone.lr == 0.1 and len(clone.param_groups) == 1


# ------------------------------------------------------------------ training's lookups
def test_get_optimizer_and_default_criterion_still_work():
    from nnumpy.training import default_criterion, get_optimizer

    model = Sequential(Linear(3, 2), nnumpy.LogSoftMax())
    for name, cls in [("sgd", SGD), ("momentum", Momentum), ("adam", Adam), ("adamw", AdamW), ("nadam", NAdam),
                      ("rmsprop", RMSprop), ("adagrad", Adagrad), ("Vanilla", SGD)]:  # fmt: skip
        opt = get_optimizer(name, model, lr=0.05, weight_decay=None)
        assert type(opt) is cls and opt.lr == 0.05 and opt.model is model
    assert type(get_optimizer(RAdam, model, lr=0.01)) is RAdam
    assert isinstance(default_criterion(model), nnumpy.ClassNLLCriterion)
    assert isinstance(default_criterion(Sequential(Linear(3, 2), nnumpy.SoftMax())), nnumpy.ClassNLLCriterionUnstable)
    assert isinstance(default_criterion(Sequential(Linear(3, 2))), nnumpy.CrossEntropyCriterion)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    opt = Adam([{"params": model[0], "lr": 0.05}], lr=0.01)
    history = nnumpy.fit(model, None, opt, (x, y), epochs=3, batch_size=8, verbose=False)
    assert history.loss[-1] < history.loss[0] and history.lr == [0.05] * 3
