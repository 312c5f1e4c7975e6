"""Every test runs nnumpy's kernels split over 3 threads, whatever the array
size (the split is normally kept for arrays of 1 MiB and more), so the
threaded code paths are the ones the parity and gradient tests check; 3 makes
uneven pieces. tests/test_parallel.py compares against one thread.
Convolutions walk their batch piece one sample at a time (normally ~1 MiB of
im2col columns at a time) and copy the columns again in backward (normally
kept when small); tests/test_conv.py compares the other settings."""

import pytest

from nnumpy import parallel
from nnumpy.layers import conv


@pytest.fixture(autouse=True)
def _threaded_kernels(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_THREAD", 1)
    monkeypatch.setitem(parallel._state, "threads", 3)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)
    monkeypatch.setattr(conv, "KEEP_COLUMNS_BYTES", 0)
