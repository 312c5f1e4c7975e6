"""nnumpy's own threads, for the memory-bound kernels, and one setting for all threads.

Matrix products run in the BLAS library. Everything else (batch
normalisation, activations, pooling, the im2col/col2im copies) is NumPy
element-wise work, which runs on one core per call. NumPy releases the GIL
inside those calls, so the kernels split their arrays along the first (batch)
axis into one contiguous piece per thread and run the pieces on a small thread
pool: the same NumPy calls on smaller views, no Python loop over samples.
Arrays under ``min_bytes_per_thread`` per piece (``nnumpy.kernels.tuning``)
stay on the calling thread, as do CuPy arrays (the GPU is already parallel).

Pieces that make matrix products (``calls_blas=True``) run them with BLAS on
one thread each (``blas.one_thread``). While the kernels split their work,
``threads_in_use()`` is True and ``kernels.matmul`` runs the layers' other
products the same way, so the BLAS library's worker threads stay asleep
instead of spinning on the cores nnumpy's threads need.

``set_num_threads(n)`` sets both the kernel threads and the BLAS threads
(through threadpoolctl), as ``torch.set_num_threads`` does for PyTorch. The
default is the environment variable ``NNUMPY_NUM_THREADS``, else the number of
CPUs this process may run on.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

import numpy as np

from .blas import one_thread
from .config import set_tuning, settings, tuning, version

__all__ = [
    "set_num_threads",
    "get_num_threads",
    "num_threads",
    "parallel_for",
    "map_batches",
    "split_count",
    "threads_in_use",
]

_pool = {"executor": None, "pid": None}
_default = {"text": None, "threads": None}  # $NNUMPY_NUM_THREADS as last read, and the count it gives
# kernel calls so far; the call that last split over threads, and the settings' version it split under
_history = {"calls": 0, "last_split": None, "version": None}
_local = threading.local()  # .busy: this thread is running a piece (no nested splitting)


def _available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _default_threads():
    text = os.environ.get("NNUMPY_NUM_THREADS", "").strip()
    if text != _default["text"] or _default["threads"] is None:
        if text:
            try:
                value = int(text)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(f"NNUMPY_NUM_THREADS must be a positive integer, got {text!r}")
        else:
            value = _available_cpus()
        _default.update(text=text, threads=value)
    return _default["threads"]


def check_thread_count(who, n, name="n"):
    """Raise ValueError unless ``n`` is a positive integer."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {n!r}")


def get_num_threads():
    """The number of threads nnumpy's kernels use."""
    n = settings["threads"]
    return _default_threads() if n is None else n


def set_num_threads(n, blas=True):
    """Use ``n`` threads for nnumpy's kernels and for the BLAS library's matrix products.

    Like ``torch.set_num_threads``: ``n = 1`` runs everything on the calling
    thread. The BLAS limit is set with threadpoolctl and stays until the next
    call (``num_threads`` is the temporary form); ``blas=False`` leaves BLAS as it is.

    Example:
        >>> import nnumpy
        >>> nnumpy.set_num_threads(1); nnumpy.get_num_threads()
        1
    """
    check_thread_count("set_num_threads", n)
    set_tuning(threads=int(n))
    if blas:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(n), user_api="blas")


@contextmanager
def num_threads(n):
    """Context manager: ``set_num_threads(n)`` inside the block, the previous
    kernel and BLAS thread counts after it (``n = None`` changes nothing).

    Example:
        >>> import nnumpy
        >>> with nnumpy.num_threads(1):
        ...     nnumpy.get_num_threads()
        1
    """
    if n is None:
        yield
        return
    check_thread_count("num_threads", n)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n), user_api="blas"), tuning(threads=int(n)):
        yield


def _executor(workers):
    pool = _pool["executor"]
    # a forked child inherits the pool object but not its threads: make a new one
    if pool is None or _pool["pid"] != os.getpid() or pool._max_workers < workers:
        if pool is not None and _pool["pid"] == os.getpid():
            pool.shutdown(wait=False)  # a larger thread count was set: its idle threads exit
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nnumpy")
        _pool.update(executor=pool, pid=os.getpid())
    return pool


def in_piece():
    """True on a thread that is running a piece of a split kernel."""
    return getattr(_local, "busy", False)


def split_count(n, like):
    """How many pieces ``parallel_for`` cuts ``range(n)`` into for array ``like``."""
    if in_piece() or not isinstance(like, np.ndarray):  # CuPy: one piece
        return 1
    return max(1, min(get_num_threads(), n, like.nbytes // settings["min_bytes_per_thread"]))


def threads_in_use():
    """True while nnumpy's kernels split their work over its threads: one did
    within the last ``split_window_calls`` kernel calls (``nnumpy.kernels.tuning``).
    Counted in calls, not seconds, so a run repeats bit for bit."""
    last, window = _history["last_split"], settings["split_window_calls"]
    if last is None or _history["version"] != version():  # other settings split differently
        return False
    return _history["calls"] - last < window


def parallel_for(fn, n, like, calls_blas=False):
    """Run ``fn(lo, hi)`` over contiguous pieces of ``range(n)``, one piece per
    thread, and return the results in order.

    ``like`` is the array the work is proportional to: its size decides how
    many threads are worth using, and a non-NumPy (CuPy) array runs as one
    piece ``fn(0, n)``. The pieces must write disjoint memory; the calling thread
    runs the first piece itself. An exception in any piece is raised here.
    ``calls_blas``: the pieces make matrix products; BLAS then runs one thread
    per call while nnumpy's threads are in use (one thread per core either way).
    """
    return run_pieces(fn, n, split_count(n, like), calls_blas)


def run_pieces(fn, n, pieces, calls_blas=False, counts_as_split=True):
    """``parallel_for`` with the number of pieces given. ``counts_as_split``:
    a split here makes ``threads_in_use()`` True (``kernels.matmul``'s own
    splits do not, so products alone never keep BLAS off its threads)."""
    if in_piece():  # nested: run here (an outer calls_blas=True holds BLAS to one thread)
        return [fn(0, n)]
    _history["calls"] += 1
    if pieces > 1 and counts_as_split:
        _history.update(last_split=_history["calls"], version=version())
    with one_thread() if calls_blas and (pieces > 1 or threads_in_use()) else nullcontext():
        if pieces <= 1:
            return [fn(0, n)]
        bounds = [n * i // pieces for i in range(pieces + 1)]
        pool = _executor(pieces - 1)
        futures = [pool.submit(_run_piece, fn, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
        try:
            first = _run_piece(fn, bounds[0], bounds[1])
        finally:
            rest = [f.result() for f in futures]  # wait for every piece even if the first failed
    return [first, *rest]


def _run_piece(fn, lo, hi):
    _local.busy = True
    try:
        return fn(lo, hi)
    finally:
        _local.busy = False


def map_batches(fn, out, *inputs):
    """``fn(*pieces, out=out_piece)`` over pieces of the first axis of ``out``
    and ``inputs`` (arrays of the same first dimension), on nnumpy's threads;
    returns ``out``. For element-wise kernels: ``map_batches(lambda x, out:
    np.maximum(x, 0, out=out), np.empty_like(x), x)`` is a threaded ReLU."""
    if out.ndim == 0:
        fn(*inputs, out=out)
        return out
    parallel_for(lambda lo, hi: fn(*(a[lo:hi] for a in inputs), out=out[lo:hi]), out.shape[0], out)
    return out
