"""fit / evaluate / predict, History, callbacks, clipping, summary, augmentation."""

import math
import signal

import numpy as np
import pytest
from helpers import HISTORY_KEYS

import nnumpy
from nnumpy import (
    BatchNorm1d,
    ClassNLLCriterion,
    CrossEntropyCriterion,
    Dropout,
    EarlyStopping,
    History,
    Linear,
    LogSoftMax,
    ModelCheckpoint,
    ReLU,
    Sequential,
    clip_grad_norm,
    evaluate,
    fit,
    get_optimizer,
    predict,
)
from nnumpy.data import Augment, random_crop, random_flip
from nnumpy.summary import summary
from nnumpy.training import Callback, GradientClipping, Trainer, default_criterion


def blobs(n=600, seed=0, classes=3, dim=10):
    """Separable Gaussian clusters: a small task every working loop learns."""
    centers = np.random.default_rng(1234).normal(scale=3.0, size=(classes, dim))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = (centers[y] + rng.normal(size=(n, dim))).astype(np.float32)
    return x, y.astype(np.int64)


def mlp(dim=10, classes=3, seed=0, dropout=0.0):
    rng = np.random.default_rng(seed)
    layers = [Linear(dim, 32, rng=rng), ReLU()]
    if dropout:
        layers.append(Dropout(dropout, rng=rng))
    return Sequential(*layers, Linear(32, classes, rng=rng), LogSoftMax())


def test_fit_learns_a_separable_task():
    x, y = blobs()
    xv, yv = blobs(200, seed=1)
    model = mlp()
    history = fit(model, ClassNLLCriterion(), "adam", (x, y), val_data=(xv, yv), epochs=5, lr=1e-2, verbose=False)
    assert history.accuracy[-1] > 0.95
    assert history.val_accuracy[-1] > 0.95
    assert history.loss[-1] < history.loss[0]
    assert evaluate(model, (xv, yv))["accuracy"] == pytest.approx(history.val_accuracy[-1])


def test_history_keys_and_lengths():
    x, y = blobs(300)
    history = fit(mlp(), None, "sgd", (x, y), val_data=blobs(100, 1), epochs=2, batch_size=64, verbose=False)
    data = history.to_dict()
    assert set(data) == HISTORY_KEYS
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"):
        assert len(data[key]) == 2, key
    assert len(data["step_loss"]) == 2 * math.ceil(300 / 64)
    assert data["test_loss"] is None
    assert history["loss"] is not history.loss  # a copy
    assert History.from_dict(data).to_dict() == data
    no_val = fit(mlp(), None, "sgd", (x, y), epochs=1, verbose=False)
    assert no_val.val_loss == [] and len(no_val.loss) == 1


def test_epoch_loss_is_the_mean_of_step_losses_weighted_by_batch():
    x, y = blobs(250)
    history = fit(mlp(), None, "adam", (x, y), epochs=1, batch_size=100, verbose=False)
    sizes = [100, 100, 50]
    assert history.loss[0] == pytest.approx(np.dot(history.step_loss, sizes) / 250)


def test_fit_restores_skip_input_grad_and_modes():
    model = mlp(dropout=0.5)
    model.evaluate()
    assert model.skip_input_grad is False
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, step, logs):
            seen.append((trainer.model.skip_input_grad, trainer.model[2].training))

    fit(model, None, "adam", blobs(100), epochs=1, batch_size=50, callbacks=[Spy()], verbose=False)
    assert seen == [(True, True), (True, True)]
    assert model.skip_input_grad is False
    assert model.training is False and model[2].training is False


def test_optimizer_names():
    model = mlp()
    assert type(get_optimizer("ADAM", model)).__name__ == "Adam"
    assert type(get_optimizer("Vanilla", model)).__name__ == "SGD"
    momentum = get_optimizer("MomentumUpdate", model, lr=0.1)
    assert momentum.momentum == 0.9 and momentum.lr == 0.1
    assert get_optimizer("adamw", model, weight_decay=0.5).weight_decay == 0.5
    for name in ("sgd", "momentum", "adagrad", "rmsprop", "nadam", "RMSProp", "AdaGrad"):
        assert get_optimizer(name, model).model is model
    opt = nnumpy.Adam(model)
    assert get_optimizer(opt, model) is opt
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'; choose one of"):
        get_optimizer("adamx", model)


def test_named_optimizer_gives_the_same_numbers_as_the_instance():
    x, y = blobs(200)
    a, b = mlp(seed=3), mlp(seed=3)
    ha = fit(a, None, "sgd", (x, y), epochs=2, lr=0.05, verbose=False)
    hb = fit(b, None, nnumpy.SGD(b, lr=0.05), (x, y), epochs=2, verbose=False)
    assert ha.step_loss == hb.step_loss
    assert all(np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_default_criterion_follows_the_last_layer():
    assert isinstance(default_criterion(mlp()), ClassNLLCriterion)
    assert isinstance(default_criterion(Sequential(Linear(2, 3))), CrossEntropyCriterion)
    assert type(default_criterion(Sequential(Linear(2, 3), nnumpy.SoftMax()))).__name__ == "ClassNLLCriterionUnstable"


def test_clip_grad_norm_matches_torch():
    import torch
    model = mlp()
    x, y = blobs(32)
    out = model.forward(x)
    crit = ClassNLLCriterion()
    model.backward(x, crit.backward(out, y) * 50)
    grads = [g.copy() for _, g in model.parameter_pairs()]
    tensors = [torch.zeros(g.shape, dtype=torch.float64) for g in grads]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.tensor(g, dtype=torch.float64)
    ref = float(torch.nn.utils.clip_grad_norm_(tensors, 0.5))
    norm = clip_grad_norm(model, 0.5)
    assert norm == pytest.approx(ref, rel=1e-6)
    for (_, g), t in zip(model.parameter_pairs(), tensors, strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert clip_grad_norm(model, 1e9) == pytest.approx(0.5, rel=1e-4)  # below the bound: unchanged


def test_fit_clips_before_the_step():
    clip = GradientClipping(1e-3)
    fit(mlp(), None, "sgd", blobs(64), epochs=1, callbacks=[clip], verbose=False)
    assert clip.last_norm > 1e-3
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        GradientClipping(0)
    trainer = Trainer(mlp(), None, nnumpy.SGD(mlp()), clip_grad_norm=0.1)
    assert isinstance(trainer.callbacks[0], GradientClipping)


def test_early_stopping_stops_and_restores_best():
    x, y = blobs(200)
    model = mlp()
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    # lr 0: the validation loss never improves after the first epoch
    history = fit(model, None, "sgd", (x, y), val_data=(x, y), epochs=10, lr=0.0, callbacks=[stop], verbose=False)
    assert len(history.loss) == 3
    assert stop.stopped_epoch == 2
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


def test_early_stopping_without_validation_uses_the_training_metric():
    stop = EarlyStopping(monitor="val_loss", patience=1, min_delta=1e-3)
    history = fit(mlp(), None, "sgd", blobs(100), epochs=5, lr=0.0, callbacks=[stop], verbose=False)
    assert len(history.loss) == 2


def test_model_checkpoint_writes_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    model = mlp()
    fit(model, None, "adam", blobs(100), epochs=2, callbacks=[ModelCheckpoint(path)], verbose=False)
    ckpt = nnumpy.load_checkpoint(path)
    assert ckpt.epoch == 2 and ckpt.step == 2
    assert ckpt.input_shape == (10,)
    assert all(np.array_equal(p, q) for p, q in zip(ckpt.model.parameters(), model.parameters(), strict=True))
    assert len(ckpt.history["loss"]) == 2


def test_model_checkpoint_save_best_only(tmp_path):
    path = tmp_path / "best-{epoch}.npz"
    fit(
        mlp(),
        None,
        "sgd",
        blobs(100),
        val_data=blobs(50, 1),
        epochs=3,
        lr=0.0,
        callbacks=[ModelCheckpoint(path, save_best_only=True)],
        verbose=False,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-1.npz"]


def test_ctrl_c_saves_a_checkpoint_and_returns(tmp_path, capsys):
    class Interrupt(Callback):
        def on_batch_end(self, trainer, step, logs):
            if step == 3:
                raise KeyboardInterrupt

    path = tmp_path / "ck.npz"
    history = fit(
        mlp(), None, "adam", blobs(200), epochs=3, batch_size=50, callbacks=[Interrupt(), ModelCheckpoint(path)]
    )
    assert history.interrupted
    assert len(history.step_loss) == 3 and history.loss == []
    ckpt = nnumpy.load_checkpoint(path)
    assert (ckpt.epoch, ckpt.step, ckpt.extra["fit"]["batch_in_epoch"]) == (0, 3, 3)
    assert "interrupted after 0 epochs + 3 batches" in capsys.readouterr().out


def test_a_real_ctrl_c_stops_after_the_batch_and_the_previous_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    seen = []

    class CtrlC(Callback):
        def on_batch_end(self, trainer, step, logs):
            seen.append(signal.getsignal(signal.SIGINT))
            if step == 2:
                signal.raise_signal(signal.SIGINT)  # fit's handler: stop after this batch

    history = fit(mlp(), None, "adam", blobs(200), epochs=3, batch_size=50, callbacks=[CtrlC()], verbose=False)
    assert history.interrupted and len(history.step_loss) == 2
    assert seen[0] is not before  # fit handled SIGINT while it ran...
    assert signal.getsignal(signal.SIGINT) is before  # ...and put the previous handler back


@pytest.mark.parametrize("where", ["on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end"])
def test_the_previous_sigint_handler_comes_back_when_training_raises(where):
    before = signal.getsignal(signal.SIGINT)

    class Fails(Callback):
        pass

    def fail(*args):
        raise RuntimeError(f"{where} fails")

    callback = Fails()
    setattr(callback, where, fail)
    net = mlp(dropout=0.5).evaluate()
    with pytest.raises(RuntimeError, match=f"{where} fails"):
        fit(net, None, "adam", blobs(100), epochs=1, batch_size=50, callbacks=[callback], verbose=False)
    assert signal.getsignal(signal.SIGINT) is before
    assert all(not m.training for _, m in net.named_modules())  # modes restored too
    assert net.skip_input_grad is False


def test_verbose_prints_one_line_per_epoch_without_a_terminal(capsys):
    fit(mlp(), None, "adam", blobs(100), val_data=blobs(50, 1), epochs=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  loss ") and "val_acc" in lines[0] and "samples/s" in lines[0]
    fit(mlp(), None, "adam", blobs(100), epochs=1, verbose=False)
    assert capsys.readouterr().out == ""


def test_fit_accepts_a_loader_and_label_smoothing():
    x, y = blobs(256)
    loader = nnumpy.DataLoader(x, y, batch_size=64, shuffle=True, rng=0)
    history = fit(mlp(), None, "adam", loader, epochs=3, lr=1e-2, label_smoothing=0.1, verbose=False)
    assert history.accuracy[-1] > 0.9
    # smoothed targets: the loss cannot reach 0
    assert min(history.step_loss) > 0.1
    trainer = Trainer(mlp(), label_smoothing=0.2)
    target = trainer.make_target(np.array([0, 2]), np.zeros((2, 4), np.float32))
    np.testing.assert_allclose(target, [[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05]], rtol=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        Trainer(mlp(), label_smoothing=1.0)


def test_fit_errors():
    with pytest.raises(TypeError, match="expected a Module"):
        fit("model", None, "adam", blobs(10))
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        fit(mlp(), None, "adam", (np.zeros((10, 10), np.float32), np.zeros(9, np.int64)), verbose=False)
    with pytest.raises(TypeError, match="pair of arrays or a loader"):
        fit(mlp(), None, "adam", 3, verbose=False)


def test_predict_and_evaluate_use_evaluate_mode_and_restore_it():
    model = mlp(dropout=0.9)
    x, y = blobs(50)
    model.train()
    a = predict(model, x, batch_size=7)
    b = predict(model, x, batch_size=50)
    np.testing.assert_allclose(a, b, rtol=1e-5)  # no dropout in evaluate mode
    assert model.training and model[2].training
    result = evaluate(model, (x, y), batch_size=50, return_predictions=True)
    np.testing.assert_array_equal(result["predictions"], b)
    assert result["accuracy"] == np.mean(b.argmax(1) == y)
    loader = nnumpy.DataLoader(x, y, batch_size=7)
    np.testing.assert_array_equal(predict(model, loader), a)


def test_summary_lists_layers_shapes_and_totals():
    model = Sequential(Linear(4, 8), BatchNorm1d(8), ReLU(), Sequential(Linear(8, 3)), LogSoftMax())
    model.freeze()
    model[3].unfreeze()
    text = model.summary((4,), print_fn=None)
    assert "(N, 8)" in text and "(N, 3)" in text
    assert "Total params: 83" in text
    assert "Trainable params: 27" in text and "Non-trainable params: 56" in text
    assert model.training  # modes restored
    lines = []
    summary(model, 4, print_fn=lines.append)
    assert lines == [text]


def test_augment_is_vectorised_and_deterministic():
    x = np.arange(2 * 1 * 5 * 5, dtype=np.float32).reshape(2, 1, 5, 5)
    np.testing.assert_array_equal(random_crop(x, np.random.default_rng(0), padding=0), x)
    flipped = random_flip(x, np.random.default_rng(0), p=1.0)
    np.testing.assert_array_equal(flipped, x[..., ::-1])
    cropped = random_crop(x, np.random.default_rng(1), padding=2, fill=-1.0)
    assert cropped.shape == x.shape
    # every output is a shifted window: its values are the input's or the fill
    assert set(np.unique(cropped)) <= set(np.unique(x)) | {-1.0}
    aug = Augment(flip=True, crop_padding=2, image_shape=(1, 5, 5))
    flat = x.reshape(2, 25)
    out1 = aug(flat, np.random.default_rng(5))
    out2 = aug(flat, np.random.default_rng(5))
    assert out1.shape == (2, 25)
    np.testing.assert_array_equal(out1, out2)
    with pytest.raises(ValueError, match="expected images"):
        Augment()(np.zeros((2, 3), np.float32), np.random.default_rng(0))


def test_plots_write_pngs_or_skip_with_one_notice(tmp_path, monkeypatch, capsys):
    from nnumpy import plots

    history = fit(mlp(), None, "adam", blobs(100), val_data=blobs(50, 1), epochs=2, verbose=False)
    path = plots.plot_history(history, tmp_path / "curves.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    cm = nnumpy.confusion_matrix([0, 1, 2], [0, 2, 2])
    assert plots.plot_confusion_matrix(cm, tmp_path / "cm.png", class_names="abc").endswith("cm.png")
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.figure", None)  # as if not installed
    monkeypatch.setattr(plots, "_notified", False)
    assert plots.plot_history(history, tmp_path / "none.png") is None
    assert plots.plot_confusion_matrix(cm, tmp_path / "none2.png") is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib is not installed" in err
    assert not (tmp_path / "none.png").exists()


# ---------------------------------------------------------------- nothing silently wrong (issue 14)
class SetLR(Callback):
    """Set the optimizer's learning rate when epoch ``epoch`` begins."""

    def __init__(self, epoch, lr):
        self.epoch, self.lr = epoch, lr

    def on_epoch_begin(self, trainer, epoch):
        if epoch == self.epoch:
            trainer.optimizer.lr = self.lr


def test_fit_stops_at_the_first_non_finite_loss_and_keeps_the_good_checkpoint(tmp_path):
    x, y = blobs(256)
    model = mlp()
    path = tmp_path / "ckpt.npz"
    opt = nnumpy.SGD(model, lr=0.1)
    with pytest.raises(nnumpy.TrainingDivergedError) as info:
        fit(model, None, opt, (x, y), epochs=3, batch_size=64, callbacks=[SetLR(1, 1e30), ModelCheckpoint(path)],
            verbose=False)  # fmt: skip
    error = info.value
    message = str(error)
    assert error.epoch == 1 and error.step > 4 and not math.isfinite(error.loss)
    assert f"epoch 2, step {error.step}" in message and "lower the learning rate" in message.lower()
    assert "lr=1e+30" in message
    saved = nnumpy.load_checkpoint(path)
    assert saved.epoch == 1  # epoch 1's checkpoint, not overwritten
    assert all(np.isfinite(p).all() for p in saved.model.parameters())


def test_a_nan_loss_stops_before_the_update():
    x, y = blobs(128)
    x[70] = np.nan  # the second batch of 64
    model = mlp()
    seen = []

    class Record(Callback):
        def on_batch_end(self, trainer, step, logs):
            seen.append([p.copy() for p in trainer.model.parameters()])

    with pytest.raises(nnumpy.TrainingDivergedError, match=r"the loss is nan at epoch 1, step 2 \(batch 2"):
        fit(model, None, "sgd", (x, y), epochs=1, batch_size=64, shuffle=False, callbacks=[Record()], verbose=False)
    assert len(seen) == 1
    assert all(np.array_equal(a, b) for a, b in zip(seen[0], model.parameters(), strict=True))


def test_non_finite_parameters_at_an_epoch_end_are_never_saved(tmp_path):
    # one step per epoch with lr=inf: the loss was finite, the update made the weights inf/NaN
    x, y = blobs(32)
    model = mlp()
    path = tmp_path / "ckpt.npz"
    with pytest.raises(nnumpy.TrainingDivergedError, match=r"parameter \S+ holds NaN or inf after epoch 1, step 1"):
        fit(model, None, nnumpy.SGD(model, lr=0.1), (x, y), epochs=2, batch_size=64,
            callbacks=[SetLR(0, math.inf), ModelCheckpoint(path)], verbose=False)  # fmt: skip
    assert not path.exists()


def test_nnumpy_train_refuses_non_finite_and_out_of_range_options(capsys, tmp_path):
    from nnumpy import cli

    # nnumpy train --lr inf exited 0 and wrote a model whose every parameter was NaN
    with pytest.raises(SystemExit) as exit:
        cli.main(["train", "--model", "mlp", "--dataset", "sample", "--epochs", "1", "--lr", "inf",
                  "--out", str(tmp_path / "run")])  # fmt: skip
    assert exit.value.code == 2 and "expected a finite number > 0, got 'inf'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()

    for option, value in [("--lr", "inf"), ("--lr", "nan"), ("--lr", "0"), ("--lr", "-1"), ("--weight-decay", "inf"),
                          ("--weight-decay", "-0.1"), ("--label-smoothing", "1"), ("--label-smoothing", "nan"),
                          ("--val-size", "-5"), ("--seed", "-1")]:  # fmt: skip
        with pytest.raises(SystemExit) as exit:
            cli.main(["train", option, value])
        assert exit.value.code == 2
        err = capsys.readouterr().err
        assert option in err and repr(value) in err and "expected" in err, err


def _tiny_idx_dir(directory, n_train=200, n_test=50):
    """Four IDX files of random 28x28 images with labels 0-9."""
    rng = np.random.default_rng(0)
    directory.mkdir()
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        (directory / f"{stem}-images-idx3-ubyte").write_bytes(
            b"\0\0\x08\x03" + np.array([n, 28, 28], ">u4").tobytes() + images.tobytes()
        )
        (directory / f"{stem}-labels-idx1-ubyte").write_bytes(
            b"\0\0\x08\x01" + np.array([n], ">u4").tobytes() + labels.tobytes()
        )
    return directory


def test_nnumpy_train_that_diverges_exits_non_zero_and_writes_no_model(tmp_path, capsys):
    from nnumpy import cli

    data = _tiny_idx_dir(tmp_path / "idx")
    out = tmp_path / "run"
    argv = ["train", "--model", "mlp", "--dataset", str(data), "--epochs", "2", "--schedule", "constant", "--quiet"]
    code = cli.main([*argv, "--lr", "1e30", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "training diverged" in err and "Lower the learning rate (lr=1e+30)" in err and "epoch 1, step" in err
    assert not (out / "model.npz").exists() and not (out / "checkpoint.npz").exists()


def test_evaluate_without_a_criterion_refuses_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    one = Sequential(Linear(3, 1, rng=0))
    with pytest.raises(ValueError, match="one output column.*MSECriterion"):
        evaluate(one, (x, x[:, :1] * 2))
    with pytest.raises(ValueError, match="one output column"):
        fit(one, None, "sgd", (x, x[:, :1] * 2), epochs=1, verbose=False)
    two = Sequential(Linear(3, 2, rng=0))
    with pytest.raises(ValueError, match=r"neither class labels nor one-hot rows.*MSECriterion"):
        evaluate(two, (x, x[:, :2] * 5))
    # with a criterion it is measured, and no arg-max accuracy is reported for regression
    result = evaluate(one, (x, x[:, :1] * 2), criterion=nnumpy.MSECriterion())
    assert result["loss"] > 0.1 and result["accuracy"] is None
    # classification targets still work without a criterion: labels and one-hot rows
    labels = (x[:, 0] > 0).astype(np.int64)
    assert evaluate(two, (x, labels))["accuracy"] is not None
    assert evaluate(two, (x, nnumpy.one_hot(labels, 2)))["accuracy"] is not None


def test_regression_with_several_outputs_reports_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    target = x[:, :2] * 3.0
    model = Sequential(Linear(3, 2, rng=0))
    history = fit(model, nnumpy.MSECriterion(), "adam", (x, target), val_data=(x, target), epochs=2, lr=0.01,
                  verbose=False)  # fmt: skip
    assert history.accuracy == [] and history.val_accuracy == [] and len(history.loss) == 2  # None is not recorded
    # MSE on one-hot rows (the seeds' classification): the accuracy stays
    labels = (x[:, 0] > 0).astype(np.int64)
    history = fit(model, nnumpy.MSECriterion(), "adam", (x, nnumpy.one_hot(labels, 2)), epochs=1, verbose=False)
    assert len(history.accuracy) == 1


def test_a_generator_trains_one_epoch_and_an_exhausted_one_is_named():
    x, y = blobs(256)
    model = mlp()
    batches = ((x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64))
    history = fit(model, None, "adam", batches, epochs=1, verbose=False)
    assert len(history.step_loss) == 4 and history.loss[0] > 0
    batches = ((x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64))
    with pytest.raises(ValueError, match="no samples in epoch 2 .a generator is used up after one pass"):
        fit(model, None, "adam", batches, epochs=2, verbose=False)
    with pytest.raises(ValueError, match="no samples in epoch 1"):
        fit(model, None, "adam", (x[:0], y[:0]), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="evaluate: the data gave no samples"):
        evaluate(model, (x[:0], y[:0]))
