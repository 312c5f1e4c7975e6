"""``tune_process``: the explicit, documented tuning of the host process.

The library never calls it (importing nnumpy changes nothing in the process);
a program, or the ``nnumpy`` command, may call it for itself. docs/performance.md
says when it helps.
"""

import os
import sys
import threading

from .parallel import check_thread_count, get_num_threads, set_num_threads

__all__ = ["tune_process"]


# threads known never to call BLAS: nnumpy's kernel pool, tqdm's progress-bar monitor
_BLAS_FREE_THREADS = ("nnumpy", "tqdm_monitor")


def _alone():
    """True when no other Python thread could be inside a BLAS call."""
    main = threading.main_thread()
    return all(t is main or t.name.startswith(_BLAS_FREE_THREADS) for t in threading.enumerate())


def _restart_openblas_threads():
    """Make every loaded OpenBLAS re-read its environment and stop its worker
    threads (they start again at the next product); True when one did."""
    import ctypes

    from threadpoolctl import threadpool_info

    restarted = False
    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        lib = ctypes.CDLL(info["filepath"])
        if hasattr(lib, "openblas_read_env") and hasattr(lib, "blas_thread_shutdown_"):
            lib.openblas_read_env()
            lib.blas_thread_shutdown_()
            restarted = True
    return restarted


def tune_process(threads=None, blas_spin=None):
    """Tune this process for nnumpy: an explicit call, never made by the library itself.

    Args:
        threads: ``nnumpy.set_num_threads(threads)``: nnumpy's kernel threads
            and the BLAS library's (None: leave them).
        blas_spin: how long OpenBLAS's idle worker threads spin after each
            product before they sleep, as ``OPENBLAS_THREAD_TIMEOUT`` takes it:
            ``2**blas_spin`` cycles (OpenBLAS's default is 28, about 0.1 s;
            it accepts 4 to 30). Sets that environment variable; when numpy's
            OpenBLAS is already loaded (it is, once nnumpy is imported), also
            makes it re-read its environment and stop its worker threads, which
            start again with the new spin at the next product (the calls
            OpenBLAS itself makes around ``fork``). Only while no other Python
            thread could be inside a product (nnumpy's kernel threads and
            tqdm's monitor are known not to be): else RuntimeError, and nothing
            changes. None: leave it.

    Returns:
        dict: ``threads`` (nnumpy's kernel threads now), ``blas_spin``
        (``OPENBLAS_THREAD_TIMEOUT`` now, a string; None when unset) and ``restarted`` (whether an
        OpenBLAS restarted its threads).

    A short spin helps code whose own matrix products (outside nnumpy's
    layers) run between kernels that nnumpy splits over its threads: the
    spinning BLAS threads would hold the cores those kernels need. nnumpy's
    layers do not need it (docs/performance.md).

    Example:
        >>> import nnumpy
        >>> nnumpy.tune_process(threads=1)["threads"]
        1
    """
    if threads is not None:
        check_thread_count("tune_process", threads, "threads")
    restarted = False
    if blas_spin is not None:
        if isinstance(blas_spin, bool) or not isinstance(blas_spin, int) or not 4 <= blas_spin <= 30:
            raise ValueError(f"tune_process: blas_spin must be an int from 4 to 30, got {blas_spin!r}")
        loaded = "numpy" in sys.modules
        if loaded and not _alone():
            others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
            raise RuntimeError(
                f"tune_process: cannot restart OpenBLAS's threads while other threads run ({', '.join(others)}); "
                "call it before starting them, or set OPENBLAS_THREAD_TIMEOUT before the program starts"
            )
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(blas_spin)
        restarted = loaded and _restart_openblas_threads()
    if threads is not None:
        set_num_threads(threads)
    spin = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    return {"threads": get_num_threads(), "blas_spin": spin, "restarted": restarted}
