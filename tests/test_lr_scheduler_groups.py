"""Schedules with parameter groups against torch.optim.lr_scheduler over 20
steps (each group's rate), the new schedules (LinearLR, LambdaLR,
PolynomialLR, CosineAnnealingWarmRestarts, SequentialLR), resuming, errors."""

import numpy as np
import pytest
import torch

import nnumpy
from nnumpy import (
    SGD,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    Linear,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    Sequential,
    SequentialLR,
    StepLR,
    Tanh,
)

TS = torch.optim.lr_scheduler
STEPS = 20
LRS = (0.1, 0.02)  # the two groups' rates


def ours_optimizer():
    model = Sequential(Linear(2, 3, rng=0), Tanh(), Linear(3, 2, rng=1))
    return SGD([{"params": model[0], "lr": LRS[0]}, {"params": model[2], "lr": LRS[1]}], lr=0.5, momentum=0.9)


def torch_optimizer():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    return torch.optim.SGD([{"params": [a], "lr": LRS[0]}, {"params": [b], "lr": LRS[1]}], lr=0.5, momentum=0.9)


def _sequential(make_parts, milestones):
    def ours(o):
        return SequentialLR(o, make_parts(o, nnumpy), milestones)

    def theirs(t):
        return TS.SequentialLR(t, make_parts(t, TS), milestones)

    return ours, theirs


def _parts_warmup_cosine(o, lib):
    return [lib.LinearLR(o, start_factor=0.1, total_iters=4), lib.CosineAnnealingLR(o, T_max=12, eta_min=1e-3)]


def _parts_three(o, lib):
    return [
        lib.LinearLR(o, start_factor=0.5, end_factor=1.0, total_iters=3),
        lib.ExponentialLR(o, gamma=0.8),
        lib.StepLR(o, step_size=2, gamma=0.5),
    ]


CASES = [
    ("StepLR", lambda o: StepLR(o, 3, 0.5), lambda t: TS.StepLR(t, 3, 0.5)),
    ("MultiStepLR", lambda o: MultiStepLR(o, [2, 5, 5, 9], 0.5), lambda t: TS.MultiStepLR(t, [2, 5, 5, 9], 0.5)),
    ("ExponentialLR", lambda o: ExponentialLR(o, 0.9), lambda t: TS.ExponentialLR(t, 0.9)),
    ("CosineAnnealingLR", lambda o: CosineAnnealingLR(o, 8, 1e-3), lambda t: TS.CosineAnnealingLR(t, 8, 1e-3)),
    ("LinearLR-default", lambda o: LinearLR(o), lambda t: TS.LinearLR(t)),
    (
        "LinearLR-decay",
        lambda o: LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=7),
        lambda t: TS.LinearLR(t, start_factor=1.0, end_factor=0.1, total_iters=7),
    ),
    (
        "LambdaLR-one",
        lambda o: LambdaLR(o, lambda e: 0.95**e),
        lambda t: TS.LambdaLR(t, lambda e: 0.95**e),
    ),
    (
        "LambdaLR-per-group",
        lambda o: LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.5 + e % 3]),
        lambda t: TS.LambdaLR(t, [lambda e: 1 / (e + 1), lambda e: 0.5 + e % 3]),
    ),
    ("PolynomialLR", lambda o: PolynomialLR(o), lambda t: TS.PolynomialLR(t)),
    (
        "PolynomialLR-power2",
        lambda o: PolynomialLR(o, total_iters=12, power=2.0),
        lambda t: TS.PolynomialLR(t, total_iters=12, power=2.0),
    ),
    (
        "CosineAnnealingWarmRestarts",
        lambda o: CosineAnnealingWarmRestarts(o, T_0=5),
        lambda t: TS.CosineAnnealingWarmRestarts(t, T_0=5),
    ),
    (
        "CosineAnnealingWarmRestarts-Tmult2",
        lambda o: CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=1e-3),
        lambda t: TS.CosineAnnealingWarmRestarts(t, T_0=2, T_mult=2, eta_min=1e-3),
    ),
    ("SequentialLR-warmup-cosine", *_sequential(_parts_warmup_cosine, [4])),
    ("SequentialLR-three", *_sequential(_parts_three, [3, 9])),
    (
        "OneCycleLR-per-group",
        lambda o: OneCycleLR(o, max_lr=[0.5, 0.05], total_steps=STEPS + 1),
        lambda t: TS.OneCycleLR(t, max_lr=[0.5, 0.05], total_steps=STEPS + 1, cycle_momentum=False),
    ),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_each_groups_rate_follows_torch_over_20_steps(name, ours, theirs):
    opt, topt = ours_optimizer(), torch_optimizer()
    sched, tsched = ours(opt), theirs(topt)
    for step in range(STEPS + 1):
        expected = [g["lr"] for g in topt.param_groups]
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(expected, rel=1e-9, abs=1e-15), f"step {step}"
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-9, abs=1e-15)
        topt.step()
        sched.step()
        tsched.step()


def test_warm_restarts_with_fractional_epochs_follow_torch():
    opt, topt = ours_optimizer(), torch_optimizer()
    sched = CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)
    tsched = TS.CosineAnnealingWarmRestarts(topt, T_0=3, T_mult=2)
    iters = 4
    for epoch in range(6):
        for i in range(iters):
            sched.step(epoch + i / iters)
            tsched.step(epoch + i / iters)
            assert [g["lr"] for g in opt.param_groups] == pytest.approx([g["lr"] for g in topt.param_groups], rel=1e-9)
    assert sched.T_i == tsched.T_i and sched.T_cur == pytest.approx(tsched.T_cur)


def test_reduce_on_plateau_reduces_every_group_with_its_floor():
    metrics = [1.0, 0.9, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]
    opt, topt = ours_optimizer(), torch_optimizer()
    sched = ReduceLROnPlateau(opt, patience=1, factor=0.5, min_lr=[0.01, 0.005])
    tsched = TS.ReduceLROnPlateau(topt, patience=1, factor=0.5, min_lr=[0.01, 0.005])
    for m in metrics:
        sched.step(m)
        tsched.step(m)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([g["lr"] for g in topt.param_groups], rel=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.005]


def test_parameters_follow_torch_under_a_schedule_with_groups():
    model = Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1)).to(np.float64)
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in model.parameters()]
    opt = SGD([{"params": model[0], "lr": 0.2}, {"params": model[2]}], lr=0.05, momentum=0.9)
    topt = torch.optim.SGD([{"params": tparams[:2], "lr": 0.2}, {"params": tparams[2:]}], lr=0.05, momentum=0.9)
    sched = SequentialLR(opt, [LinearLR(opt, 0.25, total_iters=5), CosineAnnealingLR(opt, 15)], [5])
    tsched = TS.SequentialLR(topt, [TS.LinearLR(topt, 0.25, total_iters=5), TS.CosineAnnealingLR(topt, 15)], [5])
    for step in range(STEPS):
        r = np.random.default_rng(step)
        for p, (_, g) in zip(tparams, model.parameter_pairs(), strict=True):
            g[...] = r.normal(size=g.shape)
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    for p, tp in zip(model.parameters(), tparams, strict=True):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_a_later_schedule_starts_from_the_initial_rates():
    opt = ours_optimizer()
    StepLR(opt, 1, 0.5).step()
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.01]
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)
    cosine = CosineAnnealingLR(opt, 4)
    assert cosine.base_lrs == list(LRS) and [g["lr"] for g in opt.param_groups] == list(LRS)


@pytest.mark.parametrize("name,ours,theirs", [c for c in CASES if c[0].startswith(("Sequential", "Cosine"))])
def test_resumed_schedule_continues_exactly(name, ours, theirs):
    opt = ours_optimizer()
    sched = ours(opt)
    for _ in range(7):
        sched.step()
    state = sched.state_dict()
    opt2 = ours_optimizer()
    sched2 = ours(opt2)
    sched2.load_state_dict(state)
    for _ in range(8):
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
        sched.step()
        sched2.step()


def test_schedule_as_fit_callback_per_step():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 2, 64)
    model = Sequential(Linear(4, 2, rng=0), nnumpy.LogSoftMax())
    opt = SGD(model, lr=0.1)
    sched = LinearLR(opt, start_factor=0.5, total_iters=8, interval="step")
    history = nnumpy.fit(model, None, opt, (x, y), epochs=2, batch_size=16, callbacks=[sched], verbose=False)
    assert sched.last_epoch == 8 and opt.lr == pytest.approx(0.1)
    assert history.lr == pytest.approx([0.05, 0.075])  # the rate when each epoch began


def test_errors():
    opt = ours_optimizer()
    with pytest.raises(TypeError, match="expected an optimizer with an `lr` attribute or `param_groups`, got object"):
        LinearLR(object())
    with pytest.raises(ValueError, match=r"^LinearLR: start_factor must be in \(0, 1\], got 0$"):
        LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match=r"^PolynomialLR: total_iters must be a positive integer, got 0$"):
        PolynomialLR(opt, total_iters=0)
    with pytest.raises(ValueError, match=r"^CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got 1.5$"):
        CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=1.5)
    with pytest.raises(
        ValueError, match=r"^LambdaLR: expected 2 lr_lambda functions \(one per parameter group\), got 3"
    ):
        LambdaLR(opt, [abs, abs, abs])
    with pytest.raises(
        ValueError, match=r"^OneCycleLR: expected 2 values of max_lr \(one per parameter group\), got 3$"
    ):
        OneCycleLR(opt, max_lr=[1, 2, 3], total_steps=5)
    with pytest.raises(ValueError, match=r"^SequentialLR: expected 1 milestones for 2 schedulers, got 2$"):
        SequentialLR(opt, [StepLR(opt, 1), StepLR(opt, 1)], [1, 2])
    with pytest.raises(ValueError, match=r"^SequentialLR: schedulers\[1\] is built on another optimizer$"):
        SequentialLR(opt, [StepLR(opt, 1), StepLR(ours_optimizer(), 1)], [1])
    with pytest.raises(TypeError, match=r"^SequentialLR: schedulers\[0\] is a ReduceLROnPlateau"):
        SequentialLR(opt, [ReduceLROnPlateau(opt), StepLR(opt, 1)], [1])
    with pytest.raises(ValueError, match=r"^StepLR: step_size must be a positive integer, got 1.5$"):
        StepLR(opt, 1.5)
    with pytest.raises(ValueError, match=r"^CosineAnnealingLR: interval must be 'epoch' or 'step', got 'batch'$"):
        CosineAnnealingLR(opt, 3, interval="batch")
