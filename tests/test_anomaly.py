"""Non-finite values: BatchNorm's batch statistics and nnumpy.detect_anomaly()."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnumpy as nn
import nnumpy.distributed as dist

SCRIPTS = Path(__file__).parent / "mpi_scripts"


def _batchnorms():
    return [
        ("BatchNorm1d", lambda: nn.BatchNorm1d(3), (6, 3)),
        ("BatchNorm1d-3d", lambda: nn.BatchNorm1d(3), (6, 3, 4)),
        ("BatchNorm2d", lambda: nn.BatchNorm2d(3), (6, 3, 2, 2)),
        ("BatchNorm", lambda: nn.BatchNorm(3), (6, 3)),
        ("BatchNormalization", lambda: nn.BatchNormalization(n_feats=3), (6, 3)),
        ("BatchNormalization-lazy", lambda: nn.BatchNormalization(alpha=0.5), (6, 3, 2, 2)),
        ("BatchNorm1d-no-affine", lambda: nn.BatchNorm1d(3, affine=False), (6, 3)),
        ("InstanceNorm1d-tracked", lambda: nn.InstanceNorm1d(3, track_running_stats=True), (6, 3, 5)),
        ("InstanceNorm2d-tracked", lambda: nn.InstanceNorm2d(3, track_running_stats=True), (6, 3, 2, 3)),
    ]


def _state(module):
    return {k: v.copy() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------ BatchNorm
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name, make, shape", _batchnorms(), ids=[b[0] for b in _batchnorms()])
def test_batchnorm_non_finite_batch_raises_before_running_statistics_change(name, make, shape, bad):
    bn = make()
    rng = np.random.default_rng(0)
    bn.forward(rng.normal(size=shape).astype(np.float32))  # sized and updated once
    before = _state(bn)
    x = rng.normal(size=shape).astype(np.float32)
    x[(1, 1) + (0,) * (len(shape) - 2)] = bad
    with pytest.raises(nn.NonFiniteError, match=rf"^{type(bn).__name__}\(.*batch statistics are not finite "
                                                 r"\(channels \[1\]\).*left unchanged") as info:
        bn.forward(x)
    assert info.value.module is bn and info.value.phase == "statistics"
    after = _state(bn)
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    bn.evaluate()
    y = bn.forward(x)  # evaluate mode: the running statistics, which are still finite
    assert np.isfinite(y[0]).all()


def test_batchnorm_overflowing_batch_raises():
    bn = nn.BatchNorm1d(2)
    x = np.array([[3e38, 0], [-3e38, 1]], np.float32)  # finite values whose variance overflows float32
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(nn.NonFiniteError, match="channels \\[0\\]"):
        bn.forward(x)
    assert np.array_equal(bn.running_var, np.ones(2, np.float32))


def test_batchnorm_finite_batches_still_train():
    bn = nn.BatchNorm1d(3)
    bn.forward(np.arange(12, dtype=np.float32).reshape(4, 3))
    assert np.isfinite(bn.running_mean).all() and bn.running_mean[0] > 0


def _mpirun(args, n=2, timeout=60):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["MPIEXEC_TIMEOUT"] = str(timeout)
    cmd = [dist.find_mpiexec(), "-n", str(n), sys.executable, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, env=env)


@pytest.mark.mpi
@pytest.mark.skipif(
    dist.find_mpiexec() is None or not __import__("importlib").util.find_spec("mpi4py"),
    reason="mpi4py or mpiexec not found: pip install 'nnumpy[mpi]' to run MPI tests",
)
def test_synchronised_batchnorm_every_rank_raises_together(tmp_path):
    """Only rank 1's local batch holds the NaN; the check uses the synchronised statistics."""
    proc = _mpirun([SCRIPTS / "bn_nonfinite.py", tmp_path])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["raised"] and r["unchanged"] for r in results), results
    assert "BatchNorm1d(3" in results[0]["message"]
    assert results[0]["after"] == results[1]["after"]  # the next batch synchronised again


# ------------------------------------------------------------------ detect_anomaly
def _nan_input(shape=(2, 4)):
    x = np.ones(shape, np.float32)
    x[0, 0] = np.nan
    return x


def test_detect_anomaly_is_exported_and_nests():
    assert not nn.is_anomaly_enabled()
    with nn.detect_anomaly():
        with nn.detect_anomaly():
            assert nn.is_anomaly_enabled()
        assert nn.is_anomaly_enabled()
    assert not nn.is_anomaly_enabled()
    with nn.detect_anomaly(check_nan=False):
        assert not nn.is_anomaly_enabled()


def test_inactive_detect_anomaly_checks_nothing():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    assert np.isnan(net.forward(_nan_input())).any()  # no error outside the context


def test_forward_names_the_first_module_by_its_path():
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.ReLU())
    x = np.ones((2, 4), np.float32)
    net[0].W[...] = np.inf  # the first Linear produces inf / NaN
    with nn.detect_anomaly(), pytest.raises(nn.NonFiniteError, match=r"^Sequential\[0\] Linear: its output in forward"):
        net.forward(x)


def test_the_issue_example_sequential_3_logsoftmax_backward():
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3), nn.LogSoftMax())
    x = np.ones((2, 4), np.float32)
    with nn.detect_anomaly():
        net.forward(x)
        g = np.zeros((2, 3), np.float32)
        g[1, 2] = np.inf
        with pytest.raises(nn.NonFiniteError, match=r"^Sequential\[3\] LogSoftMax: its gradInput in backward") as info:
            net.backward(x, g)
    assert info.value.module is net[3] and info.value.phase == "backward" and info.value.path == "Sequential[3]"


def test_nested_containers_give_the_whole_path():
    inner = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    net = nn.Sequential(nn.Identity(), nn.Residual(inner), nn.Tanh())
    inner[0].W[0, 0] = np.nan
    with nn.detect_anomaly(), pytest.raises(nn.NonFiniteError, match=r"^Sequential\[1\]\.body\[0\] Linear"):
        net.forward(np.ones((2, 4), np.float32))


def test_graph_nodes_are_named():
    x = nn.Input()
    h = nn.Linear(4, 4)(x, name="proj")
    net = nn.Graph(x, nn.CAddTable()(nn.ReLU()(h), x))
    with nn.detect_anomaly(), pytest.raises(nn.NonFiniteError, match=r"^Graph\.proj Linear"):
        net.forward(_nan_input())


def test_tuples_are_checked_part_by_part():
    net = nn.Sequential(nn.ConcatTable(nn.Identity(), nn.Linear(4, 2)), nn.SelectTable(1))
    x = np.ones((2, 4), np.float32)
    net[0][1].b[1] = np.nan
    with nn.detect_anomaly(), pytest.raises(nn.NonFiniteError, match=r"^Sequential\[0\]\[1\] Linear"):
        net.forward(x)
    net[0][1].b[1] = 0
    with nn.detect_anomaly():
        y = net.forward(x)
        g = np.full_like(y, np.nan)
        with pytest.raises(nn.NonFiniteError, match=r"^Sequential\[1\] SelectTable: its gradInput\[1\] in backward"):
            net.backward(x, g)


def test_a_module_inside_a_transformer_layer_is_named_by_its_path():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=8, dropout=0.0, batch_first=True)
    net = nn.Sequential(layer)
    layer.linear2.b[0] = np.inf
    with nn.detect_anomaly(), pytest.raises(nn.NonFiniteError, match=r"^Sequential\[0\]\.linear2 Linear"):
        net.forward(np.ones((2, 3, 8), np.float32))


def test_a_lone_leaf_is_named_by_its_repr():
    with nn.detect_anomaly(), pytest.raises(nn.NonFiniteError, match=r"^Linear\(4 -> 3\): its output"):
        nn.Linear(4, 3).forward(_nan_input())


def test_a_user_module_with_its_own_forward_is_checked():
    class Broken(nn.Module):
        def forward(self, input):
            self.output = input / 0.0
            return self.output

        def backward(self, input, gradOutput):
            return gradOutput

    net = nn.Sequential(nn.Identity(), Broken())
    with np.errstate(divide="ignore"), nn.detect_anomaly():
        with pytest.raises(nn.NonFiniteError, match=r"Sequential\[1\] Broken"):
            net.forward(np.ones((1, 2), np.float32))


def test_integer_outputs_are_not_checked():
    class Indices(nn.Module):
        def updateOutput(self, input):
            self.output = input.astype(np.int64)
            return self.output

    net = nn.Sequential(Indices(), nn.Embedding(5, 2))
    with nn.detect_anomaly():
        assert net.forward(np.array([[1, 2]])).shape == (1, 2, 2)


def test_finite_training_is_unchanged_under_detect_anomaly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    nets = [nn.Sequential(nn.Linear(4, 3, rng=1), nn.BatchNorm1d(3), nn.Tanh()) for _ in range(2)]
    g = rng.normal(size=(5, 3)).astype(np.float32)
    outs = []
    for i, net in enumerate(nets):
        if i:
            with nn.detect_anomaly():
                outs.append((net.forward(x), net.backward(x, g)))
        else:
            outs.append((net.forward(x), net.backward(x, g)))
    assert all(np.array_equal(a, b) for a, b in zip(outs[0], outs[1], strict=True))
