"""What the module table (tests/module_table.py, run by tests/test_modules.py:
every criterion against PyTorch in float32 over every reduction, weights,
ignore_index, label smoothing, probability targets and (N, C, d1, d2) inputs,
gradcheck in float64, the error table) cannot say: the meaning of reductions
and aliases, dtypes (float16 included), numerics under
``np.errstate(all='raise')``, constructor and gradOutput errors."""

import numpy as np
import pytest
import torch
from module_table import CRITERIA, _log_softmax, _same, _t, _upstream

import nnumpy
from nnumpy import (
    BCECriterion,
    BCEWithLogitsCriterion,
    ClassNLLCriterion,
    ClassNLLCriterionUnstable,
    CosineEmbeddingCriterion,
    Criterion,
    CrossEntropy,
    CrossEntropyCriterion,
    HuberCriterion,
    KLDivCriterion,
    L1Criterion,
    MarginRankingCriterion,
    MSECriterion,
    MSELoss,
    MultiMarginCriterion,
    NLLLoss,
    SmoothL1Criterion,
)

torch.set_num_threads(1)
REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ gradcheck on losses
def test_gradcheck_catches_a_wrong_gradient_of_a_loss_array():
    class Wrong(L1Criterion):
        def updateGradInput(self, input, target, gradOutput=None):
            return super().updateGradInput(input, target, None if gradOutput is None else np.ones_like(gradOutput))

    x, t = _same((3, 4))(np.float64)
    assert nnumpy.gradcheck(L1Criterion(reduction="none"), x, t).ok
    assert not nnumpy.gradcheck(Wrong(reduction="none"), x, t, raise_exception=False).ok


# ------------------------------------------------------------------ meaning
def test_mean_is_the_average_of_none_and_sum_its_total():
    for case in CRITERIA:
        if case.reduction != "none" or case.name.startswith(("CrossEntropy", "ClassNLL", "KLDiv")):
            continue  # weighted means and batchmean are checked against torch above
        x, t = case.data(np.float64)
        crit = case.ours()
        per = crit.forward(x, t)
        crit.reduction = "mean"
        assert np.isclose(crit.forward(x, t), per.mean(), rtol=1e-12), case.name
        crit.reduction = "sum"
        assert np.isclose(crit.forward(x, t), per.sum(), rtol=1e-12), case.name


def test_mse_criterion_is_the_seeds_sum_over_n_and_mse_loss_the_element_mean():
    x, t = np.ones((2, 5)), np.zeros((2, 5))
    assert MSECriterion().forward(x, t) == 5.0
    assert MSELoss().forward(x, t) == 1.0
    np.testing.assert_array_equal(MSECriterion(reduction="none").forward(x, t), [5.0, 5.0])
    assert MSELoss(reduction="none").forward(x, t).shape == (2, 5)


def test_pytorch_names_are_aliases_where_the_meaning_is_identical():
    assert nnumpy.CrossEntropyLoss is CrossEntropyCriterion
    assert nnumpy.BCELoss is BCECriterion and nnumpy.BCEWithLogitsLoss is BCEWithLogitsCriterion
    assert nnumpy.L1Loss is L1Criterion and nnumpy.SmoothL1Loss is SmoothL1Criterion
    assert nnumpy.HuberLoss is HuberCriterion and nnumpy.KLDivLoss is KLDivCriterion
    assert nnumpy.CosineEmbeddingLoss is CosineEmbeddingCriterion
    assert nnumpy.MarginRankingLoss is MarginRankingCriterion and nnumpy.MultiMarginLoss is MultiMarginCriterion
    assert MSELoss is not MSECriterion and NLLLoss is not ClassNLLCriterion
    # NLLLoss takes any scores, as PyTorch; ClassNLLCriterion refuses what is not a log-probability
    scores = np.array([[2.0, 1.0], [0.5, 3.0]], np.float32)
    assert NLLLoss().forward(scores, np.array([0, 1])) == pytest.approx(-2.5)


def test_soft_targets_equal_labels_for_one_hot_rows():
    r = np.random.default_rng(0)
    x = r.normal(size=(6, 4))
    labels = r.integers(0, 4, 6)
    onehot = np.eye(4)[labels]
    for crit in (CrossEntropyCriterion(), CrossEntropyCriterion(label_smoothing=0.3), ClassNLLCriterion()):
        inp = _log_softmax(x) if isinstance(crit, ClassNLLCriterion) else x
        assert np.isclose(crit.forward(inp, labels), crit.forward(inp, onehot), rtol=1e-12)
        np.testing.assert_allclose(crit.backward(inp, labels), crit.backward(inp, onehot), rtol=1e-12, atol=1e-15)


def test_all_ignored_gives_nan_mean_and_zero_gradient_as_torch():
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    t = np.full(3, -100)
    crit = CrossEntropyCriterion()
    with np.errstate(all="raise"):
        loss = crit.forward(x, t)
        grad = crit.backward(x, t)
    assert np.isnan(loss) and np.isnan(torch.nn.CrossEntropyLoss()(_t(x), _t(t)).item())
    assert not grad.any()
    assert CrossEntropyCriterion(reduction="sum").forward(x, t) == 0.0


def test_gradoutput_scales_scalar_losses():
    x, t = _same((3, 4))(np.float64)
    crit = MSELoss()
    np.testing.assert_allclose(crit.backward(x, t, 2.5), 2.5 * crit.backward(x, t))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_kept(dtype):
    for case in CRITERIA[::7]:
        x, t = case.data(dtype)
        crit = case.ours()
        loss = crit.forward(x, t)
        grad = crit.backward(x, t, _upstream(loss, case.reduction))
        assert np.asarray(loss).dtype == dtype, case.name
        for g in grad if isinstance(grad, tuple) else (grad,):
            assert g.dtype == dtype, case.name


def test_repr_shows_non_default_arguments():
    assert repr(CrossEntropyCriterion()) == "CrossEntropyCriterion()"
    assert repr(CrossEntropyCriterion(ignore_index=0, label_smoothing=0.1)) == (
        "CrossEntropyCriterion(ignore_index=0, label_smoothing=0.1)"
    )
    assert repr(ClassNLLCriterion(np.ones(3))) == "ClassNLLCriterion(weight=<array (3,)>)"
    assert repr(KLDivCriterion(reduction="batchmean")) == "KLDivCriterion(reduction='batchmean')"
    assert repr(MultiMarginCriterion(2)) == "MultiMarginCriterion(p=2)"


def test_seed_003_crossentropy_none_is_the_seeds_per_sample_loss():
    p = np.exp(_log_softmax(np.random.default_rng(0).normal(size=(4, 3))))
    t = np.eye(3)[[0, 2, 1, 1]]
    seed = (-np.log(np.clip(p, 1e-9, 1 - 1e-9)) * t).sum(axis=1)  # seed 003's forward
    np.testing.assert_allclose(CrossEntropy(reduction="none").forward(p, t), seed, rtol=1e-12)


# ------------------------------------------------------------------ numerics
EXTREME = np.array([[3e38, -3e38, 0.0, 1.0], [-3e38, -3e38, -3e38, -3e38], [1e-30, 3e38, 3e38, -1.0]], np.float32)


def _extreme_inputs():
    """(criterion, input, target): huge logits, zero probabilities, log(0)."""
    labels = np.array([1, 0, 3])
    probs = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]], np.float32)
    logp = np.log(np.where(probs > 0, probs, 1.0)).astype(np.float32)
    logp[probs == 0] = -np.inf  # log(0) from a LogSoftMax under float32's range
    signs = np.array([1, -1, 1])
    out = []
    for red in REDUCTIONS:
        out += [
            (CrossEntropyCriterion(reduction=red), EXTREME, labels),
            (CrossEntropyCriterion(reduction=red, label_smoothing=0.1, weight=np.ones(4)), EXTREME, labels),
            (CrossEntropyCriterion(reduction=red), EXTREME, probs),
            (ClassNLLCriterion(reduction=red), -np.abs(EXTREME), labels),
            (ClassNLLCriterion(reduction=red), logp, np.array([1, 0, 0])),
            (ClassNLLCriterion(reduction=red), logp, probs),
            (ClassNLLCriterionUnstable(reduction=red), probs, np.array([0, 1, 2])),
            (MSECriterion(reduction=red), EXTREME, -EXTREME),
            (MSELoss(reduction=red), EXTREME, -EXTREME),
            (L1Criterion(reduction=red), EXTREME, -EXTREME),
            (SmoothL1Criterion(reduction=red), EXTREME, -EXTREME),
            (HuberCriterion(reduction=red), EXTREME, -EXTREME),
            (BCECriterion(reduction=red), probs, 1 - probs),
            (BCEWithLogitsCriterion(reduction=red, pos_weight=np.full(4, 2.0)), EXTREME, probs),
            (KLDivCriterion(reduction=red), logp, probs),
            (KLDivCriterion(reduction=red, log_target=True), -np.abs(EXTREME), EXTREME),
            (MultiMarginCriterion(2, reduction=red), EXTREME, labels),
            (CosineEmbeddingCriterion(reduction=red), (EXTREME, -EXTREME[::-1].copy()), signs),
            (CosineEmbeddingCriterion(reduction=red), (EXTREME, np.zeros_like(EXTREME)), signs),
            (MarginRankingCriterion(reduction=red), (EXTREME[:, 0].copy(), EXTREME[:, 1].copy()), signs),
        ]
    return out


@pytest.mark.parametrize("crit,x,t", _extreme_inputs(), ids=lambda v: repr(v) if isinstance(v, Criterion) else "")
def test_no_floating_point_warning_for_extreme_float32_inputs(crit, x, t):
    with np.errstate(all="raise"):
        loss = crit.forward(x, t)
        grad = crit.backward(x, t, _upstream(loss, crit.reduction))
    assert not np.isnan(loss).any()
    for g in grad if isinstance(grad, tuple) else (grad,):
        assert g.dtype == np.float32 and not np.isnan(g).any()


def test_huge_logits_cost_their_margin_exactly():
    x = np.array([[1e4, -1e4, 0.0], [3e38, -3e38, 0.0]], np.float32)
    losses = CrossEntropyCriterion(reduction="none").forward(x, np.array([1, 1]))
    np.testing.assert_allclose(losses[0], 2e4, rtol=1e-6)
    assert losses[1] == np.inf  # 6e38 is beyond float32: inf, as in PyTorch
    assert BCECriterion().forward(np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32)) == 100.0


# ------------------------------------------------------------------ errors
ALL_CRITERIA = [
    CrossEntropyCriterion,
    ClassNLLCriterion,
    NLLLoss,
    ClassNLLCriterionUnstable,
    CrossEntropy,
    MSECriterion,
    MSELoss,
    L1Criterion,
    SmoothL1Criterion,
    HuberCriterion,
    BCECriterion,
    BCEWithLogitsCriterion,
    KLDivCriterion,
    MultiMarginCriterion,
    CosineEmbeddingCriterion,
    MarginRankingCriterion,
]
PAIRS = (CosineEmbeddingCriterion, MarginRankingCriterion)


@pytest.mark.parametrize("cls", ALL_CRITERIA, ids=lambda c: c.__name__)
def test_bad_reduction_names_the_class(cls):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: reduction must be 'mean', .*got 'avg'$"):
        cls(reduction="avg")


@pytest.mark.parametrize("cls", ALL_CRITERIA, ids=lambda c: c.__name__)
def test_empty_batch_is_refused_naming_the_criterion(cls):
    crit = cls()
    if cls in PAIRS:
        x = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
        x = x if cls is CosineEmbeddingCriterion else (x[0][:, 0], x[1][:, 0])
        t = np.zeros(0, int)
    elif cls in (CrossEntropyCriterion, ClassNLLCriterion, NLLLoss, ClassNLLCriterionUnstable, CrossEntropy):
        x, t = np.zeros((0, 4), np.float32), np.zeros(0, int)
    elif cls is MultiMarginCriterion:
        x, t = np.zeros((0, 4), np.float32), np.zeros(0, int)
    else:
        x, t = np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)
    for call in (crit.forward, crit.backward):
        with pytest.raises(ValueError, match=rf"^{cls.__name__}\(\): got an empty batch .*N >= 1$"):
            call(x, t)


def test_class_nll_refuses_probabilities_and_points_to_the_unstable_variant():
    p = np.full((2, 3), 1 / 3, np.float32)  # seed 002 passed probabilities
    pattern = r"^ClassNLLCriterion\(\): expected log-probabilities.*ClassNLLCriterionUnstable"
    with pytest.raises(ValueError, match=pattern):
        ClassNLLCriterion().forward(p, np.array([0, 1]))
    with pytest.raises(ValueError, match="ClassNLLCriterionUnstable"):
        ClassNLLCriterion().backward(p, np.array([0, 1]))
    logp = np.log(p)
    logp[0, 0] = 5e-5  # rounding above 0 is tolerated up to 1e-4
    assert np.isfinite(ClassNLLCriterion().forward(logp, np.array([0, 1])))
    logp[0, 0] = 2e-4
    with pytest.raises(ValueError, match=r"got a value of 0\.0002\."):
        ClassNLLCriterion().forward(logp, np.array([0, 1]))
    assert np.isclose(ClassNLLCriterionUnstable().forward(p, np.array([0, 1])), np.log(3), rtol=1e-6)


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"^CrossEntropyCriterion: label_smoothing must be in \[0, 1\], got 1.5$"):
        CrossEntropyCriterion(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"^MultiMarginCriterion: p must be 1 or 2, got 3$"):
        MultiMarginCriterion(p=3)
    with pytest.raises(ValueError, match=r"^SmoothL1Criterion: beta must be >= 0"):
        SmoothL1Criterion(beta=-1)
    with pytest.raises(ValueError, match=r"^HuberCriterion: delta must be > 0"):
        HuberCriterion(delta=0)
    with pytest.raises(ValueError, match=r"^ClassNLLCriterion: weight must be 1-D"):
        ClassNLLCriterion(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"^CrossEntropyCriterion: ignore_index must be an integer"):
        CrossEntropyCriterion(ignore_index=1.5)
    with pytest.raises(ValueError, match="'batchmean'"):
        KLDivCriterion(reduction="avg")


def test_gradoutput_contract():
    x, t = _same((3, 4))(np.float32)
    pattern = r"^L1Criterion\(reduction='none'\): with reduction='none' backward needs gradOutput"
    with pytest.raises(TypeError, match=pattern):
        L1Criterion(reduction="none").backward(x, t)
    with pytest.raises(ValueError, match=r"expected gradOutput of shape \(3, 4\) \(the loss's\), got \(3,\)$"):
        L1Criterion(reduction="none").backward(x, t, np.ones(3))
    with pytest.raises(ValueError, match=r"the loss is a number, so gradOutput must be a number, got shape \(3,\)$"):
        L1Criterion().backward(x, t, np.ones(3))


def test_a_users_criterion_without_gradoutput_still_works():
    class Half(Criterion):
        def updateOutput(self, input, target):
            return 0.5 * float(np.sum(input - target))

        def updateGradInput(self, input, target):
            return np.full_like(input, 0.5)

    crit = Half()
    x = np.ones((2, 2))
    assert crit.forward(x, np.zeros((2, 2))) == 2.0
    assert crit.backward(x, np.zeros((2, 2))).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert crit.reduction == "mean"
