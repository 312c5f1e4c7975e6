"""Data-parallel ``fit``: ``DistributedTrainer`` and ``nnumpy.distributed.fit``.

``nnumpy.distributed.fit(model, criterion, optimizer, (X, y), ...)`` takes
the arguments of ``nnumpy.fit`` (and ``sync_batchnorm``) and trains over the
ranks of ``mpiexec -n K``; in one plain process it trains exactly like
``nnumpy.fit``.
"""

import functools
import sys

from ..data import num_examples, take
from ..io import load_checkpoint
from ..training import Trainer, is_array_pair
from ..training import fit as _single_process_fit
from .batchnorm import sync_batchnorm
from .collectives import (
    DistributedOptimizer,
    allreduce_buffers,
    allreduce_sum,
    broadcast_object,
    broadcast_parameters,
    gather_object,
)
from .comm import is_distributed, is_main, rank, share_cores, size
from .rngs import decorrelate_rngs, rng_states, set_rng_states
from .sampler import ShardedLoader, shard_bounds

__all__ = ["DistributedTrainer", "fit"]


class GlobalBatchAugment:
    """Apply a batch augmentation ``(xb, rng) -> xb`` to the whole global batch
    and keep this rank's slice, so the augmented samples (and the training)
    do not depend on the number of ranks. Augmentation is cheap next to a
    train step; each rank repeats it for the K-1 slices it does not use."""

    def __init__(self, augment, loader):
        self.augment, self.loader = augment, loader

    def __call__(self, xb, rng):
        loader = self.loader
        return take(self.augment(take(loader.X, loader.global_index), rng), loader.local_slice)


class AverageBuffers:
    """Per-rank BatchNorm: average the running statistics over ranks at the
    end of every epoch, before checkpoints are written (validation, which
    ``fit`` runs before the epoch-end callbacks, sees each rank's own)."""

    order = -100

    def on_epoch_end(self, trainer, epoch, logs):
        allreduce_buffers(trainer.model)


class DistributedTrainer(Trainer):
    """``Trainer`` for data-parallel training (``nnumpy.distributed.fit``) under
    ``mpiexec -n K``; with one process it trains exactly like ``Trainer``.

    * the training data is a ``ShardedLoader`` (global ``batch_size``,
      the same ``(seed, epoch)`` order as ``nnumpy.data.DataLoader``);
      augmentation runs on the global batch, so it is K-independent too;
    * parameters are broadcast from rank 0, BatchNorm is synchronised
      (``sync_batchnorm=False``: per-rank statistics, running statistics
      averaged at the end of each epoch), gradients averaged before any
      ``on_before_step`` callback (gradient clipping sees the global
      gradient);
    * the step loss, epoch metrics and validation metrics are reduced over
      ranks (each rank evaluates a 1/K shard of the validation data);
    * only rank 0 prints and writes; a checkpoint holds every rank's RNG
      states (``extra["distributed"]``), restored per rank on resume, and
      is read by rank 0 and broadcast (no shared file system needed);
    * Ctrl-C (``mpiexec`` forwards it to every rank) is agreed on at the
      next step, so all ranks stop after the same batch.
    """

    def __init__(self, model, criterion=None, optimizer=None, *, sync_batchnorm=True, **kwargs):
        if optimizer is not None and not isinstance(optimizer, DistributedOptimizer):
            optimizer = DistributedOptimizer(optimizer)
        super().__init__(model, criterion, optimizer, **kwargs)
        share_cores()
        self.sync_batchnorm = bool(sync_batchnorm)
        self._train_loader = None
        self._next_loader_trains = False  # set by fit: its first make_loader call is for training
        self._stop_agreed = False  # the ranks agreed to stop at this batch boundary (Ctrl-C on some rank)

    @property
    def is_main_process(self):
        return is_main()

    def make_loader(self, data, batch_size, shuffle=False, drop_last=False):
        seed = self.seed
        if not is_array_pair(data):
            if isinstance(data, ShardedLoader):
                return data
            x, y = getattr(data, "x", None), getattr(data, "y", None)
            if x is None:
                raise TypeError(
                    f"nnumpy.distributed.fit: data must be (X, y) arrays (or an nnumpy DataLoader over "
                    f"arrays) so each rank can take its share, got {type(data).__name__}"
                )
            # a DataLoader's own batch size, shuffle and seed: the order it would have given
            batch_size, shuffle = getattr(data, "batch_size", batch_size), getattr(data, "shuffle", shuffle)
            seed = getattr(data, "seed", seed)
            data = (x, y)
        x, y = data
        n = num_examples(x, "nnumpy.distributed.fit")
        if n != len(y):
            raise ValueError(f"fit: X has {n} samples but y has {len(y)}")
        if self._next_loader_trains:
            self._next_loader_trains = False
            loader = ShardedLoader(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
            self._train_loader = loader
            if self.augment is not None:
                self.augment = GlobalBatchAugment(self.augment, loader)
            return loader
        lo, hi = shard_bounds(n, size(), rank())  # evaluation: a contiguous 1/K shard, reduced later
        return super().make_loader((take(x, slice(lo, hi)), y[lo:hi]), batch_size)

    def reduce_metrics(self, sums):
        return allreduce_sum(sums)

    def loss_gradient(self, out, target):
        # scaled for an uneven last batch, so the averaged gradient is the global batch's
        grad = self.criterion.backward(out, target)
        scale = self._train_loader.grad_scale if self._train_loader is not None else 1.0
        return grad * scale if scale != 1.0 else grad

    def after_backward(self, loss, batch_size):
        # gradients averaged before the callbacks see them; the loss and Ctrl-C agreed
        self.optimizer.synchronize()
        stop = self.stop_requested
        if is_distributed():
            total, count, stop = allreduce_sum([loss * batch_size, batch_size, stop])
            loss = float(total / count)
        self._stop_agreed = self._stop_agreed or stop > 0
        return loss

    def should_interrupt(self):
        # Ctrl-C: Trainer's signal handler sets ``stop_requested`` on the ranks it
        # reaches, which here only records a request; the loop stops when the ranks
        # agreed on it at the last step, so every rank stops after the same batch.
        return self._stop_agreed

    def save_checkpoint(self, path):
        # collectives first: every rank gets here
        states = gather_object(rng_states(self.model))
        sums = None if self.epoch_sums is None else allreduce_sum(self.epoch_sums).tolist()  # a mid-epoch stop
        if not self.is_main_process:
            return
        self.extra["distributed"] = {"ranks": size(), "rng_states": states}
        wrapper, local_sums = self.optimizer, self.epoch_sums
        # the file records the wrapped optimizer's class and state, and the epoch's global sums
        self.optimizer, self.epoch_sums = getattr(wrapper, "optimizer", wrapper), sums
        try:
            super().save_checkpoint(path)
        finally:
            self.optimizer, self.epoch_sums = wrapper, local_sums

    def restore(self, checkpoint):
        if not hasattr(checkpoint, "model"):
            checkpoint = broadcast_object(load_checkpoint(checkpoint) if is_main() else None)
        ckpt = super().restore(checkpoint)
        if self.epoch_sums is not None and rank():  # the saved running sums are global: count them once
            self.epoch_sums = [0.0] * len(self.epoch_sums)
        saved = (ckpt.extra or {}).get("distributed", {}).get("rng_states")
        if saved:
            if len(saved) != size() and is_main():
                print(
                    f"note: the checkpoint was written by {len(saved)} ranks, resuming on {size()}: the "
                    f"ranks' random streams (Dropout masks) will not follow the original run's",
                    file=sys.stderr,
                )
            if rank() < len(saved):
                set_rng_states(saved[rank()], self.model)
        return ckpt

    def fit(self, train_data, val_data=None, epochs=10, batch_size=128, **kwargs):
        if batch_size % size():
            raise ValueError(
                f"nnumpy.distributed.fit: the global batch size {batch_size} is not divisible by the "
                f"number of ranks {size()}; use a multiple of {size()} (each rank gets batch_size / {size()})"
            )
        self._train_loader, self._next_loader_trains, self._stop_agreed = None, True, False
        decorrelate_rngs(self.model)
        broadcast_parameters(self.model)
        sync_batchnorm(self.model, self.sync_batchnorm)
        if not self.sync_batchnorm and not any(isinstance(cb, AverageBuffers) for cb in self.callbacks):
            self.callbacks = sorted([*self.callbacks, AverageBuffers()], key=lambda cb: getattr(cb, "order", 0))
        try:
            return super().fit(train_data, val_data, epochs=epochs, batch_size=batch_size, **kwargs)
        finally:
            sync_batchnorm(self.model, enabled=False)


def fit(model, criterion, optimizer, train_data, *, sync_batchnorm=True, **kwargs):
    """``nnumpy.fit`` data-parallel over the MPI ranks of ``mpiexec -n K``
    (``DistributedTrainer``); returns the ``History``.

    Takes every argument of ``nnumpy.fit``. ``train_data`` and ``val_data``
    must be ``(X, y)`` arrays (or an nnumpy ``DataLoader`` over arrays) so
    each rank can take its share; ``batch_size`` is the GLOBAL batch (a
    multiple of K), so the same command trains the same with any K. BatchNorm
    statistics are computed over the global batch (``sync_batchnorm=False``:
    per rank, running statistics averaged after each epoch). Only rank 0
    prints and writes files. With one process it trains exactly like
    ``nnumpy.fit``.

    Example (one process; the same script runs under ``mpiexec -n 2``):
        >>> import numpy as np, nnumpy, nnumpy.distributed as dist
        >>> X = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int64)
        >>> net = nnumpy.Sequential(nnumpy.Linear(2, 8, rng=0), nnumpy.ReLU(), nnumpy.Linear(8, 2, rng=1))
        >>> h = dist.fit(net, None, "adam", (X, y), epochs=3, batch_size=64, lr=0.05, verbose=False)
        >>> h.epochs
        3
    """
    trainer = functools.partial(DistributedTrainer, sync_batchnorm=sync_batchnorm)
    return _single_process_fit(model, criterion, optimizer, train_data, trainer=trainer, **kwargs)
