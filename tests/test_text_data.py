"""Character corpora (data/text.py), row-sequential images (data/sequences.py)
and the sequence models' own pieces (models.py:
CausalTransformerEncoder, LSTM-F, TRF-F, the character models)."""

import numpy as np
import pytest
import torch

import nnumpy
from nnumpy import models
from nnumpy.data import DatasetError, normalize
from nnumpy.data import text as textdata
from nnumpy.data.sequences import rows_as_sequences
from nnumpy.data.text import (
    BPTTBatches,
    Vocabulary,
    char_windows,
    clean_text,
    load_text,
    read_fortunes,
    split_corpus,
    unigram_entropy,
)


# ---------------------------------------------------------------- reading text
def _fortune_dir(tmp_path):
    d = tmp_path / "fortunes"
    d.mkdir()
    (d / "alpha").write_text("First one.\n%\nSecond\n  two lines.\n%\n%\nThird.\n")
    (d / "alpha.dat").write_bytes(b"\x00\x00\x00\x02binary index")
    (d / "alpha.u8").write_text("must be skipped\n%\n")
    (d / "beta").write_text("B_\bo_\bl_\bd beta.\r\n%\r\n")
    (d / "off").mkdir()
    (d / "off" / "gamma").write_text("offensive, skipped\n%\n")
    return d


def test_read_fortunes_splits_on_percent_lines_and_skips_index_files(tmp_path):
    fortunes = read_fortunes(_fortune_dir(tmp_path))
    assert fortunes == ["First one.", "Second\n  two lines.", "Third.", "Bold beta."]


def test_load_text_of_a_fortune_directory_and_of_a_file(tmp_path):
    text, description = load_text(_fortune_dir(tmp_path))
    assert text == "First one.\n\nSecond\n  two lines.\n\nThird.\n\nBold beta.\n"
    assert "fortunes" in description and f"{len(text):,} characters" in description
    f = tmp_path / "plain.txt"
    f.write_bytes("caf\xe9 100%\r\n".encode("latin-1"))  # not UTF-8: read as Latin-1
    text, _ = load_text(f)
    assert text == "caf\xe9 100%\n"
    assert load_text(f, max_chars=3)[0] == "caf"


def test_missing_fortunes_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(textdata, "FORTUNES_DIR", tmp_path / "absent")
    with pytest.raises(DatasetError, match=r"apt-get install fortunes.*--dataset TEXTFILE"):
        load_text()
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    (empty / "x.dat").write_bytes(b"\x00")
    with pytest.raises(DatasetError, match="apt-get install fortunes"):
        read_fortunes(empty)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b" \n\t\n", "empty"), (b"\x01\x02\x7f", "empty"), (b"ab\x00cd", "binary")],
)
def test_untrusted_corpora_are_refused(tmp_path, content, message):
    f = tmp_path / "corpus.txt"
    f.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        load_text(f)
    with pytest.raises(DatasetError, match="no such"):
        load_text(tmp_path / "missing.txt")


def test_clean_text():
    assert clean_text("a\r\nb\rc_\bd\x07e\tf") == "a\nb\ncd" + "e\tf"


# ---------------------------------------------------------------- vocabulary
def test_vocabulary_round_trip_and_errors():
    v = Vocabulary.from_text("hello, world\n")
    ids = v.encode("world")
    assert ids.dtype == np.int64 and v.decode(ids) == "world"
    assert Vocabulary.from_list(v.to_list()).chars == v.chars
    assert len(v) == len(set("hello, world\n")) and "h" in v and "z" not in v
    with pytest.raises(DatasetError, match=r"'z' is not in the model's vocabulary"):
        v.encode("zebra")
    for bad in ([], ["ab"], ["a", "a"], [1]):
        with pytest.raises(DatasetError):
            Vocabulary.from_list(bad)
    with pytest.raises(DatasetError, match="list of characters"):
        Vocabulary.from_list("abc")


def test_unigram_entropy():
    assert unigram_entropy(np.array([0, 1, 2, 3] * 5)) == pytest.approx(2.0)
    assert unigram_entropy(np.array([3, 3, 3])) == pytest.approx(0.0)
    p = np.array([0.5, 0.25, 0.25])
    assert unigram_entropy(np.array([0, 0, 1, 2])) == pytest.approx(-(p * np.log2(p)).sum())
    with pytest.raises(DatasetError):
        unigram_entropy(np.array([], np.int64))


# ---------------------------------------------------------------- windows and batches
def test_split_corpus_is_contiguous():
    ids = np.arange(100)
    train, val, test = split_corpus(ids, 0.1, 0.05)
    assert np.array_equal(np.concatenate([train, val, test]), ids)
    assert (len(train), len(val), len(test)) == (85, 10, 5)
    with pytest.raises(DatasetError, match="too short"):
        split_corpus(np.arange(3), 0.3, 0.3)


def test_char_windows_targets_are_the_next_characters():
    ids = np.arange(20)
    x, y = char_windows(ids, 6)
    assert x.shape == y.shape == (3, 6)
    assert np.array_equal(y, x + 1) and np.array_equal(x[:, 0], [0, 6, 12])
    x2, _ = char_windows(ids, 6, stride=2)
    assert x2.shape == (7, 6)
    with pytest.raises(DatasetError, match="too short"):
        char_windows(ids, 20)


@pytest.mark.parametrize("random_offset", [False, True])
def test_bptt_batches_carry_each_row_on_from_the_last_window(random_offset):
    ids = np.arange(1000)
    batches = BPTTBatches(ids, batch_size=4, seq_len=7, random_offset=random_offset, seed=3)
    for epoch in range(3):
        batches.set_epoch(epoch)
        windows = list(batches)
        assert len(windows) == len(batches)
        streams = np.concatenate([x for x, _ in windows], axis=1)
        targets = np.concatenate([y for _, y in windows], axis=1)
        # every row is one contiguous stretch of the corpus, the targets one character ahead
        assert np.array_equal(np.diff(streams, axis=1), np.ones_like(streams[:, 1:]))
        assert np.array_equal(targets, streams + 1)
        assert all(x.shape == y.shape and x.shape[1] <= 7 and x.dtype == np.int64 for x, y in windows)
        # the rows are consecutive parts of the corpus
        assert np.array_equal(np.diff(streams[:, 0]), np.full(3, streams[1, 0] - streams[0, 0]))
    starts = set()
    for epoch in range(6):
        batches.set_epoch(epoch)
        starts.add(int(next(iter(batches))[0][0, 0]))
    assert (len(starts) > 1) == random_offset  # the offset moves the window boundaries between epochs
    batches.set_epoch(1)
    first = [x.copy() for x, _ in batches]
    batches.set_epoch(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, [x for x, _ in batches], strict=True))


def test_bptt_batches_refuse_a_text_too_short():
    with pytest.raises(DatasetError, match="too short for 8 streams"):
        BPTTBatches(np.arange(10), batch_size=8, seq_len=4)
    with pytest.raises(ValueError, match="seq_len"):
        BPTTBatches(np.arange(100), batch_size=2, seq_len=0)


# ---------------------------------------------------------------- row-sequential images
def test_rows_as_sequences():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    seq = rows_as_sequences(images)
    assert seq.shape == (5, 28, 28) and seq.dtype == np.float32
    assert np.array_equal(seq, normalize(images)[:, 0])
    assert np.array_equal(rows_as_sequences(images.reshape(5, 784)), seq)
    assert np.array_equal(rows_as_sequences(images[:, None]), seq)
    with pytest.raises(DatasetError, match="expected images"):
        rows_as_sequences(np.zeros((5, 3, 28, 28), np.uint8))


# ---------------------------------------------------------------- the causal encoder
def test_causal_encoder_does_not_look_ahead():
    layer = nnumpy.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=True, batch_first=True, rng=0)
    enc = models.CausalTransformerEncoder(layer, 2)
    x = np.random.default_rng(0).normal(size=(3, 6, 8)).astype(np.float32)
    y = enc.forward(x)
    changed = x.copy()
    changed[:, 4:] += 1.0
    y2 = enc.forward(changed)
    assert np.allclose(y[:, :4], y2[:, :4], atol=1e-5) and not np.allclose(y[:, 4:], y2[:, 4:])
    nnumpy.gradcheck(models.CausalTransformerEncoder(layer, 1), x[:1, :4].astype(np.float64))


# ---------------------------------------------------------------- the models
def test_sequence_classifiers_have_the_benchmark_sizes():
    lstm, trf = models.lstm_f(rng=0), models.trf_f(rng=0)
    x = np.zeros((2, 28, 28), np.float32)
    assert lstm.forward(x).shape == trf.forward(x).shape == (2, 10)
    # LSTM(28, 128) + Linear(128, 10), as torch counts them
    ref = sum(p.numel() for p in torch.nn.LSTM(28, 128).parameters()) + 128 * 10 + 10
    assert lstm.num_parameters == ref
    torch_trf = torch.nn.TransformerEncoderLayer(64, 4, 128, 0.1, norm_first=True, batch_first=True)
    ref = 28 * 64 + 64 + 28 * 64 + 2 * sum(p.numel() for p in torch_trf.parameters()) + 64 * 10 + 10
    assert trf.num_parameters == ref


@pytest.mark.parametrize("arch", sorted(models.CHAR_ARCHS))
def test_char_models_round_trip_through_a_model_file(tmp_path, arch):
    options = {"max_len": 16, "d_model": 16, "dim_feedforward": 32} if arch == "transformer" else {"hidden_size": 16}
    model = models.CHAR_ARCHS[arch](11, rng=0, **options)
    ids = np.random.default_rng(0).integers(0, 11, size=(3, 9))
    model.evaluate()
    out = model.forward(ids)
    assert out.shape == (3, 9, 11) and out.dtype == np.float32
    nnumpy.save_model(model, tmp_path / "m.npz", input_shape=(9,))
    loaded = nnumpy.load_model(tmp_path / "m.npz")
    loaded.evaluate()
    assert np.array_equal(loaded.forward(ids), out)
