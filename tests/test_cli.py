"""The nnumpy command end to end on the bundled sample (short runs)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import HISTORY_KEYS, short_sample_run

import nnumpy
from nnumpy import cli
from nnumpy.cli import app, common
from nnumpy.data import datasets

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One short MLP run on the sample, shared by the tests that read its files."""
    out = tmp_path_factory.mktemp("run")
    code = cli.main(["train", "--model", "mlp", "--dataset", "sample", "--epochs", "1", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def one_line_error(capsys, code, expected_code=1):
    captured = capsys.readouterr()
    assert code == expected_code
    err = captured.err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def test_train_writes_every_output(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"model.npz", "checkpoint.npz", "history.json", "curves.png", "confusion.png"} <= names
    model = nnumpy.load_model(run_dir / "model.npz")
    ckpt = nnumpy.load_checkpoint(run_dir / "checkpoint.npz")
    assert ckpt.epoch == 1 and ckpt.input_shape == (784,)
    assert all(np.array_equal(a, b) for a, b in zip(model.parameters(), ckpt.model.parameters(), strict=True))
    history = json.loads((run_dir / "history.json").read_text())
    assert set(history) == HISTORY_KEYS
    assert len(history["loss"]) == 1 and len(history["step_loss"]) == -(-4500 // 128)
    assert 0.5 < history["test_accuracy"] <= 1.0
    for name in ("curves.png", "confusion.png"):
        content = (run_dir / name).read_bytes()
        assert content.startswith(PNG)
        assert b"Matplotlib" in content[:2000]  # the Software text chunk matplotlib writes


def test_train_prints_summary_source_and_table(tmp_path, capsys):
    code = cli.main(["train", "--model", "mlp", "--dataset", "sample", "--epochs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "bundled Fashion-MNIST sample" in out and "not the full dataset" in out
    assert "Total params: 269,322" in out
    assert "epoch 1/1  loss" in out
    assert "samples/s" in out.splitlines()[[i for i, s in enumerate(out.splitlines()) if s.startswith("epoch ")][-1]]
    assert "T-shirt/top" in out and "test accuracy" in out
    assert f"to {tmp_path}" in out


def test_evaluate_a_model_and_a_checkpoint(run_dir, capsys):
    for name in ("model.npz", "checkpoint.npz"):
        assert cli.main(["evaluate", str(run_dir / name)]) == 0  # the data it was trained on: the sample
        out = capsys.readouterr().out
        assert "bundled Fashion-MNIST sample" in out
        assert "test accuracy" in out and "Ankle boot" in out and "macro avg" in out
    history = json.loads((run_dir / "history.json").read_text())
    assert f"{history['test_accuracy']:.2%}" in out


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nnumpy {nnumpy.__version__}")
    assert "numpy" in out and "fashion-mnist" in out and "sample" in out
    assert f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}" in out  # the spin in use


def test_export_onnx(run_dir, tmp_path, capsys):
    target = tmp_path / "m.onnx"
    assert cli.main(["export", str(run_dir / "checkpoint.npz"), "--onnx", str(target), "--opset", "18"]) == 0
    assert target.stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_evaluate_and_export_refuse_a_model_of_several_inputs(tmp_path, capsys, command):
    a, b = nnumpy.Input(), nnumpy.Input()
    net = nnumpy.Graph([a, b], nnumpy.CAddTable()(nnumpy.Linear(3, 2)(a), nnumpy.Linear(4, 2)(b)))
    nnumpy.save_model(net, tmp_path / "two.npz", input_shape=((3,), (4,)))
    onnx_file = tmp_path / "two.onnx"
    argv = [command, str(tmp_path / "two.npz")] + (["--onnx", str(onnx_file)] if command == "export" else [])
    assert cli.main(argv) == 1
    assert f"the model takes 2 inputs; 'nnumpy {command}' handles models of one input" in capsys.readouterr().err
    assert not onnx_file.exists()


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["train", "--epochs", "0"], 2, "expected a positive integer"),
        (["train", "--model", "resnet50"], 2, "invalid choice"),
        (["train", "--bogus"], 2, "unrecognized arguments"),
        (["frobnicate"], 2, "invalid choice"),
        (["evaluate", "missing.npz"], 1, "no such file"),
        (["train", "--resume", "missing.npz"], 1, "no such file"),
        (["train", "--dataset", "no/such/dir"], 1, "unknown dataset"),
        (["train", "--model", "mlp", "--dataset", "sample", "--optimizer", "adamx", "--epochs", "1"], 1, "adamx"),
    ],
)
def test_errors_are_one_line(argv, code, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if argv[0].startswith("-") or argv[0] in ("train", "evaluate", "frobnicate"):
        try:
            result = cli.main(argv)
        except SystemExit as exit:  # argparse's usage errors
            result = exit.code
    err = one_line_error(capsys, result, code)
    assert message in err


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    err = one_line_error(capsys, cli.main(["evaluate", str(bad)]))
    assert "bad.npz" in err


def test_no_arguments_mean_train_cnn_with_the_default_recipe(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(app, "cmd_train", lambda args: seen.append(args) or 0)
    assert cli.main([]) == 0
    assert seen[0].command == "train" and seen[0].model == "cnn" and seen[0].dataset is None
    assert seen[0].recipe == "default" and seen[0].epochs is None
    # without the full set the default falls back to the sample, and says so
    monkeypatch.setattr(datasets, "find_dataset", lambda name, root=None: None)
    (_, _), source = common.load_data(None)
    assert source.is_sample
    assert "using the bundled sample" in capsys.readouterr().out


def test_python_dash_m_runs_the_command():
    result = subprocess.run([sys.executable, "-m", "nnumpy", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"nnumpy {nnumpy.__version__}"


@pytest.mark.parametrize("choice, flip, crop", [("flip+crop", True, 2), ("crop", False, 2), ("none", False, 0)])
def test_augment_option_sets_the_recipe(tmp_path, choice, flip, crop):
    recipe = short_sample_run(tmp_path, "--augment", choice).extra["cli"]["recipe"]
    assert (recipe["flip"], recipe["crop_padding"]) == (flip, crop)


def test_output_files_get_ordinary_permissions(run_dir):
    import os

    mask = os.umask(0)
    os.umask(mask)
    for name in ("history.json", "model.npz", "checkpoint.npz"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
