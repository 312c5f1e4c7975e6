"""The sequence commands end to end on small data: ``nnumpy train --model
lstm|transformer`` (row-sequential images), ``--model charlm`` on a text the
tests write, ``nnumpy generate``, ``nnumpy evaluate`` of a character model."""

import json
import math

import numpy as np
import pytest

import nnumpy
from nnumpy import cli, optim
from nnumpy.cli import charlm
from nnumpy.data import text as textdata
from nnumpy.training import get_optimizer

PNG = b"\x89PNG\r\n\x1a\n"
WORDS = "the quick brown fox jumps over a lazy dog and runs away".split()


def _corpus(path, lines=300, seed=0):
    rng = np.random.default_rng(seed)
    text = "\n".join(" ".join(rng.choice(WORDS, size=6)) for _ in range(lines)) + "\n"
    path.write_text(text)
    return text


def _usage_error(capsys, argv):
    """A parse-time refusal: exit status 2 and one line on stderr."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def _error(capsys, code, expected):
    captured = capsys.readouterr()
    assert code == expected, captured
    err = captured.err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """Two epochs of the character LSTM on a small corpus, shared by the tests that read its files."""
    root = tmp_path_factory.mktemp("charlm")
    corpus = root / "corpus.txt"
    _corpus(corpus)
    out = root / "run"
    argv = ["train", "--model", "charlm", "--dataset", str(corpus), "--epochs", "2", "--seq-len", "16",
            "--batch-size", "8", "--threads", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    return root, corpus, out


def test_charlm_train_writes_model_checkpoint_history_and_curve(lm_run, capsys):
    _, corpus, out = lm_run
    names = {p.name for p in out.iterdir()}
    assert {"model.npz", "checkpoint.npz", "history.json", "curves.png"} <= names
    assert "confusion.png" not in names
    assert (out / "curves.png").read_bytes().startswith(PNG)
    history = json.loads((out / "history.json").read_text())
    assert len(history["bpc"]) == len(history["val_bpc"]) == 2
    assert history["bpc"][0] == pytest.approx(history["loss"][0] / math.log(2))
    text = corpus.read_text()
    ids = textdata.Vocabulary.from_text(text).encode(text)
    unigram = textdata.unigram_entropy(ids)
    # a context model of this corpus must do far better than the characters' frequencies
    assert history["test_bpc"] < 0.5 * unigram, (history["test_bpc"], unigram)
    assert history["val_bpc"][1] < history["val_bpc"][0]
    meta = nnumpy.io.read_metadata(out / "model.npz")["metadata"]
    assert meta["kind"] == "charlm" and "".join(meta["vocab"]) == "".join(sorted(set(text)))
    ckpt = nnumpy.load_checkpoint(out / "checkpoint.npz")
    assert ckpt.epoch == 2 and ckpt.input_shape == (16,)


def test_charlm_train_prints_bpc_and_samples(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(charlm, "SAMPLE_EVERY", 10)
    corpus = tmp_path / "c.txt"
    _corpus(corpus, lines=80)
    argv = ["train", "--model", "charlm", "--dataset", str(corpus), "--epochs", "1", "--seq-len", "8",
            "--batch-size", "4", "--threads", "1", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "unigram entropy" in out and "epoch 1: train" in out and " bpc" in out
    assert "sample:" in out and "bits per character" in out
    assert "step 10: train" in out and out.count("sample:") == 1 + (out.count("step ") - out.count("step 0"))


def test_generate_samples_from_the_saved_vocabulary(lm_run, capsys):
    _, _, out = lm_run
    model = str(out / "model.npz")
    outputs = []
    for _ in range(2):
        assert cli.main(["generate", model, "--prompt", "the ", "--length", "40", "--seed", "3"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].startswith("the ")
    assert len(outputs[0]) == len("the ") + 40 + 1
    assert set(outputs[0]) <= set(" \n" + "".join(WORDS))
    # greedy = top-1 sampling, from the checkpoint as from the model file
    assert cli.main(["generate", model, "--prompt", "a ", "--length", "20", "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert cli.main(["generate", str(out / "checkpoint.npz"), "--prompt", "a ", "--length", "20", "--top-k", "1",
                     "--seed", "5"]) == 0
    assert capsys.readouterr().out == greedy


def test_generate_refuses_bad_prompts_and_options(lm_run, capsys):
    _, _, out = lm_run
    model = str(out / "model.npz")
    err = _error(capsys, cli.main(["generate", model, "--prompt", "XYZ"]), 1)
    assert "'X' is not in the model's vocabulary" in err
    err = _error(capsys, cli.main(["generate", model, "--prompt", ""]), 1)
    assert "prompt is empty" in err
    for option, value in (("--temperature", "nan"), ("--temperature", "-1"), ("--top-k", "-1"), ("--length", "0")):
        assert option in _usage_error(capsys, ["generate", model, option, value])


def test_generate_refuses_a_classifier(tmp_path, capsys):
    net = nnumpy.Sequential(nnumpy.Linear(4, 2))
    nnumpy.save_model(net, tmp_path / "m.npz", input_shape=(4,))
    err = _error(capsys, cli.main(["generate", str(tmp_path / "m.npz")]), 1)
    assert "not a character model" in err


def test_evaluate_reports_bits_per_character(lm_run, capsys):
    _, _, out = lm_run
    history = json.loads((out / "history.json").read_text())
    for name in ("model.npz", "checkpoint.npz"):
        assert cli.main(["evaluate", str(out / name)]) == 0
        printed = capsys.readouterr().out
        assert f"test {history['test_bpc']:.3f} bits per character" in printed
        assert "unigram entropy" in printed


def test_export_of_a_character_model_runs_any_batch_and_length(lm_run, tmp_path):
    import onnxruntime

    _, _, out = lm_run
    path = tmp_path / "charlm.onnx"
    assert cli.main(["export", str(out / "model.npz"), "--onnx", str(path)]) == 0
    model = nnumpy.load_model(out / "model.npz").evaluate()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, length in ((1, 16), (3, 5)):
        ids = np.random.default_rng(length).integers(0, 5, (batch, length)).astype(np.int64)
        (ours,) = session.run(None, {session.get_inputs()[0].name: ids})
        reference = model.forward(ids)
        reference = reference[0] if isinstance(reference, tuple) else reference
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)


def test_charlm_resumes_from_its_checkpoint(lm_run, tmp_path, capsys):
    _, corpus, out = lm_run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "checkpoint.npz").write_bytes((out / "checkpoint.npz").read_bytes())
    # --model charlm may be left out: the checkpoint says what it is
    checkpoint = str(resumed / "checkpoint.npz")
    code = cli.main(["train", "--resume", checkpoint, "--epochs", "3", "--quiet", "--threads", "1"])
    assert code == 0
    history = json.loads((resumed / "history.json").read_text())
    assert len(history["loss"]) == 3
    assert history["loss"][:2] == json.loads((out / "history.json").read_text())["loss"]


@pytest.mark.parametrize("arch_options", [["--arch", "transformer"]])
def test_charlm_transformer_trains_and_generates(tmp_path, capsys, arch_options):
    corpus = tmp_path / "c.txt"
    _corpus(corpus, lines=120)
    out = tmp_path / "run"
    argv = ["train", "--model", "charlm", *arch_options, "--dataset", str(corpus), "--epochs", "2",
            "--seq-len", "12", "--batch-size", "8", "--threads", "1", "--quiet", "--out", str(out)]
    assert cli.main(argv) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["test_bpc"] < 0.75 * history["unigram_bpc"]
    capsys.readouterr()
    # the window slides past max_len (12) while it generates
    assert cli.main(["generate", str(out / "model.npz"), "--prompt", "the ", "--length", "30", "--seed", "0"]) == 0
    assert len(capsys.readouterr().out) == 4 + 30 + 1


def test_charlm_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(textdata, "FORTUNES_DIR", tmp_path / "no-fortunes")
    err = _error(capsys, cli.main(["train", "--model", "charlm", "--quiet", "--out", str(tmp_path / "a")]), 1)
    assert "apt-get install fortunes" in err and "--dataset TEXTFILE" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    err = _error(capsys, cli.main(["train", "--model", "charlm", "--dataset", str(empty), "--out", str(tmp_path)]), 1)
    assert "empty" in err
    short = tmp_path / "short.txt"
    short.write_text("abcdef")
    err = _error(capsys, cli.main(["train", "--model", "charlm", "--dataset", str(short), "--out", str(tmp_path)]), 1)
    assert "too short" in err
    corpus = tmp_path / "c.txt"
    _corpus(corpus, lines=20)
    err = _error(capsys, cli.main(["train", "--model", "charlm", "--dataset", str(corpus), "--augment", "flip"]), 1)
    assert "--augment does not apply" in err
    assert "--seq-len" in _usage_error(capsys, ["train", "--model", "charlm", "--seq-len", "0"])
    assert "--arch" in _usage_error(capsys, ["train", "--model", "charlm", "--arch", "gru"])


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_sequence_classifiers_train_on_row_sequences(tmp_path, capsys, model):
    out = tmp_path / model
    argv = ["train", "--model", model, "--dataset", "sample", "--epochs", "1", "--val-size", "500", "--quiet",
            "--threads", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert {"model.npz", "checkpoint.npz", "history.json", "curves.png", "confusion.png"} <= names
    history = json.loads((out / "history.json").read_text())
    assert 0.3 < history["test_accuracy"] <= 1.0  # one epoch on 4,500 images; chance is 0.1
    ckpt = nnumpy.load_checkpoint(out / "checkpoint.npz")
    assert ckpt.input_shape == (28, 28)
    capsys.readouterr()
    assert cli.main(["evaluate", str(out / "model.npz"), "--dataset", "sample"]) == 0
    assert f"test accuracy {history['test_accuracy']:.2%}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name, cls", [("radam", optim.RAdam), ("adamax", optim.Adamax), ("adadelta", optim.Adadelta), ("Lion", optim.Lion)]
)
def test_new_optimizer_names(name, cls):
    assert type(get_optimizer(name, nnumpy.Linear(2, 1), lr=0.01)) is cls


def test_the_lstm_state_carries_across_windows():
    """With the state carried, short windows score the text exactly as one long window does."""
    model = nnumpy.models.char_lstm(7, embedding_dim=8, hidden_size=12, rng=0)
    ids = np.random.default_rng(0).integers(0, 7, size=4 * 41)
    trainer = charlm.CharLMTrainer(model, nnumpy.CrossEntropyCriterion(), verbose=False)
    whole = trainer.evaluate(textdata.BPTTBatches(ids, batch_size=4, seq_len=40))
    pieces = trainer.evaluate(textdata.BPTTBatches(ids, batch_size=4, seq_len=3))
    assert pieces["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    assert pieces["accuracy"] == whole["accuracy"]
    # the Transformer sees each window alone: shorter windows lose context
    trf = nnumpy.models.char_transformer(7, d_model=8, nhead=2, num_layers=1, dim_feedforward=16, max_len=40, rng=0)
    trainer = charlm.CharLMTrainer(trf, nnumpy.CrossEntropyCriterion(), verbose=False)
    assert trainer.evaluate(textdata.BPTTBatches(ids, 4, 3))["loss"] != trainer.evaluate(
        textdata.BPTTBatches(ids, 4, 40))["loss"]
