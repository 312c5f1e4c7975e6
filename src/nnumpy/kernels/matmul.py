"""Matrix products of the layers: ``a @ b``, on nnumpy's threads while they are in use.

A BLAS library's idle worker threads keep spinning on their cores after each
product (OpenBLAS: 2**28 cycles, about 0.1 s). When a product runs between
kernels that nnumpy splits over its own threads (a CNN's fully connected head
between its convolutions and pooling), those spinning threads hold the cores
that nnumpy's threads need. So while ``threads_in_use()``, a product is
split over the rows of ``a`` on nnumpy's threads with BLAS on one thread per
call, and the BLAS worker threads are never woken; otherwise (an MLP, whose
kernels never split) BLAS runs it on its own threads, which stay warm.
"""

import numpy as np

from ..backend import get_array_module
from .config import settings
from .parallel import get_num_threads, run_pieces, threads_in_use

__all__ = ["matmul", "matmul_reference"]


def matmul_reference(a, b):
    """``a @ b``."""
    return a @ b


def matmul(a, b, out=None):
    """``a @ b`` for 2-D ``a`` (M, K) and ``b`` (K, N), written into ``out`` when given.

    While nnumpy's threads are in use, the rows of ``a`` are split into up to
    one piece per thread, each of at least ``min_macs_per_thread``
    multiply-adds (``nnumpy.kernels.tuning``), multiplied with BLAS on one
    thread; else one BLAS call on the BLAS library's threads.
    """
    xp = get_array_module(a, b)
    if xp is not np or not threads_in_use():
        return xp.matmul(a, b, out=out)
    (m, k), n = a.shape, b.shape[1]
    pieces = max(1, min(get_num_threads(), m, m * n * k // settings["min_macs_per_thread"]))
    if out is None:
        out = np.empty((m, n), np.result_type(a, b))
    run_pieces(lambda lo, hi: np.matmul(a[lo:hi], b, out=out[lo:hi]), m, pieces, calls_blas=True,
               counts_as_split=False)  # fmt: skip
    return out
