"""Character corpora for language models: reading text (by default Debian's
``fortunes``), a character ``Vocabulary``, fixed-length windows and
truncated-BPTT batches.

Truncated backpropagation through time (the classic PyTorch
word-language-model example): the corpus is cut into ``batch_size``
contiguous streams, one per batch row, and read ``seq_len`` characters at a
time, so window ``k + 1`` of row ``r`` continues exactly where window ``k``
of row ``r`` ended and a recurrent model may carry its hidden state from one
window to the next (``BPTTBatches``). Gradients stop at window boundaries.

Example:
    >>> vocab = Vocabulary.from_text("abcdefgh")
    >>> ids = vocab.encode("abcdefgh")  # two streams: abcd, efgh
    >>> [(x.tolist(), y.tolist()) for x, y in BPTTBatches(ids, batch_size=2, seq_len=3)]
    [([[0, 1, 2], [4, 5, 6]], [[1, 2, 3], [5, 6, 7]])]
"""

import math
import re
from pathlib import Path

import numpy as np

from .idx import DatasetError

__all__ = [
    "FORTUNES_DIR",
    "Vocabulary",
    "read_fortunes",
    "load_text",
    "clean_text",
    "unigram_entropy",
    "split_corpus",
    "char_windows",
    "BPTTBatches",
    "bits",
]

FORTUNES_DIR = Path("/usr/share/games/fortunes")
_INDEX_SUFFIXES = (".dat", ".u8")  # strfile's index files and the UTF-8 links next to each fortune file
_OVERSTRIKE = re.compile(r"[^\n]\x08")  # "_\bX": typewriter underlining in old fortunes
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # every control character but \t and \n


def _missing_fortunes(where):
    return DatasetError(
        f"no fortunes found in {where}: install them with 'apt-get install fortunes' "
        "(Debian/Ubuntu) or train on your own text with --dataset TEXTFILE"
    )


def _read(path):
    """A text file's characters: UTF-8, else Latin-1 (every byte is a character)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None
    if b"\x00" in raw[:65536]:
        raise DatasetError(f"{path}: this looks like a binary file (NUL bytes), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def clean_text(text):
    """Line ends as ``\\n``, typewriter overstrikes (``X\\bY``) and other
    control characters (but tabs and newlines) removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _OVERSTRIKE.sub("", text)
    return _CONTROL.sub("", text)


def read_fortunes(directory=FORTUNES_DIR):
    """The fortunes of a ``fortune`` directory: a list of strings.

    Reads the plain-text fortune files (not strfile's ``.dat`` indexes nor
    the ``.u8`` links, nor subdirectories) in name order and splits them on
    the lines holding only ``%``; empty fortunes are dropped.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise _missing_fortunes(directory)
    files = sorted(
        p for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(_INDEX_SUFFIXES)
    )
    fortunes = []
    for path in files:
        for part in re.split(r"^%[ \t]*$", clean_text(_read(path)), flags=re.MULTILINE):
            part = part.strip("\n")
            if part.strip():
                fortunes.append(part)
    if not fortunes:
        raise _missing_fortunes(directory)
    return fortunes


def load_text(source=None, max_chars=None):
    """``(text, description)`` of a corpus.

    ``source``: None or ``"fortunes"`` (Debian's fortunes, one blank line
    between fortunes), a directory of fortune files, or a text file (read as
    UTF-8, else Latin-1, cleaned with ``clean_text``). ``max_chars`` keeps
    only the first characters. Raises ``DatasetError`` for a missing, binary
    or empty corpus.
    """
    if source is None or str(source) == "fortunes":
        where = FORTUNES_DIR
        text = "\n\n".join(read_fortunes(where)) + "\n"
        description = f"fortunes ({where})"
    else:
        path = Path(source)
        if path.is_dir():
            text = "\n\n".join(read_fortunes(path)) + "\n"
            description = f"fortunes ({path})"
        elif path.is_file():
            text = clean_text(_read(path))
            description = str(path)
        else:
            raise DatasetError(f"{source}: no such text file or directory")
    if max_chars is not None:
        if int(max_chars) < 1:
            raise DatasetError(f"max_chars must be positive, got {max_chars!r}")
        text = text[: int(max_chars)]
    if not text.strip():
        raise DatasetError(f"{description}: the corpus is empty (no text after cleaning)")
    return text, f"{description}, {len(text):,} characters"


class Vocabulary:
    """The characters of a corpus and their ids (sorted by code point).

    ``encode(text)`` -> int64 ids, ``decode(ids)`` -> text; ``to_list()`` /
    ``from_list(chars)`` store it (model files keep it in their metadata, so
    ``nnumpy generate`` needs no corpus).

    Example:
        >>> v = Vocabulary.from_text("abca")
        >>> len(v), v.encode("cab").tolist(), v.decode([2, 0])
        (3, [2, 0, 1], 'ca')
    """

    def __init__(self, chars):
        chars = list(chars)
        if not chars:
            raise DatasetError("Vocabulary: no characters (is the corpus empty?)")
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise DatasetError(f"Vocabulary: expected single characters, got {bad[0]!r}")
        if len(set(chars)) != len(chars):
            raise DatasetError("Vocabulary: a character appears twice")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    @classmethod
    def from_list(cls, chars):
        if not isinstance(chars, (list, tuple)):
            raise DatasetError(f"Vocabulary: expected a list of characters, got {type(chars).__name__}")
        return cls(chars)

    def to_list(self):
        return list(self.chars)

    def __len__(self):
        return len(self.chars)

    def __contains__(self, char):
        return char in self.index

    def encode(self, text):
        """Ids of ``text``'s characters; a character outside the vocabulary is an error naming it."""
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as error:
            raise DatasetError(
                f"the character {error.args[0]!r} is not in the model's vocabulary of {len(self)} characters"
            ) from None

    def decode(self, ids):
        chars = self.chars
        return "".join(chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def __repr__(self):
        return f"Vocabulary({len(self)} characters)"


def unigram_entropy(ids, vocab_size=None):
    """Entropy in bits per character of the characters' frequencies in ``ids``:
    what a model that ignores context can reach at best."""
    ids = np.asarray(ids).reshape(-1)
    if ids.size == 0:
        raise DatasetError("unigram_entropy: no characters")
    counts = np.bincount(ids, minlength=vocab_size or 0).astype(np.float64)
    p = counts[counts > 0] / ids.size
    return float(-(p * np.log2(p)).sum())


def split_corpus(ids, val_fraction=0.05, test_fraction=0.05):
    """Contiguous ``(train, val, test)`` parts of ``ids`` (the last
    fractions; a part may be empty when its fraction is 0)."""
    ids = np.asarray(ids)
    n = len(ids)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"split_corpus: fractions must be in [0, 1) and sum below 1, got {val_fraction}, "
                         f"{test_fraction}")
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    if n_train < 2:
        raise DatasetError(f"the corpus of {n} characters is too short to split off validation and test text")
    return ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :]


def char_windows(ids, seq_len, stride=None):
    """Fixed-length windows: ``(x, y)`` of shape ``(W, seq_len)`` with
    ``y`` = ``x`` shifted by one character (the next-character targets).
    ``stride`` defaults to ``seq_len`` (non-overlapping windows)."""
    ids = np.asarray(ids)
    seq_len = _positive(seq_len, "seq_len")
    stride = seq_len if stride is None else _positive(stride, "stride")
    if len(ids) < seq_len + 1:
        raise DatasetError(f"a text of {len(ids)} characters is too short for one window of {seq_len} + 1")
    starts = np.arange(0, len(ids) - seq_len, stride)
    idx = starts[:, None] + np.arange(seq_len + 1)
    w = ids[idx]
    return w[:, :-1], w[:, 1:]


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class BPTTBatches:
    """Truncated-BPTT batches ``(x, y)`` of shape ``(batch_size, T)`` (int64
    ids; ``y`` is ``x`` shifted by one character) over ``batch_size``
    contiguous streams, ``T = seq_len`` (the last window may be shorter).

    Row ``r`` of window ``k + 1`` continues row ``r`` of window ``k``, so a
    recurrent model may carry its hidden state across windows (``stateful``).
    With ``random_offset`` each epoch starts its streams a random 0 ..
    ``seq_len - 1`` characters later (seeded by ``(seed, epoch)``), so the
    window boundaries move between epochs; ``set_epoch(e)`` picks the epoch
    (``fit`` calls it). Iterating is deterministic for a given epoch.

    Args:
        ids: the corpus as integer ids.
        batch_size: streams (batch rows); seq_len: window length.
        random_offset: shift the streams per epoch; seed: its seed.
    """

    stateful = True

    def __init__(self, ids, batch_size, seq_len, *, random_offset=False, seed=0):
        self.ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self.batch_size = _positive(batch_size, "batch_size")
        self.seq_len = _positive(seq_len, "seq_len")
        self.random_offset = bool(random_offset)
        self.seed = int(seed)
        self.epoch = 0
        if len(self.ids) // self.batch_size < 2 + (self.seq_len if self.random_offset else 0):
            raise DatasetError(
                f"a text of {len(self.ids)} characters is too short for {self.batch_size} streams "
                f"(each needs at least {2 + (self.seq_len if self.random_offset else 0)} characters): "
                "use a smaller --batch-size or a longer text"
            )

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def _streams(self):
        """``(batch_size, L)`` contiguous streams for the current epoch."""
        offset = 0
        if self.random_offset:
            offset = int(np.random.default_rng([self.seed, self.epoch]).integers(self.seq_len))
        ids = self.ids[offset:]
        per_row = len(ids) // self.batch_size
        return ids[: per_row * self.batch_size].reshape(self.batch_size, per_row)

    def _per_row(self):
        return (len(self.ids) - (self.seq_len - 1 if self.random_offset else 0)) // self.batch_size

    def __len__(self):
        # windows over per_row - 1 targets; the same for every offset (the shortest case)
        return -(-(self._per_row() - 1) // self.seq_len)

    def __iter__(self):
        streams = self._streams()
        n = len(self)
        for k in range(n):
            lo = k * self.seq_len
            hi = min(lo + self.seq_len, streams.shape[1] - 1)
            yield streams[:, lo:hi], streams[:, lo + 1 : hi + 1]
        self.epoch += 1

    @property
    def num_tokens(self):
        """Target characters per epoch (for the offset 0)."""
        return (self._per_row() - 1) * self.batch_size

    def __repr__(self):
        return (f"BPTTBatches({len(self.ids):,} ids, batch_size={self.batch_size}, seq_len={self.seq_len}, "
                f"random_offset={self.random_offset})")


def bits(nats):
    """Nats (a cross-entropy loss) in bits."""
    return nats / math.log(2.0)
