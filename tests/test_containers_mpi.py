"""Containers and Graph under MPI (issue 15: "... checkpoints, MPI"): a
Residual/table model, a Graph with a Linear and a BatchNorm1d used at two
nodes, and a Graph of two inputs fed a tuple of arrays, each trained by ``nnumpy.distributed.fit`` on two ranks with
synchronised BatchNorm statistics, stay bitwise in sync after every step and
match the same training in one plain process (``nnumpy.fit``); the Graph's
checkpoint, written by rank 0, loads with its names and sharing.

The script is tests/mpi_scripts/fit_containers.py; the launcher is
test_distributed's ``mpirun`` (``mpiexec -n 2``, one BLAS thread per rank).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close
from test_distributed import mpirun, requires_mpi

import nnumpy as nn
import nnumpy.distributed as dist

SCRIPTS = Path(__file__).parent / "mpi_scripts"
sys.path.insert(0, str(SCRIPTS))
import fit_containers  # noqa: E402

EPOCHS = 2
STEPS = EPOCHS * -(-fit_containers.N_SAMPLES // fit_containers.BATCH)  # 5 steps an epoch, the last 5/6 split


def plain_fit(kind):
    """The same training in this process with ``nnumpy.fit`` (no nnumpy.distributed)."""
    model = fit_containers.build(kind)
    X, y = fit_containers.data(kind)
    history = nn.fit(
        model,
        nn.ClassNLLCriterion(),
        "adam",
        (X, y),
        val_data=fit_containers.validation(X, y),
        epochs=EPOCHS,
        batch_size=fit_containers.BATCH,
        seed=0,
        lr=1e-2,
        verbose=False,
    )
    return model, history


def test_the_models_hold_what_the_mpi_case_is_about():
    res, graph = fit_containers.build("residual"), fit_containers.build("graph")
    kinds = {type(m).__name__ for _, m in res.named_modules()}
    assert {"Residual", "ConcatTable", "CAddTable", "BatchNorm1d"} <= kinds
    steps = [step[0] for step in graph.plan()["steps"]]
    shared = {type(m).__name__ for m in steps if sum(s is m for s in steps) > 1}
    assert shared == {"Linear", "BatchNorm1d"}  # mix and bn2, two nodes each
    assert dist.sync_batchnorm(res) == dist.sync_batchnorm(graph) == 0  # one process: nothing to install


def test_one_process_distributed_fit_equals_plain_fit_for_containers(tmp_path):
    for kind in fit_containers.KINDS:
        ours, history, checks = fit_containers.train(kind, tmp_path, EPOCHS)
        ref, ref_history = plain_fit(kind)
        assert checks == STEPS and history.step_loss == ref_history.step_loss
        for (name, a), (ref_name, b) in zip(ours.state_dict().items(), ref.state_dict().items(), strict=True):
            assert name == ref_name and np.array_equal(a, b), f"{kind} {name}"


@pytest.mark.mpi
@requires_mpi
def test_two_ranks_train_residual_graph_and_two_inputs_with_batchnorm_like_one_process(tmp_path):
    proc = mpirun([SCRIPTS / "fit_containers.py", tmp_path, "--epochs", EPOCHS], timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for kind in fit_containers.KINDS:
        ref, ref_history = plain_fit(kind)
        expected = ref.state_dict()
        r0, r1 = (dict(np.load(tmp_path / f"{kind}.rank{r}.npz")) for r in (0, 1))
        assert list(r0) == list(r1) == list(expected), f"{kind}: state_dict keys"
        for name, want in expected.items():
            assert np.array_equal(r0[name], r1[name]), f"{kind} {name} differs between the ranks"
            assert_close(r0[name], want, np.float64, f"{kind} {name} (2 ranks vs one process)")
        record = json.loads((tmp_path / f"{kind}.history.json").read_text())
        assert record["ranks"] == 2 and record["checks"] == STEPS  # in sync after every step
        assert_close(np.array(record["step_loss"]), np.array(ref_history.step_loss), np.float64, f"{kind} losses")

    # the Graph's checkpoint (rank 0 wrote it): node names, the tied modules still one object each
    ckpt = nn.load_checkpoint(tmp_path / "graph.checkpoint.npz")
    assert ckpt.epoch == EPOCHS and isinstance(ckpt.model, nn.Graph)
    final = dict(np.load(tmp_path / "graph.rank0.npz"))
    state = ckpt.model.state_dict()
    assert list(state) == list(final)
    assert all(np.array_equal(state[k], final[k]) for k in final)
    steps = [step[0] for step in ckpt.model.plan()["steps"]]
    assert len({id(m) for m in steps}) == len(steps) - 2  # mix and bn2 are used twice again
