"""nnumpy.distributed: single-process behaviour, and 2-rank runs under mpiexec.

The MPI tests launch ``mpiexec -n 2`` (the one next to this Python, from the
``mpich`` wheel, else on PATH) on the scripts in ``tests/mpi_scripts`` and are
skipped, with the reason, when mpi4py or mpiexec is missing.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close

import nnumpy as nn
import nnumpy.distributed as dist

SCRIPTS = Path(__file__).parent / "mpi_scripts"
sys.path.insert(0, str(SCRIPTS))
import train_steps  # noqa: E402

MPIEXEC = dist.find_mpiexec()
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
_missing = [what for what, ok in (("mpi4py", HAVE_MPI4PY), ("mpiexec", MPIEXEC)) if not ok]
requires_mpi = pytest.mark.skipif(
    bool(_missing), reason=f"{' and '.join(_missing)} not found: pip install 'nnumpy[mpi]' to run MPI tests"
)


def mpirun(args, n=2, timeout=60):
    """Run ``python ARGS`` on ``n`` ranks (1 BLAS thread each); returns the CompletedProcess.

    ``MPIEXEC_TIMEOUT`` makes MPICH's mpiexec kill a hung job (and its ranks) after ``timeout``
    seconds; the subprocess timeout is the backstop for other launchers."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["MPIEXEC_TIMEOUT"] = str(timeout)
    cmd = [MPIEXEC, "-n", str(n), sys.executable, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, env=env)


# ------------------------------------------------------------------ one process
def test_single_process_defaults():
    assert (dist.rank(), dist.size(), dist.is_main(), dist.is_distributed()) == (0, 1, True, False)
    dist.barrier()
    assert dist.allreduce_sum([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert dist.weighted_mean(0.5, 10) == 0.5
    assert dist.gather_object({"a": 1}) == [{"a": 1}]
    assert dist.broadcast_object(3) == 3


def test_sampler_splits_each_global_batch_into_disjoint_rank_slices():
    n, batch, k = 75, 16, 4
    samplers = [dist.DistributedSampler(n, batch, seed=3, num_replicas=k, rank=r) for r in range(k)]
    for s in samplers:
        s.set_epoch(2)
    reference = dist.DistributedSampler(n, batch, seed=3, num_replicas=1, rank=0)
    reference.set_epoch(2)
    per_rank = [list(s) for s in samplers]
    for step, whole in enumerate(reference):
        parts = [p[step] for p in per_rank]
        assert np.array_equal(np.concatenate(parts), whole)  # contiguous slices, in order
    sizes = [[len(p) for p in ranks] for ranks in zip(*per_rank, strict=True)]
    assert sizes[:4] == [[4, 4, 4, 4]] * 4 and sizes[4] == [2, 3, 3, 3]  # tail of 11 split evenly
    assert sorted(np.concatenate(list(reference)).tolist()) == list(range(n))
    other = dist.DistributedSampler(n, batch, seed=3, num_replicas=1, rank=0)
    other.set_epoch(3)
    assert not np.array_equal(other.permutation(), reference.permutation())


def test_sampler_tail_smaller_than_ranks_and_drop_last():
    assert [len(b) for b in dist.DistributedSampler(33, 16, num_replicas=2, rank=0).global_batches()] == [16, 16]
    assert len(dist.DistributedSampler(40, 16, drop_last=True, num_replicas=2, rank=1)) == 2


def test_global_batch_must_divide_by_ranks():
    with pytest.raises(ValueError, match="global batch size 10 is not divisible by the number of ranks 4"):
        dist.DistributedSampler(100, 10, num_replicas=4, rank=0)
    with pytest.raises(ValueError, match="X has 5 samples but y has 4"):
        dist.ShardedLoader(np.zeros((5, 2)), np.zeros(4))


def test_sharded_loader_one_process_yields_whole_batches():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    loader = dist.ShardedLoader(X, y, batch_size=4, shuffle=False)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2] and loader.global_count == 2
    assert np.array_equal(batches[0][1], [0, 1, 2, 3])


def test_sharded_loader_splits_several_inputs_alike():
    """A tuple of inputs: each rank's batch is its slice of every array, the same rows in each."""
    A, B, y = np.arange(20.0).reshape(10, 2), np.arange(10.0) * 10, np.arange(10)
    shards = [list(dist.ShardedLoader((A, B), y, batch_size=4, shuffle=True, seed=3, num_replicas=2, rank=r))
              for r in (0, 1)]  # fmt: skip
    rows = []
    for batches in shards:
        for (a, b), yb in batches:
            np.testing.assert_array_equal(a[:, 0] / 2, yb)
            np.testing.assert_array_equal(b / 10, yb)
            rows += yb.tolist()
    assert sorted(rows) == list(range(10))
    with pytest.raises(ValueError, match=r"ShardedLoader: the inputs have different numbers of examples: \[10, 9\]"):
        dist.ShardedLoader((A, B[:9]), y)


def test_distributed_optimizer_passes_through():
    net = nn.Sequential(nn.Linear(3, 2, rng=0))
    opt = dist.DistributedOptimizer(nn.SGD(net, lr=0.1, momentum=0.9))
    opt.lr = 0.05
    assert opt.optimizer.lr == 0.05 and opt.momentum == 0.9
    net.forward(np.ones((4, 3), np.float32))
    net.backward(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32))
    before = net[0].W.copy()
    opt.step()
    assert np.allclose(net[0].W, before - 0.05 * 4)
    opt.zero_grad()
    assert not net[0].gradW.any()
    opt.load_state_dict(opt.state_dict())
    assert "momentum_buffer" in opt.state_dict()["state"][0]
    with pytest.raises(TypeError, match="optimizer built on a model"):
        dist.DistributedOptimizer(nn.SGD(lr=0.1))


def test_one_process_training_equals_the_plain_loop():
    model, _ = train_steps.distributed("bn", np.float64, 6)
    ref = train_steps.reference("bn", np.float64, 6)
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values(), strict=True):
        assert np.array_equal(a, b), name
    assert dist.sync_batchnorm(model) == 0  # nothing to synchronise in one process


def test_fit_distributed_in_one_process_equals_plain_fit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)

    def run(data, distributed):
        m = nn.Sequential(
            nn.Linear(6, 8, rng=0), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2, rng=2), nn.Linear(8, 2, rng=1)
        )
        flip = lambda xb, g: np.where(g.random((len(xb), 1)) < 0.5, -xb, xb)  # noqa: E731
        h = (dist.fit if distributed else nn.fit)(
            m,
            None,
            "adam",
            data,
            epochs=2,
            batch_size=32,
            augment=flip,
            clip_grad_norm=1.0,
            verbose=False,
            val_data=(X[:40], y[:40]),
        )
        return m, h

    m0, h0 = run((X, y), False)
    for data in ((X, y), nn.DataLoader(X, y, batch_size=32, shuffle=True, rng=0)):
        m1, h1 = run(data, True)
        assert h1.step_loss == h0.step_loss and h1.val_loss == h0.val_loss
        assert all(np.array_equal(a, b) for a, b in zip(m1.parameters(), m0.parameters(), strict=True))
    with pytest.raises(TypeError, match=r"nnumpy.distributed.fit: data must be \(X, y\) arrays"):
        dist.fit(m1, None, "adam", iter([(X, y)]), verbose=False)


def test_fit_distributed_true_says_where_it_went():
    net = nn.Sequential(nn.Linear(2, 2))
    X, y = np.zeros((4, 2), np.float32), np.zeros(4, np.int64)
    for options in (True, {"sync_batchnorm": False}):
        with pytest.raises(TypeError, match=r"replaced by nnumpy\.distributed\.fit"):
            nn.fit(net, None, "adam", (X, y), distributed=options, verbose=False)


def test_importing_nnumpy_distributed_installs_nothing():
    code = (
        "import signal, sys; hook, handler = sys.excepthook, signal.getsignal(signal.SIGINT)\n"
        "import nnumpy.distributed as dist\n"
        "assert sys.excepthook is hook and signal.getsignal(signal.SIGINT) is handler\n"
        "dist.init()  # one plain process: nothing to abort, so no hook either\n"
        "assert sys.excepthook is hook\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_rng_states_round_trip():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5, rng=1))
    states = dist.rng_states(net)
    a = net[1].rng.random(3)
    dist.set_rng_states(states, net)
    assert np.array_equal(net[1].rng.random(3), a)
    with pytest.raises(ValueError, match="1 saved states for 2 generators"):
        dist.set_rng_states(states[:1], net)


def test_find_mpiexec_prefers_the_one_next_to_python():
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        assert dist.find_mpiexec() == str(beside)


# ------------------------------------------------------------------ two ranks
@pytest.mark.parametrize(
    "model, dtype",
    [("mlp", "float64"), ("mlp", "float32"), ("bn", "float64"), ("cnn", "float64"), ("cnn", "float32")],
)
@pytest.mark.mpi
@requires_mpi
def test_two_ranks_match_one_process(tmp_path, model, dtype):
    steps = 7  # crosses the epoch boundary: the uneven tail batch (5/6 samples) is step 5
    proc = mpirun(
        [SCRIPTS / "train_steps.py", tmp_path / "out.npz", "--model", model, "--dtype", dtype, "--steps", steps]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r0, r1 = (np.load(tmp_path / f"out.rank{r}.npz") for r in (0, 1))
    ref = train_steps.reference(model, np.dtype(dtype), steps).state_dict()
    assert len(r0["losses"]) == steps
    for i, (name, expected) in enumerate(ref.items()):
        ours = r0[f"p{i}"]
        assert ours.dtype == np.dtype(dtype)
        assert np.array_equal(ours, r1[f"p{i}"]), f"{name} differs between ranks"
        assert_close(ours, expected, dtype, what=f"{model} {name}")


@pytest.mark.mpi
@requires_mpi
def test_two_ranks_with_per_rank_batchnorm(tmp_path):
    proc = mpirun([SCRIPTS / "train_steps.py", tmp_path / "out.npz", "--model", "bn", "--steps", 5, "--per-rank-bn"])
    assert proc.returncode == 0, proc.stdout + proc.stderr  # ranks stayed equal (checked at every step)
    r0, r1 = (np.load(tmp_path / f"out.rank{r}.npz") for r in (0, 1))
    ref = train_steps.reference("bn", np.float64, 5).state_dict()
    assert all(np.array_equal(r0[k], r1[k]) for k in r0)
    assert not np.allclose(r0["p0"], ref["0.W"])  # statistics of half batches: another training


@pytest.mark.parametrize("mode", ["hook", "exit", "mpi4py"])
@pytest.mark.mpi
@requires_mpi
def test_a_failing_rank_ends_the_job(mode):
    args = ["-m", "mpi4py", SCRIPTS / "fail.py", "plain"] if mode == "mpi4py" else [SCRIPTS / "fail.py", mode]
    start = time.monotonic()
    proc = mpirun(args, timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert elapsed < 10, f"the job took {elapsed:.1f} s to end"
    assert "rank 1 fails on purpose" in proc.stderr


# ------------------------------------------------------------------ dist.fit on two ranks
def _fit(out, *extra):
    proc = mpirun([SCRIPTS / "fit_cnn.py", out, *extra], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [dict(np.load(out / f"final.rank{r}.npz")) for r in (0, 1)]


@pytest.mark.mpi
@requires_mpi
def test_two_rank_cnn_fit_writes_a_loadable_checkpoint_and_resumes_exactly(tmp_path):
    whole = _fit(tmp_path / "whole", "--epochs", "2")
    assert all(np.array_equal(whole[0][k], whole[1][k]) for k in whole[0])  # ranks agree
    ckpt = nn.load_checkpoint(tmp_path / "whole" / "checkpoint.npz")
    assert ckpt.epoch == 2 and len(ckpt.extra["distributed"]["rng_states"]) == 2
    for i, a in enumerate(ckpt.model.state_dict().values()):
        assert np.array_equal(a, whole[0][f"p{i}"])
    history = json.loads((tmp_path / "whole" / "history.json").read_text())
    assert history["loss"][1] < history["loss"][0] and len(history["val_accuracy"]) == 2

    # stopped mid-epoch 2 (as by Ctrl-C), then resumed: the uninterrupted run's weights bit for bit
    # (Dropout masks come from each rank's own generator, restored from rank 0's checkpoint) and
    # the same epoch metrics (the partial sums of all ranks are in the checkpoint once)
    _fit(tmp_path / "first", "--epochs", "2", "--stop-after", "6")
    ckpt = nn.load_checkpoint(tmp_path / "first" / "checkpoint.npz")
    assert (ckpt.epoch, ckpt.step) == (1, 7)
    resumed = _fit(tmp_path / "resumed", "--epochs", "2", "--resume", tmp_path / "first" / "checkpoint.npz")
    for key in whole[0]:
        assert np.array_equal(resumed[0][key], whole[0][key]) and np.array_equal(resumed[1][key], whole[1][key])
    again = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert again["loss"] == history["loss"] and again["accuracy"] == history["accuracy"]


@pytest.mark.mpi
@requires_mpi
def test_nnumpy_train_distributed_on_two_ranks(tmp_path):
    out = tmp_path / "run"
    args = ["-m", "nnumpy", "train", "--distributed", "--model", "mlp", "--dataset", "sample", "--epochs", "1"]
    proc = mpirun([*args, "--val-size", "200", "--out", out, "--quiet"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("test accuracy") == 1  # rank 0 alone reports
    assert {p.name for p in out.iterdir()} >= {"model.npz", "checkpoint.npz", "history.json"}
    history = json.loads((out / "history.json").read_text())
    assert history["test_accuracy"] > 0.6

    start = time.monotonic()
    proc = mpirun([*args, "--batch-size", "63", "--out", tmp_path / "bad"], timeout=60)
    assert proc.returncode != 0 and time.monotonic() - start < 10
    assert "global batch size 63 is not divisible by the number of ranks 2" in proc.stderr


@pytest.mark.mpi
@requires_mpi
def test_a_nan_loss_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """The divergence check uses the loss reduced over the ranks: rank 1 alone sees the NaN sample."""
    proc = mpirun([SCRIPTS / "diverge.py", tmp_path], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["step"] for r in results] == [3, 3] and all(r["loss"] == "nan" and r["finite"] for r in results)
    assert "epoch 1, step 3" in results[0]["message"]


@requires_mpi
@pytest.mark.parametrize("env, expected", [({}, None), ({"NNUMPY_NUM_THREADS": "3"}, 3)])
def test_ranks_sharing_a_machine_split_its_cores(monkeypatch, env, expected):
    """dist.init() caps each rank's kernel threads at cores / ranks, unless NNUMPY_NUM_THREADS says."""
    monkeypatch.delenv("NNUMPY_NUM_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = mpirun([SCRIPTS / "threads.py"])
    assert result.returncode == 0, result.stderr
    want = expected or max(1, (os.cpu_count() or 1) // 2)  # both ranks run on this machine
    found = sorted(re.findall(r"rank (\d) threads (\d+)", result.stdout))  # the ranks' lines may interleave
    assert found == [("0", str(want)), ("1", str(want))], result.stdout
