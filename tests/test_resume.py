"""Resuming from a checkpoint continues bit for bit (same thread count)."""

import json

import numpy as np

import nnumpy
from nnumpy import BatchNorm1d, Dropout, Linear, LogSoftMax, ModelCheckpoint, ReLU, Sequential, cli, fit
from nnumpy.data import Augment
from nnumpy.io import restore_optimizer
from nnumpy.lr_scheduler import OneCycleLR
from nnumpy.training import Callback


def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    y = (x[:, :4].sum(1) > 0).astype(np.int64) + (x[:, 4] > 1)
    return x, y


def build():
    # Dropout on nnumpy's default generator and one with its own: both must be restored
    nnumpy.manual_seed(7)
    return Sequential(
        Linear(16, 32, rng=1),
        BatchNorm1d(32),
        ReLU(),
        Dropout(0.3),
        Linear(32, 32, rng=2),
        ReLU(),
        Dropout(0.2, rng=3),
        Linear(32, 3, rng=4),
        LogSoftMax(),
    )


def run(model, epochs, callbacks=(), resume=None, opt=None):
    opt = opt or nnumpy.AdamW(model, lr=1e-2, weight_decay=0.01)
    cycle = OneCycleLR(opt, max_lr=1e-2, total_steps=epochs * 5)
    aug = Augment(flip=True, crop_padding=1, image_shape=(1, 4, 4))
    history = fit(
        model,
        None,
        opt,
        data(),
        val_data=data(100, 1),
        epochs=epochs,
        batch_size=64,
        callbacks=[cycle, *callbacks],
        seed=5,
        verbose=False,
        augment=aug,
        label_smoothing=0.1,
        clip_grad_norm=5.0,
        resume=resume,
    )
    return history, opt


class InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, step, logs):
        if step == self.step:
            raise KeyboardInterrupt


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_resume_at_an_epoch_boundary_and_mid_epoch_is_bit_for_bit(tmp_path):
    straight = build()
    expected, _ = run(straight, 3)
    for stop_step in (5, 7):  # end of epoch 1; in the middle of epoch 2
        path = tmp_path / f"ck{stop_step}.npz"
        model = build()
        first, _ = run(model, 3, callbacks=[InterruptAt(stop_step), ModelCheckpoint(path)])
        assert first.interrupted
        nnumpy.manual_seed(123)  # whatever happened since, the checkpoint restores the generators
        ckpt = nnumpy.load_checkpoint(path)
        resumed, _ = run(ckpt.model, 3, resume=ckpt, opt=restore_optimizer(ckpt))
        assert resumed.step_loss == expected.step_loss
        assert resumed.loss == expected.loss and resumed.val_loss == expected.val_loss
        assert resumed.lr == expected.lr and resumed.accuracy == expected.accuracy
        assert same(ckpt.model, straight)


def test_cli_resume_with_total_epochs_equals_the_straight_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    common = ["--model", "mlp", "--dataset", "sample", "--schedule", "constant", "--quiet", "--threads", "1"]
    assert cli.main(["train", *common, "--epochs", "2", "--out", "a"]) == 0
    assert cli.main(["train", *common, "--epochs", "1", "--out", "b"]) == 0
    assert cli.main(["train", "--resume", "b/checkpoint.npz", "--epochs", "2", "--quiet", "--threads", "1"]) == 0
    a, b = nnumpy.load_model("a/model.npz"), nnumpy.load_model("b/model.npz")
    assert same(a, b)
    ha, hb = (
        json.loads((tmp_path / "a/history.json").read_text()),
        json.loads((tmp_path / "b/history.json").read_text()),
    )
    assert ha["step_loss"] == hb["step_loss"] and ha["loss"] == hb["loss"] and len(hb["loss"]) == 2
    assert ha["test_accuracy"] == hb["test_accuracy"]


def test_cli_ctrl_c_saves_then_resume_finishes_the_same_run(tmp_path, monkeypatch, capsys):
    from nnumpy.training import Trainer

    monkeypatch.chdir(tmp_path)
    common = ["--model", "mlp", "--dataset", "sample", "--quiet", "--threads", "1", "--epochs", "2"]
    assert cli.main(["train", *common, "--out", "straight"]) == 0
    original, calls = Trainer.train_step, []

    def interrupted_step(self, xb, yb):
        calls.append(1)
        if len(calls) == 50:  # in the middle of the second epoch (36 batches each)
            raise KeyboardInterrupt
        return original(self, xb, yb)

    monkeypatch.setattr(Trainer, "train_step", interrupted_step)
    assert cli.main(["train", *common, "--out", "cut"]) == cli.EXIT_INTERRUPTED
    assert "resume with: nnumpy train --resume cut/checkpoint.npz" in capsys.readouterr().err
    assert nnumpy.load_checkpoint("cut/checkpoint.npz").step == 49
    monkeypatch.setattr(Trainer, "train_step", original)
    assert cli.main(["train", "--resume", "cut/checkpoint.npz", "--quiet", "--threads", "1"]) == 0
    assert same(nnumpy.load_model("straight/model.npz"), nnumpy.load_model("cut/model.npz"))
    hs = json.loads((tmp_path / "straight/history.json").read_text())
    hc = json.loads((tmp_path / "cut/history.json").read_text())
    assert hs["step_loss"] == hc["step_loss"] and hs["val_loss"] == hc["val_loss"]
