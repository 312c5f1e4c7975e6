"""Collectives on models and objects: broadcasting parameters, averaging
gradients (``allreduce_gradients``, ``DistributedOptimizer``), sums and
means of metrics, and consistency checks.

Every function is a no-op in one plain process (``size() == 1``).
"""

import hashlib
import weakref

import numpy as np

from ..module import Module
from .comm import get_comm

__all__ = [
    "broadcast_parameters",
    "broadcast_object",
    "gather_object",
    "scatter_object",
    "allreduce_gradients",
    "allreduce_buffers",
    "allreduce_sum",
    "weighted_mean",
    "parameters_digest",
    "check_parameters_in_sync",
    "DistributedOptimizer",
    "DEFAULT_BUCKET_BYTES",
]

DEFAULT_BUCKET_BYTES = 16 * 2**20


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
