"""A process killed (SIGKILL) while writing a checkpoint leaves the previous
checkpoint loadable: writes go to a temporary file that is renamed over the
target only once complete and fsynced."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from nnumpy.io import load_checkpoint, restore_optimizer

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

WRITER = textwrap.dedent(
    """
    import io, sys, time
    import numpy as np
    import nnumpy
    from nnumpy.io import atomic

    path, mode, pause_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = nnumpy.Sequential(nnumpy.Linear(384, 384), nnumpy.ReLU(), nnumpy.Linear(384, 10))
    optimizer = nnumpy.Adam(model)
    x = np.ones((4, 384), np.float32)
    model.forward(x)
    model.backward(x, np.ones((4, 10), np.float32))
    optimizer.step()
    real_savez = np.savez

    def half_then_pause(file, **arrays):  # write half of the archive, then wait to be killed
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        data = buffer.getvalue()
        file.write(data[: len(data) // 2])
        file.flush()
        print("HALF", flush=True)
        time.sleep(60)

    def before_replace(tmp):  # the temporary file is complete; the rename has not happened
        print("TEMP", tmp, flush=True)
        time.sleep(60)

    version = 0
    while True:
        version += 1
        for p in model.parameters():
            p[...] = version
        if version == pause_at:
            if mode == "half":
                np.savez = half_then_pause
            elif mode == "before-rename":
                atomic.before_replace = before_replace
        nnumpy.save_checkpoint(path, model, optimizer, epoch=version, rng_state={"version": version})
        print("SAVED", version, flush=True)
        if mode != "loop" and version >= pause_at:
            break
    """
)


def _start(tmp_path, mode, pause_at):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "ckpt.npz"), mode, str(pause_at)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_for(process, prefix):
    for line in process.stdout:
        if line.startswith(prefix):
            return line.split()
    raise AssertionError(f"the writer exited (rc={process.wait()}) before printing {prefix!r}")


def _kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def _check_loadable(path, versions):
    ckpt = load_checkpoint(path)
    assert ckpt.epoch in versions and ckpt.rng_state == {"version": ckpt.epoch}
    # every tensor belongs to that one version: no mix of two writes
    assert all(np.all(p == ckpt.epoch) for p in ckpt.model.parameters())
    assert restore_optimizer(ckpt).state[0]["step"] == 1
    return ckpt.epoch


@pytest.mark.parametrize("mode", ["half", "before-rename"])
def test_kill_during_write_keeps_previous_checkpoint(tmp_path, mode):
    process = _start(tmp_path, mode, pause_at=3)
    try:
        assert _wait_for(process, "SAVED") == ["SAVED", "1"]
        assert _wait_for(process, "SAVED") == ["SAVED", "2"]
        _wait_for(process, "HALF" if mode == "half" else "TEMP")
        temps = [p for p in os.listdir(tmp_path) if p.startswith(".ckpt.npz.") and p.endswith(".tmp")]
        assert len(temps) == 1  # the write in progress, beside the target
    finally:
        _kill(process)
    assert _check_loadable(tmp_path / "ckpt.npz", {2}) == 2


def test_kill_at_arbitrary_moments(tmp_path):
    """Kill a process that rewrites its checkpoint in a loop at several moments;
    every time the file on disk is one complete checkpoint."""
    for delay in (0.0, 0.01, 0.03, 0.06):
        process = _start(tmp_path, "loop", pause_at=0)
        try:
            _wait_for(process, "SAVED")
            time.sleep(delay)
        finally:
            _kill(process)
        _check_loadable(tmp_path / "ckpt.npz", set(range(1, 10_000)))
