"""Every test runs with the kernels' default sizes and thresholds, on 3 kernel
threads whatever the machine (3 makes uneven pieces where a kernel splits).

tests/test_kernels.py compares each fast kernel with its plain reference, with
the default sizes and with small ones set through ``nnumpy.kernels.tuning``
(the ``small_kernel_sizes`` fixture below), so every chunking and threading
path runs on small arrays; tests/test_parallel.py compares thread counts."""

import pytest

from nnumpy import kernels

# every array splits over the 3 threads, convolutions walk one sample per chunk and
# copy their columns again in backward, products split whatever their size
SMALL_SIZES = dict(chunk_bytes=1, keep_columns_bytes=0, min_bytes_per_thread=1, min_macs_per_thread=1, wide_row=8)


@pytest.fixture(autouse=True)
def _three_kernel_threads():
    with kernels.tuning(threads=3):
        yield


@pytest.fixture
def small_kernel_sizes():
    """The kernels' smallest sizes, so tiny arrays take every chunked and threaded path."""
    with kernels.tuning(**SMALL_SIZES) as settings:
        yield settings
