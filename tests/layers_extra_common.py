"""Shared checks of the tests/test_layers_extra*.py files: parity of a module
with a PyTorch module (output, input gradient, every parameter gradient),
gradient accumulation and state_dict round trips."""

import numpy as np
import torch
from helpers import assert_close


def t(a, grad=False):
    out = torch.from_numpy(np.array(a))
    return out.requires_grad_(grad)


def ours_grads(m):
    return {p: getattr(m, g) for p, g in m.own_parameter_pairs()}


def copy_parameters(ours, theirs, rng):
    """Random values for every parameter of ``ours``, copied into ``theirs`` (same names)."""
    for p, _ in ours.own_parameter_pairs():
        value = getattr(ours, p)
        value[...] = rng.normal(size=value.shape)
        getattr(theirs, p).data = t(value.copy())


def check_parity(ours, theirs, x, dtype=np.float32, seed=0, g=None):
    """Forward, input gradient and every parameter gradient of ``ours`` against torch
    module (or function) ``theirs``, in ``dtype``; returns ``(output, gradInput)``."""
    x = np.asarray(x).astype(dtype)
    y = ours.forward(x)
    assert y.dtype == dtype, f"{ours!r}: output dtype {y.dtype}"
    if g is None:
        g = np.random.default_rng(seed).normal(size=y.shape)
    g = np.asarray(g).astype(dtype)
    ours.zeroGradParameters()
    gi = ours.backward(x, g)
    assert gi.dtype == dtype, f"{ours!r}: gradInput dtype {gi.dtype}"
    tx = t(x, grad=True)
    ty = theirs(tx)
    ty.backward(t(g))
    assert_close(y, ty, dtype, f"{ours!r} output")
    assert_close(gi, tx.grad, dtype, f"{ours!r} gradInput")
    if isinstance(theirs, torch.nn.Module):
        tgrads = dict(theirs.named_parameters())
        for name, grad in ours_grads(ours).items():
            assert_close(grad, tgrads[name].grad, dtype, f"{ours!r} grad {name}")
    return y, gi


def check_accumulates(m, x, seed=1):
    """A second backward doubles every parameter gradient."""
    m.zeroGradParameters()
    y = m.forward(x)
    g = np.random.default_rng(seed).normal(size=y.shape).astype(x.dtype)
    m.backward(x, g)
    once = {k: v.copy() for k, v in ours_grads(m).items()}
    m.backward(x, g)
    for k, v in ours_grads(m).items():
        assert_close(v, 2 * once[k], v.dtype, f"{m!r} {k} accumulates")


def state_round_trip(make, x):
    """A fresh module loaded with another's (randomised) state_dict computes the same."""
    a, b = make(), make()
    rng = np.random.default_rng(3)
    for value in a.state_dict().values():
        value[...] = np.abs(rng.normal(size=value.shape)) + 0.5
    b.load_state_dict(a.state_dict())
    a.evaluate(), b.evaluate()
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert list(a.state_dict()) == list(b.state_dict())
