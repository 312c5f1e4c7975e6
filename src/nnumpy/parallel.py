"""``nnumpy.parallel``: nnumpy's thread pool for your own kernels (it lives in ``nnumpy.kernels.parallel``).

``map_batches(fn, out, *inputs)`` and ``parallel_for(fn, n, like)`` split work
over the batch axis on nnumpy's threads; ``set_num_threads`` /
``num_threads`` set them and BLAS's. docs/performance.md explains them.
"""

from .kernels.parallel import get_num_threads, map_batches, num_threads, parallel_for, set_num_threads, split_count

__all__ = ["set_num_threads", "get_num_threads", "num_threads", "parallel_for", "map_batches", "split_count"]
