"""nnumpy and the BLAS library's threads: a scoped one-thread limit.

Importing nnumpy leaves BLAS as it finds it. While nnumpy's kernels make
matrix products on nnumpy's own threads, BLAS runs one thread per call
(``one_thread``: threadpoolctl's scoped limit; the previous count is back when
the last such kernel ends), so that the BLAS library's worker threads are not
woken and the cores are not oversubscribed. Changing the process for good is
``nnumpy.kernels.process.tune_process``, a call a program makes for itself.
"""

import os
import threading
from contextlib import contextmanager

__all__ = ["one_thread"]

_lock = threading.Lock()
_scope = {"depth": 0, "limiter": None, "controller": None, "pid": None}


def _controller():
    """threadpoolctl's controller of the BLAS libraries loaded in this process (made once per process)."""
    if _scope["controller"] is None or _scope["pid"] != os.getpid():
        from threadpoolctl import ThreadpoolController

        _scope["controller"] = ThreadpoolController().select(user_api="blas")
        _scope["pid"], _scope["depth"], _scope["limiter"] = os.getpid(), 0, None
    return _scope["controller"]


@contextmanager
def one_thread():
    """Context manager: BLAS runs one thread per call inside the block.

    Nested and concurrent blocks (nnumpy's threads, or several user threads
    running kernels) share one limit: the first block in sets it, the last one
    out restores the count it found.
    """
    with _lock:
        controller = _controller()  # a forked child starts afresh
        if _scope["depth"] == 0:
            _scope["limiter"] = controller.limit(limits=1)
        _scope["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _scope["depth"] -= 1
            if _scope["depth"] == 0:
                _scope["limiter"].restore_original_limits()
                _scope["limiter"] = None
