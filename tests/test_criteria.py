"""Every criterion against PyTorch (float32, every reduction, weights,
ignore_index, label smoothing, probability targets, (N, C, d1, d2) inputs),
gradcheck in float64, dtype kept, numerics under ``np.errstate(all='raise')``,
and the error contract (bad reduction, target shapes, labels, empty batches)."""

import copy
import itertools

import numpy as np
import pytest
import torch
from helpers import assert_close

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


# ------------------------------------------------------------------ data
def _log_softmax(z, axis=1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _probabilities(shape, r):
    return np.exp(_log_softmax(r.normal(size=shape)))


def _t(a, like=None):
    """``a`` as a tensor (in ``like``'s dtype when given: torch wants weights in the input's)."""
    if a is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t if like is None else t.to(like.dtype)


class Case:
    """One configuration: our criterion, the same loss in PyTorch, and the data."""

    def __init__(self, name, ours, theirs, data, reduction):
        self.name, self.ours, self.theirs, self.data, self.reduction = name, ours, theirs, data, reduction

    def __repr__(self):
        return self.name


def _classification_cases():
    """CrossEntropy / ClassNLL / ClassNLLUnstable over shapes, weights, ignore_index,
    label smoothing, probability targets and every reduction."""
    cases = []
    shapes = [(5, 4), (3, 4, 3), (2, 3, 2, 3)]
    for shape, weighted, kind, smoothing, reduction in itertools.product(
        shapes, (False, True), ("labels", "ignore", "probs"), (0.0, 0.2), REDUCTIONS
    ):
        seed = len(cases)
        n, c = shape[:2]

        def data(dtype, seed=seed, shape=shape, kind=kind):
            r = np.random.default_rng(seed)
            x = (3 * r.normal(size=shape)).astype(dtype)
            labels_shape = (shape[0], *shape[2:])
            if kind == "probs":
                t = np.moveaxis(_probabilities((int(np.prod(labels_shape)), shape[1]), r), -1, 0)
                t = np.moveaxis(t.reshape(shape[1], *labels_shape), 0, 1).astype(dtype)
            else:
                t = r.integers(0, shape[1], size=labels_shape)
                if kind == "ignore":
                    t.reshape(-1)[::3] = 1 if seed % 2 else -100  # ignore_index 1 or the default
            return x, t

        ignore = 1 if seed % 2 else -100
        weight = np.random.default_rng(seed + 7).uniform(0.2, 2.0, c) if weighted else None
        kw = {"weight": weight, "ignore_index": ignore if kind == "ignore" else -100, "reduction": reduction}
        tkw = {k: v for k, v in kw.items() if k != "weight"}
        tag = f"{'x'.join(map(str, shape))}-{'w' if weighted else 'nw'}-{kind}-ls{smoothing}-{reduction}"
        cases.append(
            Case(
                f"CrossEntropy-{tag}",
                lambda kw=kw, s=smoothing: CrossEntropyCriterion(**kw, label_smoothing=s),
                lambda x, t, kw=tkw, s=smoothing, w=weight: torch.nn.CrossEntropyLoss(
                    _t(w, x), **kw, label_smoothing=s
                )(x, _t(t, x) if t.dtype.kind == "f" else _t(t)),
                data,
                reduction,
            )
        )
        if smoothing or kind == "probs":
            continue  # PyTorch's NLLLoss has neither

        def log_data(dtype, data=data):
            x, t = data(np.float64)
            return _log_softmax(x).astype(dtype), t

        def prob_data(dtype, data=data):
            x, t = data(np.float64)
            return np.exp(_log_softmax(x)).astype(dtype), t

        cases.append(
            Case(
                f"ClassNLL-{tag}",
                lambda kw=kw: ClassNLLCriterion(**kw),
                lambda x, t, kw=tkw, w=weight: torch.nn.NLLLoss(_t(w, x), **kw)(x, _t(t)),
                log_data,
                reduction,
            )
        )
        cases.append(
            Case(
                f"ClassNLLUnstable-{tag}",
                lambda kw=kw: ClassNLLCriterionUnstable(**kw),
                lambda x, t, kw=tkw, w=weight: torch.nn.NLLLoss(_t(w, x), **kw)(
                    torch.log(x.clamp(1e-15, 1 - 1e-15)), _t(t)
                ),
                prob_data,
                reduction,
            )
        )
    return cases


def _same(shape, scale=1.0):
    def data(dtype, seed=0):
        r = np.random.default_rng(seed + sum(shape))
        return (scale * r.normal(size=shape)).astype(dtype), (scale * r.normal(size=shape)).astype(dtype)

    return data


def _mse_criterion_torch(reduction):
    def loss(x, t):
        sq = ((x - _t(t)) ** 2).reshape(x.shape[0], -1).sum(axis=1)
        return {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]

    return loss


def _regression_cases():
    cases = []
    for reduction, shape in itertools.product(REDUCTIONS, [(4, 3), (3, 2, 4), (6,)]):
        tag = f"{'x'.join(map(str, shape))}-{reduction}"
        kw = {"reduction": reduction}
        cases += [
            Case(
                f"MSECriterion-{tag}",
                lambda kw=kw: MSECriterion(**kw),
                _mse_criterion_torch(reduction),
                _same(shape),
                reduction,
            ),
            Case(
                f"MSELoss-{tag}",
                lambda kw=kw: MSELoss(**kw),
                lambda x, t, kw=kw: torch.nn.MSELoss(**kw)(x, _t(t)),
                _same(shape),
                reduction,
            ),
            Case(
                f"L1-{tag}",
                lambda kw=kw: L1Criterion(**kw),
                lambda x, t, kw=kw: torch.nn.L1Loss(**kw)(x, _t(t)),
                _same(shape),
                reduction,
            ),
        ]
        for beta in (1.0, 0.5, 0.0):
            cases.append(
                Case(
                    f"SmoothL1-beta{beta}-{tag}",
                    lambda kw=kw, beta=beta: SmoothL1Criterion(**kw, beta=beta),
                    lambda x, t, kw=kw, beta=beta: torch.nn.SmoothL1Loss(**kw, beta=beta)(x, _t(t)),
                    _same(shape, 1.5),
                    reduction,
                )
            )
        for delta in (1.0, 0.3, 2.5):
            cases.append(
                Case(
                    f"Huber-delta{delta}-{tag}",
                    lambda kw=kw, delta=delta: HuberCriterion(**kw, delta=delta),
                    lambda x, t, kw=kw, delta=delta: torch.nn.HuberLoss(**kw, delta=delta)(x, _t(t)),
                    _same(shape, 1.5),
                    reduction,
                )
            )
    return cases


def _binary_cases():
    cases = []
    for reduction, shape, weighted in itertools.product(REDUCTIONS, [(5, 3), (2, 3, 4)], (False, True)):
        tag = f"{'x'.join(map(str, shape))}-{'w' if weighted else 'nw'}-{reduction}"
        r = np.random.default_rng(len(cases))
        weight = r.uniform(0.2, 2.0, shape[-1:]) if weighted else None
        pos_weight = r.uniform(0.5, 3.0, shape[-1:]) if weighted else None

        seed = len(cases)

        def probs(dtype, shape=shape, seed=seed):
            r = np.random.default_rng(seed)
            x = 1 / (1 + np.exp(-2 * r.normal(size=shape)))
            return x.astype(dtype), r.uniform(0, 1, shape).astype(dtype)

        def logits(dtype, shape=shape, seed=seed):
            r = np.random.default_rng(seed)
            return (3 * r.normal(size=shape)).astype(dtype), r.uniform(0, 1, shape).astype(dtype)

        cases += [
            Case(
                f"BCE-{tag}",
                lambda w=weight, red=reduction: BCECriterion(w, reduction=red),
                lambda x, t, w=weight, red=reduction: torch.nn.BCELoss(_t(w, x), reduction=red)(x, _t(t)),
                probs,
                reduction,
            ),
            Case(
                f"BCEWithLogits-{tag}",
                lambda w=weight, pw=pos_weight, red=reduction: BCEWithLogitsCriterion(w, reduction=red, pos_weight=pw),
                lambda x, t, w=weight, pw=pos_weight, red=reduction: torch.nn.BCEWithLogitsLoss(
                    _t(w, x), reduction=red, pos_weight=_t(pw, x)
                )(x, _t(t)),
                logits,
                reduction,
            ),
        ]
    return cases


def _kl_cases():
    cases = []
    for reduction, log_target, shape in itertools.product(
        ("mean", "batchmean", "sum", "none"), (False, True), [(4, 5), (2, 3, 4)]
    ):

        def data(dtype, shape=shape, log_target=log_target):
            r = np.random.default_rng(sum(shape))
            x = _log_softmax(r.normal(size=shape))
            t = _probabilities(shape, r)
            t[0, 0] = 0.0  # a zero probability: 0 * log 0 = 0
            if log_target:
                t = _log_softmax(r.normal(size=shape))
            return x.astype(dtype), t.astype(dtype)

        cases.append(
            Case(
                f"KLDiv-{'x'.join(map(str, shape))}-log{log_target}-{reduction}",
                lambda red=reduction, lt=log_target: KLDivCriterion(reduction=red, log_target=lt),
                lambda x, t, red=reduction, lt=log_target: torch.nn.KLDivLoss(reduction=red, log_target=lt)(x, _t(t)),
                data,
                reduction,
            )
        )
    return cases


def _margin_cases():
    cases = []
    for reduction, (p, margin), weighted in itertools.product(
        REDUCTIONS, [(1, 1.0), (2, 1.0), (1, 0.3), (2, 2.0)], (False, True)
    ):
        seed = len(cases)
        weight = np.random.default_rng(seed).uniform(0.2, 2.0, 5) if weighted else None

        def data(dtype, seed=seed):
            r = np.random.default_rng(seed)
            return r.normal(size=(6, 5)).astype(dtype), r.integers(0, 5, 6)

        cases.append(
            Case(
                f"MultiMargin-p{p}-m{margin}-{'w' if weighted else 'nw'}-{reduction}",
                lambda p=p, m=margin, w=weight, red=reduction: MultiMarginCriterion(p, m, w, reduction=red),
                lambda x, t, p=p, m=margin, w=weight, red=reduction: torch.nn.MultiMarginLoss(
                    p, m, _t(w, x), reduction=red
                )(x, _t(t)),
                data,
                reduction,
            )
        )
    for reduction, margin in itertools.product(REDUCTIONS, (0.0, 0.3, -0.2)):
        seed = len(cases)

        def pair(dtype, seed=seed):
            r = np.random.default_rng(seed)
            x1, x2 = r.normal(size=(8, 4)), r.normal(size=(8, 4))
            x2[:2] = x1[:2] + 0.1 * x2[:2]  # similar pairs: cos near 1
            return (x1.astype(dtype), x2.astype(dtype)), np.where(r.uniform(size=8) < 0.5, 1, -1)

        def ranking(dtype, seed=seed):
            r = np.random.default_rng(seed)
            x1, x2 = r.normal(size=7).astype(dtype), r.normal(size=7).astype(dtype)
            return (x1, x2), np.where(r.uniform(size=7) < 0.5, 1, -1)

        cases += [
            Case(
                f"CosineEmbedding-m{margin}-{reduction}",
                lambda m=margin, red=reduction: CosineEmbeddingCriterion(m, reduction=red),
                lambda x, t, m=margin, red=reduction: torch.nn.CosineEmbeddingLoss(m, reduction=red)(*x, _t(t)),
                pair,
                reduction,
            ),
            Case(
                f"MarginRanking-m{margin}-{reduction}",
                lambda m=margin, red=reduction: MarginRankingCriterion(m, reduction=red),
                lambda x, t, m=margin, red=reduction: torch.nn.MarginRankingLoss(m, reduction=red)(*x, _t(t)),
                ranking,
                reduction,
            ),
        ]
    return cases


CASES = _classification_cases() + _regression_cases() + _binary_cases() + _kl_cases() + _margin_cases()


def _requires_grad(x):
    if isinstance(x, tuple):
        return tuple(_requires_grad(a) for a in x)
    return _t(x).requires_grad_(True)


def _upstream(loss, reduction, seed=5):
    """A random gradOutput for 'none', None (the default 1) otherwise."""
    if reduction != "none":
        return None
    return np.random.default_rng(seed).normal(size=np.shape(loss))


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.filterwarnings("ignore:reduction. .mean. divides:UserWarning")
def test_parity_with_torch_float32(case):
    x, t = case.data(np.float32)
    crit = case.ours()
    loss = crit.forward(x, t)
    g = _upstream(loss, case.reduction)
    grad = crit.backward(x, t, None if g is None else g.astype(np.float32))
    assert crit.output is loss and crit.gradInput is grad
    xt = _requires_grad(x)
    lt = case.theirs(xt, t)
    lt.backward(None if g is None else torch.from_numpy(g.astype(np.float32)))
    assert np.shape(loss) == tuple(lt.shape), case.name
    assert_close(np.asarray(loss), lt, np.float32, f"{case.name} loss")
    if isinstance(x, tuple):
        assert isinstance(grad, tuple) and len(grad) == 2
        for ours, theirs in zip(grad, xt, strict=True):
            assert ours.dtype == np.float32
            assert_close(ours, theirs.grad, np.float32, f"{case.name} gradInput")
    else:
        assert grad.dtype == np.float32 and grad.shape == x.shape
        assert_close(grad, xt.grad, np.float32, f"{case.name} gradInput")
    assert np.asarray(loss).dtype == np.float32


# gradcheck every configuration except the (many) classification ones, of which a third suffice
GRADCHECK = [c for i, c in enumerate(CASES) if not c.name.startswith(("CrossEntropy", "ClassNLL")) or i % 3 == 0]


@pytest.mark.parametrize("case", GRADCHECK, ids=repr)
def test_gradcheck_float64(case):
    """nnumpy.gradcheck takes criteria as they are: pairs, and loss arrays
    (reduction='none', checked on sum(loss * G) with backward(x, t, G))."""
    x, t = case.data(np.float64)
    assert nnumpy.gradcheck(case.ours(), x, t, atol=1e-6, rtol=1e-4).ok


def test_gradcheck_catches_a_wrong_gradient_of_a_loss_array():
    class Wrong(L1Criterion):
        def updateGradInput(self, input, target, gradOutput=None):
            return super().updateGradInput(input, target, None if gradOutput is None else np.ones_like(gradOutput))

    x, t = _same((3, 4))(np.float64)
    assert nnumpy.gradcheck(L1Criterion(reduction="none"), x, t).ok
    assert not nnumpy.gradcheck(Wrong(reduction="none"), x, t, raise_exception=False).ok


def test_every_class_is_covered():
    names = {c.name.split("-")[0] for c in CASES}
    assert names == {
        "CrossEntropy",
        "ClassNLL",
        "ClassNLLUnstable",
        "MSECriterion",
        "MSELoss",
        "L1",
        "SmoothL1",
        "Huber",
        "BCE",
        "BCEWithLogits",
        "KLDiv",
        "MultiMargin",
        "CosineEmbedding",
        "MarginRanking",
    }


# ------------------------------------------------------------------ meaning
def test_mean_is_the_average_of_none_and_sum_its_total():
    for case in CASES:
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
    for case in CASES[::7]:
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


ERROR_CASES = [
    (
        CrossEntropyCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0, 1]),
        ValueError,
        r"^CrossEntropyCriterion\(\): expected target of shape \(3,\) or \(3, 4\), got \(2,\)$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros((2, 4, 5), np.float32),
        np.zeros((2, 4), int),
        ValueError,
        r"expected target of shape \(2, 5\) or \(2, 4, 5\), got \(2, 4\)$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros(4, np.float32),
        np.array(1),
        ValueError,
        r"expected input of shape \(N, C\) or \(N, C, d1, \.\.\.\), got \(4,\)$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0, 4, 1]),
        ValueError,
        r"label targets must be in \[0, 3\], got values in \[0, 4\]$",
    ),
    (
        CrossEntropyCriterion(ignore_index=7),
        np.zeros((3, 4), np.float32),
        np.array([0, 7, -1]),
        ValueError,
        r"^CrossEntropyCriterion\(ignore_index=7\): label targets must be in \[0, 3\], got values in \[-1, 0\]$",
    ),
    (
        CrossEntropyCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0.0, 1.0, 2.0]),
        TypeError,
        r"label targets must be integers, got dtype float64$",
    ),
    (
        CrossEntropyCriterion(np.ones(3)),
        np.zeros((3, 4), np.float32),
        np.array([0, 1, 2]),
        ValueError,
        r"weight has shape \(3,\), expected \(4,\) for C = 4$",
    ),
    (CrossEntropyCriterion(), np.zeros((3, 4), int), np.array([0, 1, 2]), TypeError, r"floating dtype.*int64"),
    (
        MultiMarginCriterion(),
        np.zeros((3, 4), np.float32),
        np.array([0, 1, 5]),
        ValueError,
        r"^MultiMarginCriterion\(\): label targets must be in \[0, 3\], got values in \[0, 5\]$",
    ),
    (
        MultiMarginCriterion(),
        np.zeros((3, 4, 2), np.float32),
        np.array([0, 1, 2]),
        ValueError,
        r"expected input of shape \(N, C\), got \(3, 4, 2\)$",
    ),
    (
        MSECriterion(),
        np.zeros((3, 4), np.float32),
        np.zeros((3, 5)),
        ValueError,
        r"^MSECriterion\(\): expected target of shape \(3, 4\) \(the input's\), got \(3, 5\)$",
    ),
    (
        HuberCriterion(),
        np.zeros((3, 4), np.float32),
        [0.0] * 4,
        ValueError,
        r"^HuberCriterion\(\): expected target .*got list$",
    ),
    (
        BCECriterion(),
        np.full((2, 2), 1.5, np.float32),
        np.zeros((2, 2)),
        ValueError,
        r"^BCECriterion\(\): expected probabilities in \[0, 1\].*BCEWithLogitsCriterion$",
    ),
    (
        BCECriterion(np.ones(3)),
        np.full((2, 2), 0.5, np.float32),
        np.zeros((2, 2)),
        ValueError,
        r"weight of shape \(3,\) does not broadcast to the input's \(2, 2\)$",
    ),
    (
        BCEWithLogitsCriterion(pos_weight=np.ones(3)),
        np.zeros((2, 2), np.float32),
        np.zeros((2, 2)),
        ValueError,
        r"pos_weight of shape \(3,\) does not broadcast",
    ),
    (KLDivCriterion(), np.zeros((2, 2), np.float32), np.full((2, 2), -0.5), ValueError, r"log_target=True$"),
    (
        CosineEmbeddingCriterion(),
        np.zeros((2, 3), np.float32),
        np.ones(2),
        TypeError,
        r"^CosineEmbeddingCriterion\(\): expected input \(x1, x2\), a pair of arrays, got ndarray$",
    ),
    (CosineEmbeddingCriterion(), (np.zeros((2, 3), np.float32),) * 3, np.ones(2), TypeError, r"a tuple of length 3$"),
    (
        CosineEmbeddingCriterion(),
        (np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)),
        np.ones(2),
        ValueError,
        r"x1 and x2 must have the same shape, got \(2, 3\) and \(2, 4\)$",
    ),
    (
        CosineEmbeddingCriterion(),
        (np.ones((2, 3), np.float32),) * 2,
        np.array([1, 0]),
        ValueError,
        r"^CosineEmbeddingCriterion\(\): target values must be 1 or -1$",
    ),
    (
        MarginRankingCriterion(),
        (np.ones(3, np.float32),) * 2,
        np.ones(2),
        ValueError,
        r"^MarginRankingCriterion\(\): expected target of shape \(3,\), got \(2,\)$",
    ),
]


@pytest.mark.parametrize("which", ["forward", "backward"])
@pytest.mark.parametrize("crit,x,t,exc,pattern", ERROR_CASES, ids=[f"{c[0]!r}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_errors_name_the_criterion(crit, x, t, exc, pattern, which):
    crit = copy.deepcopy(crit)
    with pytest.raises(exc, match=pattern):
        getattr(crit, which)(x, t)
    assert crit.output is None and crit.gradInput is None  # raised before anything was stored


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
