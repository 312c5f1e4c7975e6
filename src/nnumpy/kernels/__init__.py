"""nnumpy's fast kernels, each beside a plain reference implementation of the same function.

The layers (``nnumpy.layers``) read as their math and call these. Each fast
kernel computes what its ``*_reference`` twin computes, in the textbook's few
lines, only with fewer passes over memory, in cache-sized chunks, and split
over nnumpy's threads; ``tests/test_kernels.py`` compares the two in float64.

- ``conv``: 2-D convolution as chunked im2col products (``conv2d_forward``, ``conv2d_backward``);
- ``conv_transpose``: the transposed convolution, as the convolution's kernels with the roles of
  forward and backward exchanged (``conv_transpose2d_forward``, ``conv_transpose2d_backward``);
- ``batchnorm``: batch normalisation over the rows of an ``(M, C)`` matrix;
- ``pooling``: max and average pooling over strided window views;
- ``recurrent``: one RNN/LSTM/GRU layer over a sequence and its backpropagation through time
  (``recurrent_forward``, ``recurrent_backward``);
- ``elementwise``: threaded ReLU;
- ``matmul``: the layers' matrix products, on nnumpy's threads while its kernels use them;
- ``parallel``: nnumpy's thread pool (``parallel_for``, ``map_batches``) and ``set_num_threads``;
- ``blas``: the scoped one-thread BLAS limit;
- ``process``: ``tune_process``, the explicit tuning of the host process;
- ``config``: the knob for the kernels' sizes and thresholds (``tuning``, ``set_tuning``, ``get_tuning``).
"""

from .config import DEFAULTS, get_tuning, set_tuning, tuning
from .matmul import matmul
from .parallel import get_num_threads, map_batches, num_threads, parallel_for, set_num_threads, threads_in_use
from .process import tune_process

__all__ = [
    "tuning",
    "set_tuning",
    "get_tuning",
    "DEFAULTS",
    "tune_process",
    "matmul",
    "parallel_for",
    "map_batches",
    "set_num_threads",
    "get_num_threads",
    "num_threads",
    "threads_in_use",
]
