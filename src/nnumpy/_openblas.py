"""How long OpenBLAS's idle threads spin after each matrix product.

OpenBLAS's idle worker threads spin on their cores for 2**28 cycles (about
0.1 s) after each product before they sleep. Spinning keeps them ready for the
next product (waking a sleeping thread costs tens of microseconds), but a
spinning thread also holds a core that nnumpy's own kernel threads
(``nnumpy.parallel``) need: the CNN-F train step ran at 1,217 samples/s with
the default and 1,827 with ``OPENBLAS_THREAD_TIMEOUT=18`` (2**18 cycles).
A model whose kernels never split over threads (MLP-F at batch 128) is the
other way round: 2**22 cycles (about 1.5 ms: through an Adam step) made its
train step 5-8 % faster than 2**18.

So nnumpy sets ``OPENBLAS_THREAD_TIMEOUT=22`` (``LONG_SPIN``) when it is
imported, and switches to 18 (``SHORT_SPIN``) the first time it runs a
kernel on its own threads (``use_short_spin``, called by ``nnumpy.parallel``).

OpenBLAS reads the variable when it starts its threads. When nnumpy is
imported before numpy (the ``nnumpy`` command always is), setting it is
enough. When numpy came first, and at the switch, nnumpy asks OpenBLAS to
re-read its environment and stop its threads (they start again, with the new
spin, at the next product): the same calls OpenBLAS makes itself around
``fork``, made only while no other Python thread runs (one could be inside a
product; nnumpy's own threads and tqdm's monitor never are). A value the user
set is kept and nothing is restarted.
"""

import os
import sys
import threading

LONG_SPIN, SHORT_SPIN = 22, 18
OPENBLAS_THREAD_TIMEOUT = LONG_SPIN  # the value set at import

_user_set = "OPENBLAS_THREAD_TIMEOUT" in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(LONG_SPIN))


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


# threads known never to call BLAS: nnumpy's kernel pool, tqdm's progress-bar monitor
_BLAS_FREE_THREADS = ("nnumpy", "tqdm_monitor")


def _alone():
    """True when no other Python thread could be inside a BLAS call."""
    main = threading.main_thread()
    return all(t is main or t.name.startswith(_BLAS_FREE_THREADS) for t in threading.enumerate())


def _restart_safely():
    """``_restart_openblas_threads()`` when it is safe (see ``_alone``), else False."""
    if not _alone():
        return False
    try:
        return _restart_openblas_threads()
    except Exception:  # another BLAS, or an OpenBLAS without these entry points: README, *Threads*
        return False


def use_short_spin():
    """Switch OpenBLAS to ``SHORT_SPIN`` (nnumpy's kernel threads are about to
    share the cores with it). Once: a no-op when the user set the variable,
    when it is already short, or when another Python thread runs. True when
    OpenBLAS's threads were restarted."""
    if _user_set or os.environ.get("OPENBLAS_THREAD_TIMEOUT") != str(LONG_SPIN) or not _alone():
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(SHORT_SPIN)
    return _restart_safely()


# numpy loaded before nnumpy: its OpenBLAS threads run with the default 2**28
RESTARTED = "numpy" in sys.modules and not _user_set and _restart_safely()
