"""OpenBLAS settings that must be in the environment before numpy loads OpenBLAS.

OpenBLAS's idle worker threads spin on their cores for 2**28 cycles (about
0.1 s) after each matrix product. That starves the threads of nnumpy's
element-wise kernels, and any other library's threads in the process (the
CNN-F train step ran at 1,217 samples/s with the default and 1,827 with
2**18). With ``OPENBLAS_THREAD_TIMEOUT=18`` they stay warm between
back-to-back products only. OpenBLAS reads the variable when it is loaded, so
this takes effect when nnumpy is imported before numpy (the ``nnumpy``
command always is); otherwise set it in the environment. A value already set
is kept.
"""

import os

OPENBLAS_THREAD_TIMEOUT = 18

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(OPENBLAS_THREAD_TIMEOUT))
