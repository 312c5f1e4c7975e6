"""The seeds' toy problem, trained exactly as the seeds' users write the loop:
two Gaussian blobs, one-hot targets, LogSoftMax + ClassNLLCriterion, shuffled
batches of 128, the functional optimizers on ``getParameters()``."""

import numpy as np
import pytest

import nnumpy
from nnumpy import ClassNLLCriterion, Linear, LogSoftMax, ReLU, Sequential, adam_optimizer, sgd_momentum


def toy_data():
    """500 points from N((2, 2), I) (class 0), 500 from N((-2, -2), I) (class 1), one-hot targets."""
    N = 500
    X1 = np.random.randn(N, 2) + np.array([2, 2])
    X2 = np.random.randn(N, 2) + np.array([-2, -2])
    Y = np.concatenate([np.ones(N), np.zeros(N)])[:, None]
    Y = np.hstack([Y, 1 - Y])
    X = np.vstack([X1, X2])
    return X, Y


def get_batches(dataset, batch_size):
    X, Y = dataset
    n_samples = X.shape[0]
    indices = np.arange(n_samples)
    np.random.shuffle(indices)
    for start in range(0, n_samples, batch_size):
        end = min(start + batch_size, n_samples)
        batch_idx = indices[start:end]
        yield X[batch_idx], Y[batch_idx]


def linear_net():
    net = Sequential()
    net.add(Linear(2, 2))
    net.add(LogSoftMax())
    return net


def hidden_relu_net():
    net = Sequential()
    net.add(Linear(2, 8))
    net.add(ReLU())
    net.add(Linear(8, 2))
    net.add(LogSoftMax())
    return net


SGD_CONFIG = {"learning_rate": 1e-1, "momentum": 0.9}
ADAM_CONFIG = {"learning_rate": 1e-2, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}


def seed_training(build, optimizer, optimizer_config, seed=0, n_epoch=20):
    """The seeds' notebook cells, as their users write them; returns the net and the loss history."""
    np.random.seed(seed)
    nnumpy.manual_seed(seed)
    X, Y = toy_data()
    net = build()
    criterion = ClassNLLCriterion()
    optimizer_state = {}
    batch_size = 128
    loss_history = []

    for _epoch in range(n_epoch):
        for x_batch, y_batch in get_batches((X, Y), batch_size):
            net.zeroGradParameters()

            # Forward
            predictions = net.forward(x_batch)
            loss = criterion.forward(predictions, y_batch)

            # Backward
            dp = criterion.backward(predictions, y_batch)
            net.backward(x_batch, dp)

            # Update weights
            optimizer(net.getParameters(), net.getGradParameters(), optimizer_config, optimizer_state)

            loss_history.append(loss)

    return net, (X, Y), loss_history


@pytest.mark.parametrize(
    "build,optimizer,optimizer_config",
    [
        (linear_net, sgd_momentum, SGD_CONFIG),
        (linear_net, adam_optimizer, ADAM_CONFIG),
        (hidden_relu_net, sgd_momentum, SGD_CONFIG),
        (hidden_relu_net, adam_optimizer, ADAM_CONFIG),
    ],
    ids=["linear-sgd_momentum", "linear-adam", "relu-sgd_momentum", "relu-adam"],
)
def test_seed_toy_problem_trains(build, optimizer, optimizer_config):
    net, (X, Y), loss_history = seed_training(build, optimizer, optimizer_config)
    net.evaluate()
    accuracy = np.mean(net.forward(X).argmax(axis=1) == Y.argmax(axis=1))
    assert accuracy > 0.99, accuracy
    assert np.all(np.isfinite(loss_history))
    assert np.mean(loss_history[-8:]) < 0.1 < loss_history[0]
    assert len(loss_history) == 20 * 8  # 1000 points in batches of 128: 8 per epoch


def test_seed_toy_problem_is_reproducible():
    a, _, loss_a = seed_training(hidden_relu_net, adam_optimizer, ADAM_CONFIG, seed=1, n_epoch=2)
    b, _, loss_b = seed_training(hidden_relu_net, adam_optimizer, ADAM_CONFIG, seed=1, n_epoch=2)
    assert loss_a == loss_b
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
