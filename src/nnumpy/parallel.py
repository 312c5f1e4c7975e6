"""Threads for the memory-bound kernels, and one setting for all of nnumpy's threads.

Matrix products run in the BLAS library's own threads. Everything else
(batch normalisation, activations, pooling, the im2col/col2im copies) is
NumPy element-wise work, which runs on one core per call. NumPy releases the
GIL inside those calls, so the kernels split their arrays along the first
(batch) axis into one contiguous piece per thread and run the pieces on a
small thread pool: the same NumPy calls on smaller views, no Python loop over
samples. Arrays under ``MIN_BYTES_PER_THREAD`` per piece stay on the calling
thread (handing work to a thread costs tens of microseconds), as do CuPy
arrays (the GPU is already parallel).

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

from ._openblas import use_short_spin

__all__ = ["set_num_threads", "get_num_threads", "num_threads", "parallel_for", "map_batches", "MIN_BYTES_PER_THREAD"]

MIN_BYTES_PER_THREAD = 1 << 20  # 1 MiB: below this a piece is not worth a thread handoff


def _available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _default_threads():
    text = os.environ.get("NNUMPY_NUM_THREADS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"NNUMPY_NUM_THREADS must be a positive integer, got {text!r}") from None
        if value < 1:
            raise ValueError(f"NNUMPY_NUM_THREADS must be a positive integer, got {text!r}")
        return value
    return _available_cpus()


_state = {"threads": None, "pool": None, "pid": None, "blas_limit": None}
_local = threading.local()  # .busy: this thread is running a piece (no nested splitting)


def get_num_threads():
    """The number of threads nnumpy's element-wise kernels use."""
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return _state["threads"]


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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    _state["threads"] = int(n)
    if blas:
        from threadpoolctl import threadpool_limits

        _state["blas_limit"] = threadpool_limits(limits=int(n), user_api="blas")


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
    from threadpoolctl import threadpool_limits

    previous = get_num_threads()
    with threadpool_limits(limits=int(n), user_api="blas"):
        set_num_threads(n, blas=False)
        try:
            yield
        finally:
            _state["threads"] = previous


def _pool(workers):
    pool = _state["pool"]
    # a forked child inherits the pool object but not its threads: make a new one
    if pool is None or _state["pid"] != os.getpid() or pool._max_workers < workers:
        if pool is not None and _state["pid"] == os.getpid():
            pool.shutdown(wait=False)  # a larger thread count was set: its idle threads exit
        else:  # our threads are about to start: OpenBLAS's idle ones must not hold the cores
            use_short_spin()
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nnumpy")
        _state["pool"], _state["pid"] = pool, os.getpid()
    return pool


def split_count(n, like):
    """How many pieces ``parallel_for`` cuts ``range(n)`` into for array ``like``."""
    if getattr(_local, "busy", False) or not isinstance(like, np.ndarray):  # CuPy: one piece
        return 1
    return max(1, min(get_num_threads(), n, like.nbytes // MIN_BYTES_PER_THREAD))


def parallel_for(fn, n, like, calls_blas=False):
    """Run ``fn(lo, hi)`` over contiguous pieces of ``range(n)``, one piece per
    thread, and return the results in order.

    ``like`` is the array the work is proportional to: its size decides how
    many threads are worth using, and a non-NumPy (CuPy) array runs as one
    piece ``fn(0, n)``. The pieces must write disjoint memory; the calling thread
    runs the first piece itself. An exception in any piece is raised here.
    ``calls_blas``: the pieces make matrix products; while they run on several
    threads, BLAS runs one thread per call (one thread per core either way).
    """
    pieces = split_count(n, like)
    if pieces <= 1:
        return [fn(0, n)]
    bounds = [n * i // pieces for i in range(pieces + 1)]
    pool = _pool(pieces - 1)
    with _single_threaded_blas() if calls_blas else nullcontext():
        futures = [pool.submit(_run_piece, fn, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
        try:
            first = _run_piece(fn, bounds[0], bounds[1])
        finally:
            rest = [f.result() for f in futures]  # wait for every piece even if the first failed
    return [first, *rest]


def _single_threaded_blas():
    """Context manager: BLAS on one thread per call (threadpoolctl; ~7 us)."""
    controller = _state.get("blas_controller")
    if controller is None or _state.get("blas_controller_pid") != os.getpid():
        from threadpoolctl import ThreadpoolController

        controller = _state["blas_controller"] = ThreadpoolController()
        _state["blas_controller_pid"] = os.getpid()
    return controller.limit(limits=1, user_api="blas")


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
