"""Character language models on the command line: ``nnumpy train --model
charlm [--arch lstm|transformer] [--dataset TEXTFILE]``, ``nnumpy generate``
and ``nnumpy evaluate`` of a character model.

Training reads the corpus (default: Debian's fortunes), builds the character
vocabulary (saved in the model file, so ``generate`` needs no corpus),
splits off the last 5 % + 5 % of the text for validation and test and trains
with truncated BPTT: 32 contiguous streams read ``--seq-len`` characters at a
time; the LSTM carries its state from one window to the next (gradients stop
at the window boundary); the Transformer sees each window on its own (causal).
Every epoch prints the loss, the bits per character (bpc = loss / ln 2) and a
sample; the unigram entropy of the corpus is the bar to beat.
"""

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .. import backend
from ..criteria import CrossEntropyCriterion
from ..data import DatasetError
from ..data.text import BPTTBatches, Vocabulary, load_text, split_corpus, unigram_entropy
from ..io import atomic_write, load_checkpoint, save_model
from ..layers import GRU, LSTM, RNN
from ..models import CHAR_ARCHS, RECIPES, Recipe, make_schedule
from ..plots import plot_history
from ..training import Callback, ModelCheckpoint, Trainer, fit, get_optimizer
from .common import EXIT_INTERRUPTED, CommandError, float_in, int_at_least, load_any, printer

__all__ = [
    "add_train_options",
    "add_generate_parser",
    "cmd_train_charlm",
    "cmd_generate",
    "evaluate_charlm",
    "is_char_model",
    "generate",
    "CharLMTrainer",
]

LN2 = math.log(2.0)
VAL_FRACTION = TEST_FRACTION = 0.05
DEFAULT_SEQ_LEN = {"lstm": 64, "transformer": 128}
DEFAULT_MAX_CHARS = 0  # all the training text (fortunes: 2.3 million characters, about 2 minutes an epoch on 2 cores)
SAMPLE_EVERY = 400  # optimizer steps between the samples printed in an epoch (and one at each epoch's end)


# ---------------------------------------------------------------- option types
_finite_non_negative = float_in(0.0)


def add_train_options(train):
    """``nnumpy train``'s options for the character model."""
    group = train.add_argument_group("character model (--model charlm)")
    group.add_argument("--arch", choices=sorted(CHAR_ARCHS), default="lstm", help="charlm body (default lstm)")
    group.add_argument(
        "--seq-len", type=int_at_least(1), help="characters per window (truncated BPTT; lstm 64, transformer 128)"
    )
    group.add_argument(
        "--max-chars",
        type=int_at_least(0),
        help="train on the first N characters of the training text (default 0: all of it)",
    )


def add_generate_parser(sub):
    """The ``nnumpy generate`` subcommand."""
    gen = sub.add_parser("generate", help="sample text from a character model (nnumpy train --model charlm)")
    gen.add_argument("model", help="model.npz or checkpoint.npz of a character model")
    gen.add_argument("--prompt", default=None, help="text to continue (default: a new line)")
    gen.add_argument("--length", type=int_at_least(1), default=300, help="characters to generate (default 300)")
    gen.add_argument(
        "--temperature", type=_finite_non_negative, default=0.8, help="softmax temperature; 0: greedy (default 0.8)"
    )
    gen.add_argument("--top-k", type=int_at_least(0), default=0, help="sample among the k likeliest (0: all)")
    gen.add_argument("--seed", type=int_at_least(0), default=None, help="seed of the sampling (default: random)")
    gen.add_argument("--threads", type=int_at_least(1), help="nnumpy kernel and BLAS threads (default: all CPUs)")
    gen.set_defaults(func=cmd_generate)
    return gen


# ---------------------------------------------------------------- the model's parts
def _recurrent_parts(model):
    """``(embedding, rnn, head)`` when ``model`` is ``char_lstm``'s layout
    (Embedding, RNN with return_state, SelectTable(0), head), else None."""
    mods = getattr(model, "modules", None)
    if not isinstance(mods, list) or len(mods) != 4:
        return None
    emb, rnn, _, head = mods
    if isinstance(rnn, (LSTM, GRU, RNN)) and rnn.return_state and rnn.batch_first:
        return emb, rnn, head
    return None


def _max_len(model):
    """The longest window a model takes (its positional table), or None."""
    for m in model.modules if hasattr(model, "modules") else ():
        if hasattr(m, "max_len"):
            return int(m.max_len)
    return None


class CharLMTrainer(Trainer):
    """``Trainer`` for next-character prediction on ``BPTTBatches``: logits
    ``(N, T, V)`` against ids ``(N, T)``; a recurrent model's state carries from
    one window to the next within an epoch (and in ``evaluate``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state = None

    def set_epoch(self, loader, epoch):
        super().set_epoch(loader, epoch)
        self.state = None  # each epoch starts its streams afresh

    def _forward(self, xb, state):
        """``(logits, new_state, backward)``: ``backward(g)`` runs the model's backward."""
        parts = _recurrent_parts(self.model)
        if parts is None:
            out = self.model.forward(xb)
            return out, None, lambda g: self.model.backward(xb, g)
        emb, rnn, head = parts
        e = emb.forward(xb)
        inp = e if state is None else (e, state)
        seq, new_state = rnn.forward(inp)
        out = head.forward(seq)
        new_state = tuple(np.array(s) for s in new_state) if isinstance(new_state, tuple) else np.array(new_state)

        def backward(g):
            g_seq = head.backward(seq, g)
            g_in = rnn.backward(inp, (g_seq, None))
            emb.backward(xb, g_in if state is None else g_in[0])

        return out, new_state, backward

    def train_step(self, xb, yb):
        self.optimizer.zero_grad()
        out, self.state, backward = self._forward(xb, self.state)
        logits, target = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
        loss = self.criterion.forward(logits, target)
        backward(self.criterion.backward(logits, target).reshape(out.shape))
        loss = self.after_backward(float(loss), len(xb))
        check = getattr(self, "check_loss", None)
        if check is not None:
            check(loss, self.batch_in_epoch)
        self._callback("on_before_step")
        self._in_step = True
        self.optimizer_step()
        self._in_step = False
        return loss, out

    @staticmethod
    def _correct(out, yb):
        # in rows (fit counts a batch as len(xb) rows): the row's fraction of characters predicted
        return float(np.count_nonzero(out.argmax(axis=-1) == yb)) / max(yb.shape[-1], 1)

    def evaluate(self, data, batch_size=None, return_predictions=False):
        """Mean loss (nats per character) and next-character accuracy over ``data`` (a ``BPTTBatches``)."""
        total = correct = count = 0.0
        state = None
        with self.model.preserved_modes():
            self.model.evaluate()
            for xb, yb in data:
                out, state, _ = self._forward(xb, state)
                n = yb.size
                total += float(self.criterion.forward(out.reshape(-1, out.shape[-1]), yb.reshape(-1))) * n
                correct += float(np.count_nonzero(out.argmax(axis=-1) == yb))
                count += n
        count = max(count, 1.0)
        return {"loss": total / count, "accuracy": correct / count}


# ---------------------------------------------------------------- sampling
def _sample(logits, temperature, top_k, rng):
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits / temperature
    if top_k and top_k < z.size:
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -np.inf)
    z = np.exp(z - z.max())
    return int(rng.choice(z.size, p=z / z.sum()))


def generate(model, vocab, prompt, length, temperature=0.8, top_k=0, rng=None):
    """``prompt`` continued by ``length`` sampled characters (the new ones only).

    The LSTM reads the prompt once and then one character at a time,
    carrying its state; the Transformer reads the last ``max_len`` characters
    for every new one. ``temperature`` 0 is greedy; ``top_k`` > 0 samples
    among the k likeliest characters."""
    if not prompt:
        raise CommandError("the prompt is empty: give at least one character (--prompt)")
    rng = np.random.default_rng(rng)
    ids = list(vocab.encode(prompt))
    parts = _recurrent_parts(model)
    window = _max_len(model)
    new = []
    with model.preserved_modes():
        model.evaluate()
        if parts is not None:
            emb, rnn, head = parts
            state = None
            x = np.asarray(ids, dtype=np.int64)[None]
            for _ in range(length):
                e = emb.forward(x)
                seq, state = rnn.forward(e if state is None else (e, state))
                nxt = _sample(head.forward(seq[:, -1:])[0, -1], temperature, top_k, rng)
                new.append(nxt)
                x = np.asarray([[nxt]], dtype=np.int64)
        else:
            for _ in range(length):
                ctx = np.asarray(ids[-window:] if window else ids, dtype=np.int64)[None]
                nxt = _sample(model.forward(ctx)[0, -1], temperature, top_k, rng)
                ids.append(nxt)
                new.append(nxt)
    return vocab.decode(new)


class _EpochReport(Callback):
    """Prints bpc and a sample after every epoch and every ``SAMPLE_EVERY`` steps (on the main process)."""

    def __init__(self, vocab, say, prompt, sample_length, seed, chars_per_epoch, windows):
        self.vocab, self.say, self.prompt = vocab, say, prompt
        self.chars_per_epoch, self.windows = chars_per_epoch, windows
        self.sample_length, self.seed = sample_length, seed
        self._start = None

    def on_epoch_begin(self, trainer, epoch):
        self._start = time.perf_counter()

    def on_batch_end(self, trainer, step, logs):
        sums = trainer.epoch_sums
        if not self.sample_length or step % SAMPLE_EVERY or sums is None or trainer.batch_in_epoch >= self.windows:
            return
        self.say(f"step {step}: train {sums[0] / max(sums[2], 1) / LN2:.3f} bpc so far this epoch")
        self._print_sample(trainer, [self.seed, step])

    def _print_sample(self, trainer, seed):
        text = generate(trainer.model, self.vocab, self.prompt, self.sample_length, 0.8, 0, seed)
        self.say("sample:\n  " + (self.prompt + text).strip("\n").replace("\n", "\n  "))

    def on_epoch_end(self, trainer, epoch, logs):
        parts = [f"epoch {epoch + 1}: train {logs['loss'] / LN2:.3f} bpc"]
        if logs.get("val_loss") is not None:
            parts.append(f"val {logs['val_loss'] / LN2:.3f} bpc")
        if self._start is not None:
            seconds = time.perf_counter() - self._start
            parts.append(f"{seconds:.0f} s ({self.chars_per_epoch / max(seconds, 1e-9):,.0f} characters/s)")
        self.say("  ".join(parts))
        if self.sample_length:
            self._print_sample(trainer, [self.seed, epoch])


# ---------------------------------------------------------------- train
def _write_json(path, obj):
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1)


def _corpus(config, vocab=None):
    """``(vocab, train, val, test, description)`` for a run's settings."""
    text, description = load_text(config["dataset"])
    vocab = vocab or Vocabulary.from_text(text)
    ids = vocab.encode(text)
    train, val, test = split_corpus(ids, VAL_FRACTION, TEST_FRACTION)
    if config.get("max_chars"):
        train = train[: config["max_chars"]]
    return vocab, train, val, test, description


def _lm_config(args, ckpt):
    if ckpt is not None:
        config = (ckpt.extra or {}).get("cli")
        if not config or config.get("model") != "charlm":
            raise CommandError(f"{args.resume}: not a checkpoint of 'nnumpy train --model charlm'")
        if args.epochs:
            config["recipe"]["epochs"] = args.epochs
        return config
    base = RECIPES["charlm"]
    recipe = base.replace(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
    )
    if args.arch == "transformer" and args.weight_decay is None:
        recipe = recipe.replace(weight_decay=0.05)
    max_chars = DEFAULT_MAX_CHARS if args.max_chars is None else args.max_chars
    return {
        "model": "charlm",
        "arch": args.arch,
        "dataset": str(Path(args.dataset).resolve()) if args.dataset and Path(args.dataset).exists() else args.dataset,
        "seed": args.seed,
        "seq_len": args.seq_len or DEFAULT_SEQ_LEN[args.arch],
        "max_chars": max_chars,
        "recipe": recipe.to_dict(),
    }


def cmd_train_charlm(args):
    if args.distributed:
        raise CommandError("--model charlm does not train data-parallel (--distributed) yet")
    for option, value in (("--augment", args.augment), ("--label-smoothing", args.label_smoothing)):
        if value is not None:
            raise CommandError(f"{option} does not apply to --model charlm")
    say = printer(not args.quiet)
    ckpt = load_checkpoint(args.resume) if args.resume else None
    config = _lm_config(args, ckpt)
    recipe = Recipe(**config["recipe"])
    saved_vocab = Vocabulary.from_list(config["vocab"]) if ckpt is not None else None
    vocab, train_ids, val_ids, test_ids, description = _corpus(config, saved_vocab)
    config["vocab"] = vocab.to_list()
    seq_len, batch = config["seq_len"], recipe.batch_size
    unigram = unigram_entropy(train_ids, len(vocab))
    print(f"data: {description}; vocabulary {len(vocab)} characters; train {len(train_ids):,}, "
          f"val {len(val_ids):,}, test {len(test_ids):,} characters; unigram entropy {unigram:.3f} bits/char",
          flush=True)
    train_batches = BPTTBatches(train_ids, batch, seq_len, random_offset=True, seed=config["seed"])
    eval_rows = max(1, min(batch, len(val_ids) // (seq_len + 1)))
    val_batches = BPTTBatches(val_ids, eval_rows, seq_len) if len(val_ids) >= 2 * eval_rows else None

    out = Path(args.out) if args.out else (
        Path(args.resume).resolve().parent if args.resume else Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.npz"
    if ckpt is not None:
        model = ckpt.model
        say(f"resuming {args.resume} at epoch {ckpt.epoch} (step {ckpt.step}) of {recipe.epochs}")
    else:
        backend.manual_seed(config["seed"])
        builder = CHAR_ARCHS[config["arch"]]
        options = {"max_len": seq_len} if config["arch"] == "transformer" else {}
        model = builder(len(vocab), rng=config["seed"], **options)
    say(repr(model))
    say(f"parameters: {model.num_parameters:,}")
    say(f"recipe: {recipe.optimizer} lr {recipe.lr:g} weight decay {recipe.weight_decay:g}, {recipe.schedule} "
        f"schedule, {batch} streams x {seq_len} characters, {len(train_batches)} windows per epoch, "
        f"{recipe.epochs} epochs, gradient clipping 1.0")
    say(f"output: {out}")

    optimizer = get_optimizer(recipe.optimizer, model, lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = make_schedule(recipe, optimizer, len(train_batches))
    prompt = "\n" if "\n" in vocab else vocab.chars[0]
    report = _EpochReport(vocab, say, prompt, 0 if args.quiet else 240, config["seed"], train_batches.num_tokens,
                          len(train_batches))
    callbacks = [c for c in (schedule, ModelCheckpoint(checkpoint_path), report) if c is not None]
    history = fit(
        model,
        CrossEntropyCriterion(),
        optimizer,
        train_batches,
        val_data=val_batches,
        epochs=recipe.epochs,
        callbacks=callbacks,
        seed=config["seed"],
        verbose=not args.quiet,
        clip_grad_norm=1.0,
        resume=ckpt,
        extra={"cli": config},
        trainer=CharLMTrainer,
    )
    record = history.to_dict()
    record["bpc"] = [v / LN2 for v in record["loss"]]
    record["val_bpc"] = [v / LN2 for v in record.get("val_loss", [])]
    record["unigram_bpc"] = unigram
    if history.interrupted:
        _write_json(out / "history.json", record)
        print(f"interrupted; resume with: nnumpy train --model charlm --resume {checkpoint_path}", file=sys.stderr)
        return EXIT_INTERRUPTED

    test = None
    if len(test_ids) >= 2:
        rows = max(1, min(batch, len(test_ids) // (seq_len + 1)))
        test = CharLMTrainer(model, CrossEntropyCriterion(), verbose=False).evaluate(
            BPTTBatches(test_ids, rows, seq_len))
        record["test_loss"], record["test_bpc"] = test["loss"], test["loss"] / LN2
    metadata = {
        "kind": "charlm",
        "arch": config["arch"],
        "vocab": vocab.to_list(),
        "seq_len": seq_len,
        "corpus": config["dataset"],
        "dataset": description,
        "max_chars": config["max_chars"],
        "recipe": config["recipe"],
        "model": "charlm",
        "unigram_bpc": unigram,
        "test_bpc": None if test is None else test["loss"] / LN2,
        "epochs": history.epochs,
    }
    save_model(model, out / "model.npz", input_shape=(seq_len,), metadata=metadata)
    _write_json(out / "history.json", record)
    curves = plot_history(history, out / "curves.png", title=f"charlm ({config['arch']}) on {description}")
    if test is not None:
        print(f"test {test['loss'] / LN2:.3f} bits per character (loss {test['loss']:.4f}, next-character accuracy "
              f"{test['accuracy']:.1%}); unigram entropy {unigram:.3f}", flush=True)
    written = ["model.npz", "checkpoint.npz", "history.json"] + ([Path(curves).name] if curves else [])
    print(f"wrote {', '.join(written)} to {out}", flush=True)
    return 0


# ---------------------------------------------------------------- generate / evaluate
def _lm_info(meta, path):
    """The settings a character model was saved with (model file or checkpoint)."""
    info = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    cli = extra.get("cli") if isinstance(extra.get("cli"), dict) else {}
    found = info if info.get("kind") == "charlm" else (cli if cli.get("model") == "charlm" else None)
    if found is None or "vocab" not in found:
        raise CommandError(f"{path}: not a character model (no vocabulary saved; train one with --model charlm)")
    try:
        vocab = Vocabulary.from_list(found["vocab"])
    except DatasetError as error:
        raise CommandError(f"{path}: its saved vocabulary is malformed ({error})") from None
    return found, vocab


def is_char_model(meta):
    info = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    cli = extra.get("cli") if isinstance(extra.get("cli"), dict) else {}
    return info.get("kind") == "charlm" or cli.get("model") == "charlm"


def cmd_generate(args):
    model, meta = load_any(args.model)
    _, vocab = _lm_info(meta, args.model)
    prompt = args.prompt if args.prompt is not None else ("\n" if "\n" in vocab else vocab.chars[0])
    try:
        text = generate(model, vocab, prompt, args.length, args.temperature, args.top_k, args.seed)
    except DatasetError as error:
        raise CommandError(f"--prompt: {error}") from None
    sys.stdout.write(prompt + text + "\n")
    return 0


def evaluate_charlm(args, model, meta):
    """``nnumpy evaluate`` of a character model: bits per character on the test text."""
    info, vocab = _lm_info(meta, args.checkpoint)
    source = info.get("corpus") if "kind" in info else info.get("dataset")  # model file / checkpoint
    config = {"dataset": args.dataset if args.dataset is not None else source, "max_chars": info.get("max_chars")}
    _, _, _, test_ids, description = _corpus(config, vocab)
    seq_len = int(info.get("seq_len") or 64)
    batch = int((info.get("recipe") or {}).get("batch_size") or 32)
    rows = max(1, min(batch, len(test_ids) // (seq_len + 1)))  # the streams of the test during training
    if len(test_ids) < 2 * rows:
        raise CommandError(f"{description}: too little test text to evaluate")
    result = CharLMTrainer(model, CrossEntropyCriterion(), verbose=False).evaluate(BPTTBatches(test_ids, rows, seq_len))
    unigram = unigram_entropy(test_ids, len(vocab))
    print(f"data: {description} (test: the last {TEST_FRACTION:.0%}, {len(test_ids):,} characters)")
    print(f"test {result['loss'] / LN2:.3f} bits per character (loss {result['loss']:.4f} nats, next-character "
          f"accuracy {result['accuracy']:.1%}); unigram entropy of the test text {unigram:.3f} bits")
    return 0
