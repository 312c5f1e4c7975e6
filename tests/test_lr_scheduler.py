"""Learning-rate schedules against torch.optim.lr_scheduler, and as fit callbacks."""

import numpy as np
import pytest
import torch

import nnumpy
from nnumpy import Linear, LogSoftMax, Sequential, fit
from nnumpy.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)


def torch_optimizer(lr):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def ours_optimizer(lr):
    return nnumpy.SGD(Linear(2, 2, rng=0), lr=lr)


CASES = [
    ("StepLR", lambda o: StepLR(o, step_size=3, gamma=0.5), lambda t: torch.optim.lr_scheduler.StepLR(t, 3, 0.5)),
    (
        "MultiStepLR",
        lambda o: MultiStepLR(o, milestones=[2, 5], gamma=0.1),
        lambda t: torch.optim.lr_scheduler.MultiStepLR(t, [2, 5], 0.1),
    ),
    ("ExponentialLR", lambda o: ExponentialLR(o, gamma=0.9), lambda t: torch.optim.lr_scheduler.ExponentialLR(t, 0.9)),
    (
        "CosineAnnealingLR",
        lambda o: CosineAnnealingLR(o, T_max=8, eta_min=1e-4),
        lambda t: torch.optim.lr_scheduler.CosineAnnealingLR(t, 8, eta_min=1e-4),
    ),
    (
        "OneCycleLR",
        lambda o: OneCycleLR(o, max_lr=0.5, total_steps=20, pct_start=0.3),
        lambda t: torch.optim.lr_scheduler.OneCycleLR(t, 0.5, total_steps=20, pct_start=0.3, cycle_momentum=False),
    ),
    (
        "OneCycleLR-linear-3phase",
        lambda o: OneCycleLR(o, max_lr=0.5, total_steps=20, anneal_strategy="linear", three_phase=True),
        lambda t: torch.optim.lr_scheduler.OneCycleLR(
            t, 0.5, total_steps=20, anneal_strategy="linear", three_phase=True, cycle_momentum=False
        ),
    ),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_schedule_matches_torch(name, ours, theirs):
    opt, topt = ours_optimizer(0.1), torch_optimizer(0.1)
    sched, tsched = ours(opt), theirs(topt)
    steps = 19 if name.startswith("OneCycle") else 12
    for _ in range(steps):
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        sched.step()
        topt.step()
        tsched.step()
    assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)


def test_reduce_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.4, 0.4, 0.4]
    for kwargs in (
        dict(patience=1),
        dict(patience=2, cooldown=1, factor=0.5, min_lr=0.01),
        dict(mode="max", patience=0, threshold=0.1, threshold_mode="abs"),
    ):
        opt, topt = ours_optimizer(0.1), torch_optimizer(0.1)
        sched = ReduceLROnPlateau(opt, **kwargs)
        tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
        for m in metrics:
            sched.step(m)
            tsched.step(m)
            assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12), kwargs


def test_linear_warmup_then_cosine():
    opt = ours_optimizer(1.0)
    cosine = CosineAnnealingLR(opt, T_max=4)
    warm = LinearWarmup(opt, warmup=2, start_factor=0.5, after=cosine)
    seen = [opt.lr]
    for _ in range(6):
        warm.step()
        seen.append(opt.lr)
    expected = [0.5, 0.75, 1.0, (1 + np.cos(np.pi / 4)) / 2, 0.5, (1 + np.cos(3 * np.pi / 4)) / 2, 0.0]
    np.testing.assert_allclose(seen, expected, atol=1e-12)


def test_state_dict_round_trip_continues_the_schedule():
    opt = ours_optimizer(0.1)
    sched = OneCycleLR(opt, max_lr=0.5, total_steps=10)
    for _ in range(4):
        sched.step()
    state = sched.state_dict()
    opt2 = ours_optimizer(0.1)
    sched2 = OneCycleLR(opt2, max_lr=0.5, total_steps=10)
    sched2.load_state_dict(state)
    assert opt2.lr == opt.lr
    sched.step()
    sched2.step()
    assert opt2.lr == opt.lr
    plateau = ReduceLROnPlateau(opt, patience=0)
    plateau.step(1.0)
    plateau.step(2.0)
    restored = ReduceLROnPlateau(ours_optimizer(0.1), patience=0)
    restored.load_state_dict(plateau.state_dict())
    assert restored.best == 1.0 and restored.last_epoch == 2


def test_errors():
    with pytest.raises(TypeError, match="expected an optimizer with an `lr` attribute"):
        StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        StepLR(ours_optimizer(0.1), step_size=0)
    with pytest.raises(ValueError, match="factor must be < 1"):
        ReduceLROnPlateau(ours_optimizer(0.1), factor=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(ours_optimizer(0.1), max_lr=1, total_steps=5, anneal_strategy="exp")


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 2, 64)


def test_schedules_as_fit_callbacks_step_per_epoch_or_per_step():
    x, y = _data()
    model = Sequential(Linear(4, 2, rng=0), LogSoftMax())
    opt = nnumpy.SGD(model, lr=0.1)
    history = fit(model, None, opt, (x, y), epochs=3, batch_size=16, callbacks=[StepLR(opt, 1, 0.5)], verbose=False)
    assert history.lr == pytest.approx([0.1, 0.05, 0.025])
    model = Sequential(Linear(4, 2, rng=0), LogSoftMax())
    opt = nnumpy.SGD(model, lr=0.1)
    cycle = OneCycleLR(opt, max_lr=0.1, total_steps=12)
    fit(model, None, opt, (x, y), epochs=3, batch_size=16, callbacks=[cycle], verbose=False)
    assert cycle.last_epoch == 12


def test_plateau_callback_reads_the_validation_loss():
    x, y = _data()
    model = Sequential(Linear(4, 2, rng=0), LogSoftMax())
    opt = nnumpy.SGD(model, lr=0.0)
    plateau = ReduceLROnPlateau(opt, patience=0)
    history = fit(model, None, opt, (x, y), val_data=(x, y), epochs=3, callbacks=[plateau], verbose=False)
    assert plateau.last_epoch == 3 and plateau.best == history.val_loss[0]
    assert plateau.num_bad_epochs == 0  # reset by the reduction after the second epoch
