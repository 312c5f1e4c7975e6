"""``History``: what ``fit`` measured, per epoch and per step."""

__all__ = ["History"]


class History:
    """What ``fit`` measured.

    Per epoch (lists, Keras' ``history.history`` keys): ``loss``, ``accuracy``
    (training, averaged over the epoch's batches as they were trained),
    ``val_loss``, ``val_accuracy`` (empty without validation data), ``lr``
    (the learning rate at the start of the epoch), ``samples_per_s`` (training
    throughput). Per step: ``step_loss``. After a final test: ``test_loss``,
    ``test_accuracy`` (None until set). ``interrupted`` is True when Ctrl-C
    ended ``fit``.

    ``history["loss"]`` and ``history.loss`` both work; ``to_dict()`` gives
    exactly the keys of ``history.json``.
    """

    EPOCH_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s")

    def __init__(self):
        for key in self.EPOCH_KEYS:
            setattr(self, key, [])
        self.step_loss = []
        self.test_loss = None
        self.test_accuracy = None
        self.interrupted = False

    def append(self, logs):
        """Record one epoch's ``logs`` (keys of ``EPOCH_KEYS``; missing or None are skipped)."""
        for key in self.EPOCH_KEYS:
            if logs.get(key) is not None:
                getattr(self, key).append(float(logs[key]))

    @property
    def epochs(self):
        return len(self.loss)

    @property
    def history(self):
        """The per-epoch lists as a dict (Keras' ``History.history``)."""
        return {key: getattr(self, key) for key in self.EPOCH_KEYS}

    def __getitem__(self, key):
        return self.to_dict()[key]

    def __len__(self):
        return self.epochs

    def to_dict(self):
        data = {key: list(getattr(self, key)) for key in self.EPOCH_KEYS}
        data["step_loss"] = list(self.step_loss)
        data["test_loss"] = self.test_loss
        data["test_accuracy"] = self.test_accuracy
        return data

    @classmethod
    def from_dict(cls, data):
        history = cls()
        for key in (*cls.EPOCH_KEYS, "step_loss"):
            setattr(history, key, [float(v) for v in (data or {}).get(key, [])])
        history.test_loss = (data or {}).get("test_loss")
        history.test_accuracy = (data or {}).get("test_accuracy")
        return history

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={self.epochs}, steps={len(self.step_loss)}, last={last})"
