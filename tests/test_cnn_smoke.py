"""A small CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Conv1d-free head)
overfits one small batch: the layers compose and learn end to end."""

import numpy as np

import nnumpy as nn


def test_small_cnn_overfits_a_batch():
    nn.manual_seed(0)
    r = np.random.default_rng(0)
    x = r.normal(size=(16, 1, 12, 10)).astype(np.float32)
    y = r.integers(0, 4, size=16)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=0, groups=2),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(16 * 3 * 2, 4),
        nn.LogSoftMax(),
    )
    model.skip_input_grad = True
    criterion = nn.ClassNLLCriterion()
    opt = nn.Adam(model, lr=1e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        out = model.forward(x)
        losses.append(float(criterion.forward(out, y)))
        model.backward(x, criterion.backward(out, y))
        opt.step()
    assert losses[-1] < 0.02 * losses[0] and losses[-1] < 0.03, losses[::10]
    model.evaluate()
    assert (model.forward(x).argmax(axis=1) == y).mean() >= 0.9
    assert model.forward(x).dtype == np.float32


def test_global_pool_head_and_conv1d():
    nn.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Linear(4, 2))
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 5)).astype(np.float32)
    out = model.forward(x)
    assert out.shape == (2, 2)
    assert model.backward(x, np.ones_like(out)).shape == x.shape
    seq = nn.Sequential(nn.Conv1d(2, 4, 3), nn.MaxPool1d(2), nn.Conv1d(4, 4, 3, groups=4), nn.AvgPool1d(2))
    z = np.zeros((3, 2, 16), np.float32)
    assert seq.forward(z).shape == (3, 4, 4)
