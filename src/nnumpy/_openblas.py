"""Keep OpenBLAS's idle threads from spinning for long after each matrix product.

OpenBLAS's idle worker threads spin on their cores for 2**28 cycles (about
0.1 s) after each product. That starves the threads of nnumpy's element-wise
kernels, and any other library's threads in the process (the CNN-F train step
ran at 1,217 samples/s with the default and 1,827 with 2**18). With
``OPENBLAS_THREAD_TIMEOUT=18`` they stay warm between back-to-back products
only.

OpenBLAS reads the variable when it starts its threads. When nnumpy is
imported before numpy (the ``nnumpy`` command always is), setting it here is
enough. When numpy came first, OpenBLAS's threads already run with the default:
nnumpy then asks OpenBLAS to re-read its environment and stop its threads
(they start again, with the short spin, at the next product) — the same calls
OpenBLAS makes itself around ``fork`` — provided no other Python thread is
running (one could be inside a product). A value the user set is kept and
nothing is restarted.
"""

import os
import sys
import threading

OPENBLAS_THREAD_TIMEOUT = 18

_user_set = "OPENBLAS_THREAD_TIMEOUT" in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(OPENBLAS_THREAD_TIMEOUT))


def _restart_openblas_threads():
    """Make every loaded OpenBLAS re-read its environment and stop its worker
    threads; True when at least one did."""
    import ctypes

    from threadpoolctl import threadpool_info

    restarted = False
    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        if hasattr(lib, "openblas_read_env") and hasattr(lib, "blas_thread_shutdown_"):
            lib.openblas_read_env()
            lib.blas_thread_shutdown_()
            restarted = True
    return restarted


# numpy loaded before nnumpy: its OpenBLAS threads run with the long default spin
RESTARTED = False
if "numpy" in sys.modules and not _user_set and threading.active_count() == 1:
    try:
        RESTARTED = _restart_openblas_threads()
    except Exception:  # another BLAS, or an OpenBLAS without these entry points: README, *Threads*
        RESTARTED = False
