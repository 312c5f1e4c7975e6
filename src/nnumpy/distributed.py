"""Data-parallel training over MPI (``mpi4py``), the Horovod / ChainerMN way.

Every process (rank) holds a full copy of the model, trains on its own slice
of each global batch, and after ``backward`` the gradients are averaged over
all ranks with ``Allreduce``, so every rank applies the same update and the
copies stay identical. Run a script under ``mpiexec -n K python script.py``;
the same script runs unchanged as one plain process (``size() == 1``, every
collective is a no-op, mpi4py need not be installed).

The pieces:

* ``rank()``, ``size()``, ``is_main()``, ``barrier()``, ``init()``: the
  communicator (``MPI.COMM_WORLD`` when launched by ``mpiexec``/``mpirun``);
* ``broadcast_parameters(model)``: rank 0's parameters and buffers everywhere;
* ``allreduce_gradients(model)``: packs the gradients into a few large
  contiguous buffers (one dtype each, at most ``bucket_bytes``) and averages
  them with one in-place ``Allreduce`` per buffer;
* ``DistributedOptimizer(optimizer)``: ``step()`` = average gradients + step;
* ``DistributedSampler`` / ``ShardedLoader``: the same permutation on every
  rank, each global batch split into contiguous per-rank slices;
* ``sync_batchnorm(model)``: BatchNorm statistics over the global batch;
* ``allreduce_sum``, ``weighted_mean``, ``allreduce_buffers``: metrics and
  per-rank statistics;
* ``gather_object`` / ``scatter_object``, ``rng_states`` /
  ``set_rng_states``: every rank's RNG state in rank 0's checkpoint;
* ``install_excepthook()`` / ``abort_on_error()``: an exception on one rank
  aborts the whole job (``comm.Abort``) instead of leaving the others blocked
  in a collective forever.

With the global batch split this way, the averaged gradient of K ranks equals
the gradient of the whole batch in one process (up to float rounding), so a
run with K ranks follows the single-process run step for step.

Example (runs as one process too)::

    import numpy as np, nnumpy as nn
    import nnumpy.distributed as dist

    dist.init()                                   # MPI + abort on error
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3), nn.LogSoftMax())
    dist.broadcast_parameters(model)
    opt = dist.DistributedOptimizer(nn.Adam(model, lr=1e-3))
    crit = nn.ClassNLLCriterion()
    X = np.random.default_rng(0).normal(size=(512, 20)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    loader = dist.ShardedLoader(X, y, batch_size=64, seed=0)   # global batch 64
    for epoch in range(3):
        loader.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            out = model.forward(xb)
            crit.forward(out, yb)
            model.backward(xb, crit.backward(out, yb) * loader.grad_scale)
            opt.step()
"""

import hashlib
import os
import shutil
import sys
import time
import traceback
import weakref
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import parallel
from .layers.normalization import _BatchStatistics
from .module import Module

__all__ = [
    "init",
    "get_comm",
    "rank",
    "size",
    "is_main",
    "is_distributed",
    "barrier",
    "launched_by_mpi",
    "find_mpiexec",
    "local_size",
    "threads_per_rank",
    "share_cores",
    "broadcast_parameters",
    "broadcast_object",
    "allreduce_gradients",
    "allreduce_buffers",
    "allreduce_sum",
    "weighted_mean",
    "parameters_digest",
    "check_parameters_in_sync",
    "DistributedOptimizer",
    "DistributedSampler",
    "grad_scale",
    "ShardedLoader",
    "sync_batchnorm",
    "gather_object",
    "scatter_object",
    "rng_states",
    "set_rng_states",
    "install_excepthook",
    "abort_on_error",
    "abort",
]

# environment variables set by MPI launchers (MPICH/Intel MPI hydra, Open MPI, PMIx, Slurm's PMI)
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")

_comm = None
DEFAULT_BUCKET_BYTES = 16 * 2**20


# ------------------------------------------------------------------ communicator
def launched_by_mpi():
    """True when this process was started by an MPI launcher (``mpiexec``, ``mpirun``, ``srun``)."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError(
            "nnumpy.distributed: this process was started by an MPI launcher but mpi4py is not "
            "installed; install it with: pip install 'nnumpy[mpi]'  (mpi4py and the mpich wheel)"
        ) from error
    return MPI


def get_comm():
    """The communicator in use, or None when running as one plain process.

    ``MPI.COMM_WORLD`` if the process was launched by ``mpiexec``/``mpirun``
    (or mpi4py.MPI is already imported); the one given to ``init(comm)``;
    None otherwise, so single-process code never initialises MPI.
    """
    global _comm
    if _comm is None and (launched_by_mpi() or "mpi4py.MPI" in sys.modules):
        _comm = _import_mpi().COMM_WORLD
    return _comm


def init(comm=None, abort_on_exception=True):
    """Return the communicator (None in one plain process), and make errors fatal to the job.

    Args:
        comm: an mpi4py communicator to use instead of ``MPI.COMM_WORLD``
            (e.g. a sub-communicator).
        abort_on_exception: when running on several ranks, install
            ``install_excepthook()`` so an uncaught exception on any rank
            aborts the whole job within seconds.

    MPI is initialised only when the process was started by an MPI launcher
    (or ``comm`` is given): the same script runs as one process without
    touching MPI. On several ranks, nnumpy's kernel threads are capped at
    ``threads_per_rank()`` (cores / ranks on this machine) unless
    ``NNUMPY_NUM_THREADS`` is set; BLAS threads are left to ``--threads`` or
    ``OMP_NUM_THREADS``.
    """
    global _comm
    if comm is not None:
        _comm = comm
    comm = get_comm()
    share_cores()
    if abort_on_exception and comm is not None and comm.Get_size() > 1:
        install_excepthook()
    return comm


def rank():
    """This process's rank (0 when not running under MPI)."""
    comm = get_comm()
    return comm.Get_rank() if comm is not None else 0


_this_rank = rank  # for functions with an argument called ``rank``


def size():
    """Number of processes (1 when not running under MPI)."""
    comm = get_comm()
    return comm.Get_size() if comm is not None else 1


def is_main():
    """True on rank 0, the process that prints, writes checkpoints and plots."""
    return rank() == 0


def is_distributed():
    """True when more than one process takes part."""
    return size() > 1


def barrier():
    """Wait until every rank gets here."""
    if is_distributed():
        get_comm().Barrier()


def local_size():
    """Number of ranks on this machine (1 without MPI)."""
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return 1
    for var in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def share_cores():
    """On several ranks, cap nnumpy's kernel threads at ``threads_per_rank()``
    (ranks sharing a machine split its cores), unless ``NNUMPY_NUM_THREADS`` is set."""
    if size() > 1 and not os.environ.get("NNUMPY_NUM_THREADS"):
        parallel.set_num_threads(min(parallel.get_num_threads(), threads_per_rank()), blas=False)


def threads_per_rank():
    """BLAS threads per rank that share this machine's cores without oversubscribing."""
    return max(1, (os.cpu_count() or 1) // local_size())


def find_mpiexec():
    """Path of the ``mpiexec`` to launch ranks with, or None.

    Looks next to the running Python first (the ``mpich`` wheel installs it in
    the virtual environment's ``bin``), then on ``PATH``.
    """
    for name in ("mpiexec", "mpirun"):
        candidate = Path(sys.executable).parent / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    return None


# ------------------------------------------------------------------ failure handling
def abort(code=1, message=None):
    """Print ``message`` (prefixed with the rank) and abort every rank of the job."""
    if message:
        print(f"[rank {rank()}/{size()}] {message}", file=sys.stderr, flush=True)
    _abort_comm(code)
    raise SystemExit(code)


def _abort_comm(code):
    comm = get_comm()
    if comm is not None and comm.Get_size() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.3)  # let mpiexec forward what this rank printed before it tears the job down
        comm.Abort(code)


def _abort_hook(exc_type, exc, tb):
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    prefix = f"[rank {rank()}/{size()}] "
    sys.stderr.write("".join(prefix + line + "\n" for line in text.rstrip("\n").split("\n")))
    sys.stderr.write(f"{prefix}aborting all ranks\n")
    _abort_comm(1)


def install_excepthook():
    """Make an uncaught exception on any rank print its traceback (prefixed
    with the rank) and ``Abort`` the communicator, so the other ranks, possibly
    blocked in a collective, end too and ``mpiexec`` exits non-zero.
    (``python -m mpi4py script.py`` does the same for scripts.)"""
    if sys.excepthook is not _abort_hook:
        sys.excepthook = _abort_hook


@contextmanager
def abort_on_error():
    """Context manager: any exception (or ``SystemExit`` with a non-zero code)
    inside the block aborts the whole job when running on several ranks.

    Use it around code whose errors are caught and turned into an exit code
    (a command-line tool), where ``sys.excepthook`` never sees them.
    """
    try:
        yield
    except SystemExit as error:
        if error.code not in (None, 0) and is_distributed():
            abort(error.code if isinstance(error.code, int) else 1, f"exiting with {error.code!r}")
        raise
    except BaseException:
        if is_distributed():
            _abort_hook(*sys.exc_info())
        raise


# ------------------------------------------------------------------ broadcasts
def _dtype_groups(arrays):
    groups = {}
    for a in arrays:
        groups.setdefault(np.dtype(a.dtype), []).append(a)
    return groups


def _unpack(buf, arrays):
    """Copy consecutive pieces of the flat ``buf`` back into ``arrays``, in place."""
    offset = 0
    for a in arrays:
        a[...] = buf[offset : offset + a.size].reshape(a.shape)
        offset += a.size


def broadcast_parameters(model, root=0):
    """Copy rank ``root``'s parameters and buffers into every rank's model, in place.

    Call it once after building the model (and after loading a checkpoint on
    ``root`` only), so every rank starts from the same weights. One ``Bcast``
    per dtype of a packed buffer.
    """
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return model
    arrays = [a for _, a in model.state_dict().items() if isinstance(a, np.ndarray) and a.size]
    for dtype, group in _dtype_groups(arrays).items():
        buf = np.concatenate([a.reshape(-1) for a in group]) if comm.Get_rank() == root else None
        if buf is None:
            buf = np.empty(sum(a.size for a in group), dtype=dtype)
        comm.Bcast(buf, root=root)
        _unpack(buf, group)
    return model


def broadcast_object(obj, root=0):
    """Rank ``root``'s picklable ``obj`` on every rank (e.g. a loaded optimizer state)."""
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return obj
    return comm.bcast(obj, root=root)


def gather_object(obj, root=0):
    """A list of every rank's ``obj`` on ``root`` (None elsewhere); ``[obj]`` in one process."""
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return [obj]
    return comm.gather(obj, root=root)


def scatter_object(objs, root=0):
    """Rank ``i`` receives ``objs[i]`` from ``root`` (``objs`` is ignored elsewhere)."""
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return objs[0]
    if comm.Get_rank() == root and len(objs) != comm.Get_size():
        raise ValueError(f"scatter_object: expected one object per rank ({comm.Get_size()}), got {len(objs)}")
    return comm.scatter(objs, root=root)


# ------------------------------------------------------------------ gradient averaging
class _Buckets:
    """Persistent packed buffers for a fixed list of gradient arrays: grouped by
    dtype, in order, into buffers of at most ``bucket_bytes`` (an array larger
    than that gets a buffer of its own)."""

    def __init__(self, grads, bucket_bytes):
        self.key = (_layout_key(grads), bucket_bytes)
        self.buckets = []  # (buffer, [(index, offset, size)])
        for dtype in _dtype_groups(grads):
            current, used = [], 0
            for i, g in enumerate(grads):
                if np.dtype(g.dtype) != dtype:
                    continue
                if current and (used + g.size) * dtype.itemsize > bucket_bytes:
                    self.buckets.append((np.empty(used, dtype=dtype), current))
                    current, used = [], 0
                current.append((i, used, g.size))
                used += g.size
            if current:
                self.buckets.append((np.empty(used, dtype=dtype), current))


_BUCKETS = weakref.WeakKeyDictionary()  # model -> _Buckets, reused while its gradients stay the same


def _layout_key(grads):
    return tuple((id(g), g.shape, np.dtype(g.dtype).str) for g in grads)


def allreduce_gradients(model, bucket_bytes=DEFAULT_BUCKET_BYTES):
    """Average the model's gradients over all ranks, in place.

    The gradients of every trainable leaf (``model.parameter_pairs()``) are
    packed into a few contiguous buffers (one dtype each, at most
    ``bucket_bytes`` each), summed with one in-place ``Allreduce`` per buffer,
    divided by the number of ranks and copied back. The buffers are kept
    between calls. Returns the model.

    The mean over ranks is the whole batch's gradient when every rank had the
    same number of samples; for an unevenly split batch, scale each rank's
    loss gradient by ``ShardedLoader.grad_scale`` before ``backward``.
    """
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return model
    from mpi4py import MPI

    grads = [g for _, g in model.parameter_pairs()]
    buckets = _BUCKETS.get(model)
    if buckets is None or buckets.key != (_layout_key(grads), bucket_bytes):
        buckets = _BUCKETS[model] = _Buckets(grads, bucket_bytes)
    scale = 1.0 / comm.Get_size()
    for buf, entries in buckets.buckets:
        for i, offset, n in entries:
            buf[offset : offset + n] = grads[i].reshape(-1)
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        buf *= scale
        for i, offset, n in entries:
            grads[i][...] = buf[offset : offset + n].reshape(grads[i].shape)
    return model


def allreduce_sum(values):
    """Sum numbers (or an array) over ranks; returns a float64 array (one ``Allreduce``)."""
    buf = np.array(values, dtype=np.float64)
    comm = get_comm()
    if comm is not None and comm.Get_size() > 1:
        from mpi4py import MPI

        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return buf


def weighted_mean(value, count):
    """The mean over all ranks of a per-rank mean ``value`` over ``count`` samples
    (e.g. a batch loss or accuracy): ``sum(value_k * count_k) / sum(count_k)``."""
    total, n = allreduce_sum([float(value) * count, count])
    return float(total / n) if n else float("nan")


def allreduce_buffers(model):
    """Average every floating buffer (e.g. per-rank BatchNorm running
    statistics) over ranks, in place, so rank 0's checkpoint and evaluation
    use the mean. Unnecessary with ``sync_batchnorm``, where they are equal."""
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return model
    from mpi4py import MPI

    arrays = [a for _, a in model.named_buffers() if a.dtype.kind == "f" and a.size]
    for group in _dtype_groups(arrays).values():
        buf = np.concatenate([a.reshape(-1) for a in group])
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        buf /= comm.Get_size()
        _unpack(buf, group)
    return model


def parameters_digest(model):
    """SHA-256 of every parameter's and buffer's bytes, in order."""
    h = hashlib.sha256()
    for name, a in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def check_parameters_in_sync(model):
    """Raise RuntimeError unless every rank's parameters and buffers are
    bitwise identical (compares SHA-256 digests; a debugging aid)."""
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return True
    digests = comm.allgather(parameters_digest(model))
    if len(set(digests)) != 1:
        groups = [[r for r, x in enumerate(digests) if x == d] for d in dict.fromkeys(digests)]
        raise RuntimeError(f"parameters differ across ranks; ranks with equal parameters: {groups}")
    return True


class DistributedOptimizer:
    """Wrap any nnumpy optimizer: ``step()`` averages the gradients over ranks
    (``allreduce_gradients``) and then runs the wrapped optimizer's step.

    Everything else passes through: ``zero_grad()``, ``state_dict()``,
    ``load_state_dict()``, and hyper-parameters (``opt.lr = 1e-4`` sets the
    wrapped optimizer's ``lr``, so learning-rate schedules work unchanged).

    To act on the averaged gradients before the update (gradient clipping by
    the global norm), call ``synchronize()`` first: the next ``step()`` then
    does not reduce again (Horovod's protocol).

    Args:
        optimizer: an optimizer built on the model (``Adam(model, ...)``).
        bucket_bytes: largest packed buffer in bytes (16 MiB).

    Example:
        >>> import nnumpy as nn, nnumpy.distributed as dist
        >>> net = nn.Sequential(nn.Linear(3, 2))
        >>> opt = dist.DistributedOptimizer(nn.SGD(net, lr=0.1))
        >>> opt.lr = 0.05; opt.optimizer.lr
        0.05
    """

    _own = ("optimizer", "bucket_bytes", "_synchronized")

    def __init__(self, optimizer, bucket_bytes=DEFAULT_BUCKET_BYTES):
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already distributed")
        if not isinstance(getattr(optimizer, "model", None), Module):
            raise TypeError(
                f"DistributedOptimizer: expected an optimizer built on a model (e.g. Adam(model)), got {optimizer!r}"
            )
        self.optimizer = optimizer
        self.bucket_bytes = int(bucket_bytes)
        self._synchronized = False

    def synchronize(self):
        """Average the gradients over ranks now (``allreduce_gradients``)."""
        allreduce_gradients(self.optimizer.model, self.bucket_bytes)
        self._synchronized = True

    def step(self):
        """Average gradients over ranks (unless ``synchronize()`` already did), then update."""
        if not self._synchronized:
            allreduce_gradients(self.optimizer.model, self.bucket_bytes)
        self._synchronized = False
        return self.optimizer.step()

    def zero_grad(self):
        self.optimizer.zero_grad()

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict):
        return self.optimizer.load_state_dict(state_dict)

    def __getattr__(self, name):
        # only called for attributes not found on the wrapper itself
        return getattr(object.__getattribute__(self, "optimizer"), name)

    def __setattr__(self, name, value):  # hyper-parameters (``lr``) go to the wrapped optimizer
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)

    def __repr__(self):
        return f"DistributedOptimizer({self.optimizer!r})"


# ------------------------------------------------------------------ data sharding
def grad_scale(local_count, global_count, ranks=None):
    """``local_count * ranks / global_count``: the factor that makes a rank's
    batch-mean loss gradient weigh ``local_count / global_count`` after the
    plain average over ranks (1.0 when every rank has the same share)."""
    ranks = size() if ranks is None else ranks
    return local_count * ranks / global_count


def _share(n, parts, index):
    """Bounds of part ``index`` when ``n`` items are split into ``parts`` nearly equal contiguous parts."""
    return index * n // parts, (index + 1) * n // parts


class DistributedSampler:
    """Per-rank sample indices of each global batch.

    Every rank computes the same permutation of ``range(n)`` (from ``seed``
    and the epoch, set with ``set_epoch``), cuts it into global batches of
    ``batch_size`` and keeps its own contiguous slice of each:
    ``batch_size / K`` samples. The last, smaller batch of an epoch is split
    as evenly as possible (scale the loss gradient by ``grad_scale`` so the
    average over ranks stays the whole batch's gradient); a tail with fewer
    samples than ranks is dropped, as is any tail with ``drop_last``.

    Args:
        n: number of samples.
        batch_size: the GLOBAL batch size; must be divisible by the number of
            ranks, so that the same command trains the same with any K.
        shuffle: permute every epoch (False: in order).
        seed: the permutation of epoch ``e`` is ``default_rng([seed, e])``'s.
        drop_last: drop the last incomplete batch.
        num_replicas, rank: default ``size()`` and ``rank()``.

    Iterating yields one index array per global batch.
    """

    def __init__(self, n, batch_size, shuffle=True, seed=0, drop_last=False, num_replicas=None, rank=None):
        self.num_replicas = size() if num_replicas is None else int(num_replicas)
        self.rank = _this_rank() if rank is None else int(rank)
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"DistributedSampler: batch_size must be a positive int, got {batch_size!r}")
        if batch_size % self.num_replicas:
            raise ValueError(
                f"DistributedSampler: the global batch size {batch_size} is not divisible by the number of "
                f"ranks {self.num_replicas}; choose a batch size that is a multiple of {self.num_replicas} "
                f"(each rank gets batch_size / ranks samples)"
            )
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank {self.rank} is not in [0, {self.num_replicas})")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch):
        """Select epoch ``epoch``'s permutation (call before each epoch)."""
        self.epoch = int(epoch)

    def permutation(self):
        """The global order of this epoch's samples (the same on every rank)."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n)

    def global_batches(self):
        """The global batches of this epoch as index arrays (the same on every rank)."""
        order = self.permutation()
        full = self.n // self.batch_size * self.batch_size
        batches = [order[i : i + self.batch_size] for i in range(0, full, self.batch_size)]
        tail = order[full:]
        if len(tail) >= self.num_replicas and not self.drop_last:
            batches.append(tail)
        return batches

    def __iter__(self):
        for batch in self.global_batches():
            lo, hi = _share(len(batch), self.num_replicas, self.rank)
            yield batch[lo:hi]

    def __len__(self):
        return len(self.global_batches()) if self.n else 0


class ShardedLoader:
    """Batches of ``(X, y)`` for this rank: its slice of each global batch.

    ``ShardedLoader(X, y, batch_size)`` iterates like a data loader with the
    GLOBAL ``batch_size``; each rank gets ``batch_size / K`` rows of every
    batch (see ``DistributedSampler``). ``y`` may be None (yields ``X``
    batches).

    After each batch, ``global_count`` is that batch's size over all ranks and
    ``grad_scale`` the factor to multiply this rank's loss gradient by before
    ``backward``: ``local_count * K / global_count``, exactly 1.0 unless the
    batch was split unevenly (the last one of an epoch). A batch-mean loss on
    ``n_k`` samples then contributes ``n_k / N`` of the global gradient on
    every rank alike, which also keeps synchronised BatchNorm's backward
    exact (scaling the rank's gradients after ``backward`` would not).
    """

    def __init__(self, X, y=None, batch_size=128, shuffle=True, seed=0, drop_last=False, num_replicas=None, rank=None):
        if y is not None and len(X) != len(y):
            raise ValueError(f"ShardedLoader: X has {len(X)} samples but y has {len(y)}")
        self.X, self.y = X, y
        self.sampler = DistributedSampler(
            len(X), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, num_replicas=num_replicas, rank=rank
        )
        self.global_count = None
        self.grad_scale = 1.0
        self.global_index = None  # the current global batch's indices, and this rank's slice of it
        self.local_slice = slice(0, 0)

    @property
    def batch_size(self):
        return self.sampler.batch_size

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        s = self.sampler
        for batch in s.global_batches():
            lo, hi = _share(len(batch), s.num_replicas, s.rank)
            idx = batch[lo:hi]
            self.global_index, self.local_slice = batch, slice(lo, hi)
            self.global_count = len(batch)
            self.grad_scale = grad_scale(hi - lo, len(batch), s.num_replicas)
            yield self.X[idx] if self.y is None else (self.X[idx], self.y[idx])

    def __len__(self):
        return len(self.sampler)


# ------------------------------------------------------------------ synchronised BatchNorm
class _AllreduceStats:
    """``stats_sync`` hook: ``(local_sum, count) -> (global_sum, global_count)``
    with one ``Allreduce`` of the sums with the count appended."""

    def __init__(self, comm):
        self.comm = comm

    def __call__(self, local_sum, count):
        from mpi4py import MPI

        local_sum = np.asarray(local_sum)
        dtype = local_sum.dtype
        # a float32 count is exact below 2**24; past that, reduce in float64
        if dtype.itemsize < 8 and count * self.comm.Get_size() >= 2**24:
            dtype = np.dtype(np.float64)
        buf = np.empty(local_sum.size + 1, dtype=dtype)
        buf[:-1] = local_sum.reshape(-1)
        buf[-1] = count
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        total = buf[:-1].reshape(local_sum.shape).astype(local_sum.dtype, copy=False)
        return total, int(round(float(buf[-1])))

    def __repr__(self):
        return "AllreduceStats()"


def sync_batchnorm(model, enabled=True):
    """Make every BatchNorm-family module of ``model`` compute its batch
    statistics (forward means and variances, and the backward means) over the
    global batch, all ranks together, by installing an ``Allreduce`` as its
    ``stats_sync`` hook. With it, a model with BatchNorm trains the same with
    any number of ranks. ``enabled=False`` restores per-rank statistics
    (then call ``allreduce_buffers`` before saving to average the running
    statistics). Returns the number of modules changed; does nothing (returns
    0) in one process.

    All ranks must run the same forward/backward calls in training mode (every
    batch statistic is a collective).
    """
    comm = get_comm()
    hook = _AllreduceStats(comm) if enabled and comm is not None and comm.Get_size() > 1 else None
    changed = 0
    for _, module in model.named_modules():
        if isinstance(module, _BatchStatistics):
            if hook is None:
                module.__dict__.pop("stats_sync", None)
            else:
                module.stats_sync = hook
            changed += 1
    return changed if hook is not None else 0


# ------------------------------------------------------------------ RNG states
def _generators(model=None):
    """The generators whose state makes a run reproducible: nnumpy's default
    generator and every module's ``rng`` (e.g. Dropout), without duplicates."""
    from .backend import default_rng

    found = [default_rng()]
    if model is not None:
        for _, module in model.named_modules():
            g = getattr(module, "rng", None)
            if isinstance(g, np.random.Generator) and all(g is not f for f in found):
                found.append(g)
    return found


def rng_states(model=None, extra=()):
    """This rank's RNG states (a JSON-able list of bit-generator states) of the
    default generator, the model's module generators and the ``extra`` ones."""
    return [g.bit_generator.state for g in _generators(model) + list(extra)]


def set_rng_states(states, model=None, extra=()):
    """Restore what ``rng_states`` returned, in the same order."""
    gens = _generators(model) + list(extra)
    if len(states) != len(gens):
        raise ValueError(f"set_rng_states: {len(states)} saved states for {len(gens)} generators")
    for g, state in zip(gens, states, strict=True):
        g.bit_generator.state = state


# ------------------------------------------------------------------ fit(distributed=True)
class _GlobalBatchAugment:
    """Apply a batch augmentation ``(xb, rng) -> xb`` to the whole global batch
    and keep this rank's slice, so the augmented samples (and the training)
    do not depend on the number of ranks. Augmentation is cheap next to a
    train step; each rank repeats it for the K-1 slices it does not use."""

    def __init__(self, augment, loader):
        self.augment, self.loader = augment, loader

    def __call__(self, xb, rng):
        loader = self.loader
        return self.augment(loader.X[loader.global_index], rng)[loader.local_slice]


def _trainer_class():
    from .training import Trainer

    class DistributedTrainer(Trainer):
        """``Trainer`` for data-parallel ``fit(..., distributed=True)`` under
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

        @property
        def is_main_process(self):
            return is_main()

        def make_loader(self, data, batch_size, shuffle=False, drop_last=False):
            seed = self.seed
            if not _is_xy(data):
                if isinstance(data, ShardedLoader):
                    return data
                x, y = getattr(data, "x", None), getattr(data, "y", None)
                if x is None:
                    raise TypeError(
                        f"fit(distributed=True): data must be (X, y) arrays (or an nnumpy DataLoader over "
                        f"arrays) so each rank can take its share, got {type(data).__name__}"
                    )
                # a DataLoader's own batch size, shuffle and seed: the order it would have given
                batch_size, shuffle = getattr(data, "batch_size", batch_size), getattr(data, "shuffle", shuffle)
                seed = getattr(data, "seed", seed)
                data = (x, y)
            x, y = data
            if len(x) != len(y):
                raise ValueError(f"fit: X has {len(x)} samples but y has {len(y)}")
            if self._next_loader_trains:
                self._next_loader_trains = False
                loader = ShardedLoader(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
                self._train_loader = loader
                if self.augment is not None:
                    self.augment = _GlobalBatchAugment(self.augment, loader)
                return loader
            lo, hi = _share(len(x), size(), rank())  # evaluation: a contiguous 1/K shard, reduced later
            return super().make_loader((x[lo:hi], y[lo:hi]), batch_size)

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
            stop = self._sigint_pending
            if is_distributed():
                total, count, stop = allreduce_sum([loss * batch_size, batch_size, stop])
                loss = float(total / count)
            self._sigint_agreed = self._sigint or stop > 0
            return loss

        # Ctrl-C: Trainer's signal handler sets ``_sigint``, which here only records a
        # request; the loop reads the flag the ranks agreed on at the last step, so
        # every rank stops after the same batch.
        @property
        def _sigint(self):
            return self.__dict__.get("_sigint_agreed", False)

        @_sigint.setter
        def _sigint(self, value):
            self._sigint_pending = bool(value)
            if not value:
                self._sigint_agreed = False

        def save_checkpoint(self, path):
            # collectives first: every rank gets here
            states = gather_object(rng_states(self.model))
            sums = None if self._sums is None else allreduce_sum(self._sums).tolist()  # a mid-epoch stop
            if not self.is_main_process:
                return
            self.extra["distributed"] = {"ranks": size(), "rng_states": states}
            wrapper, local_sums = self.optimizer, self._sums
            # the file records the wrapped optimizer's class and state, and the epoch's global sums
            self.optimizer, self._sums = getattr(wrapper, "optimizer", wrapper), sums
            try:
                super().save_checkpoint(path)
            finally:
                self.optimizer, self._sums = wrapper, local_sums

        def restore(self, checkpoint):
            if not hasattr(checkpoint, "model"):
                from .serialization import load_checkpoint

                checkpoint = broadcast_object(load_checkpoint(checkpoint) if is_main() else None)
            ckpt = super().restore(checkpoint)
            if self._sums is not None and rank():  # the saved running sums are global: count them once
                self._sums = [0.0] * len(self._sums)
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
                    f"fit(distributed=True): the global batch size {batch_size} is not divisible by the "
                    f"number of ranks {size()}; use a multiple of {size()} (each rank gets batch_size / {size()})"
                )
            self._train_loader, self._next_loader_trains = None, True
            decorrelate_rngs(self.model)
            broadcast_parameters(self.model)
            sync_batchnorm(self.model, self.sync_batchnorm)
            if not self.sync_batchnorm and not any(isinstance(cb, _AverageBuffers) for cb in self.callbacks):
                self.callbacks = sorted([*self.callbacks, _AverageBuffers()], key=lambda cb: getattr(cb, "order", 0))
            try:
                return super().fit(train_data, val_data, epochs=epochs, batch_size=batch_size, **kwargs)
            finally:
                sync_batchnorm(self.model, enabled=False)

    class _AverageBuffers:
        """Per-rank BatchNorm: average the running statistics over ranks at the
        end of every epoch, before checkpoints are written (validation, which
        ``fit`` runs before the epoch-end callbacks, sees each rank's own)."""

        order = -100

        def on_epoch_end(self, trainer, epoch, logs):
            allreduce_buffers(trainer.model)

    return DistributedTrainer


def _is_xy(data):
    return isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape")


def decorrelate_rngs(model=None):
    """Give every rank > 0 its own random streams (Dropout masks, the default
    generator) by jumping each generator ``rank`` times ahead; rank 0 keeps
    its streams, so one process trains exactly as without MPI."""
    r = rank()
    if r:
        for g in _generators(model):
            bg = g.bit_generator
            if hasattr(bg, "jumped"):
                bg.state = bg.jumped(r).state
            else:  # e.g. SFC64: a fresh stream seeded from this one and the rank
                bg.state = type(bg)(np.random.SeedSequence([r, int(g.integers(2**63))])).state


def __getattr__(name):
    # ``DistributedTrainer`` subclasses training.Trainer: built on first use
    # so that importing nnumpy.distributed does not import the training loop
    if name == "DistributedTrainer":
        cls = _trainer_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
