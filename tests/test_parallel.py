"""nnumpy.parallel: the thread pool of the memory-bound kernels and the thread settings.

(conftest.py makes every test split kernels over 3 threads; the tests here
compare those results with one thread.)"""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_close
from threadpoolctl import threadpool_info

import nnumpy as nn
from nnumpy import parallel


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_parallel_for_covers_the_range_in_order():
    pieces = parallel.parallel_for(lambda lo, hi: (lo, hi), 10, np.zeros(10**6))
    assert pieces == [(0, 3), (3, 6), (6, 10)]


def test_pieces_never_outnumber_items():
    assert parallel.parallel_for(lambda lo, hi: (lo, hi), 2, np.zeros(10**6)) == [(0, 1), (1, 2)]


def test_small_arrays_stay_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_THREAD", 1 << 20)
    assert parallel.split_count(128, np.zeros((128, 100), np.float32)) == 1  # 51 KB
    assert parallel.split_count(128, np.zeros((128, 4096), np.float32)) == 2  # 2 MiB: 2 pieces of 1 MiB
    assert parallel.split_count(128, np.zeros((128, 10**5), np.float32)) == 3  # capped by the thread count


def test_non_numpy_arrays_run_as_one_piece():
    fake_cupy = type("ndarray", (), {"__module__": "cupy._core.core", "nbytes": 10**9})()
    assert parallel.parallel_for(lambda lo, hi: (lo, hi), 100, fake_cupy) == [(0, 100)]


def test_an_error_in_any_piece_is_raised():
    def fail_last(lo, hi):
        if hi == 9:
            raise KeyError("piece 3")
        return lo

    with pytest.raises(KeyError, match="piece 3"):
        parallel.parallel_for(fail_last, 9, np.zeros(10**6))


def test_nested_calls_run_serially_instead_of_deadlocking():
    like = np.zeros(10**6)
    inner = parallel.parallel_for(lambda lo, hi: parallel.parallel_for(lambda a, b: (a, b), 6, like), 6, like)
    assert inner == [[(0, 6)]] * 3


def test_a_forked_process_gets_a_new_pool(monkeypatch):
    parallel.parallel_for(lambda lo, hi: None, 4, np.zeros(10**6))
    old = parallel._state["pool"]
    monkeypatch.setitem(parallel._state, "pid", -1)  # as if this were a child forked after the pool started
    assert parallel.parallel_for(lambda lo, hi: hi, 4, np.zeros(10**6)) == [1, 2, 4]
    assert parallel._state["pool"] is not old


def test_map_batches_handles_zero_d_arrays():
    x = np.array(-2.0, np.float32)
    out = parallel.map_batches(lambda a, out: np.maximum(a, 0, out=out), np.empty_like(x), x)
    assert out == 0 and out.dtype == np.float32


def test_set_num_threads_sets_kernels_and_blas():
    before = blas_threads()
    try:
        nn.set_num_threads(1)
        assert nn.get_num_threads() == 1
        assert set(blas_threads()) == {1}
    finally:
        parallel.set_num_threads(3)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=max(before), user_api="blas")


def test_num_threads_context_restores_both():
    blas_before = blas_threads()
    with nn.num_threads(1):
        assert nn.get_num_threads() == 1
        assert set(blas_threads()) == {1}
    assert nn.get_num_threads() == 3
    assert blas_threads() == blas_before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive integer"):
        nn.set_num_threads(bad)


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setitem(parallel._state, "threads", None)
    monkeypatch.setenv("NNUMPY_NUM_THREADS", "5")
    assert parallel.get_num_threads() == 5
    monkeypatch.setitem(parallel._state, "threads", None)
    monkeypatch.setenv("NNUMPY_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="NNUMPY_NUM_THREADS must be a positive integer, got 'many'"):
        parallel.get_num_threads()


def run_python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"} | env
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    return result.stdout.strip()


def test_import_shortens_openblas_idle_spinning_unless_the_user_set_it():
    code = "import nnumpy, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], nnumpy._openblas.RESTARTED)"
    assert run_python(code) == f"{nn.OPENBLAS_THREAD_TIMEOUT} False"  # OpenBLAS loads after: nothing to restart
    assert run_python(code, OPENBLAS_THREAD_TIMEOUT="28") == "28 False"


OPENBLAS_TIMEOUT = """
import ctypes
from threadpoolctl import threadpool_info
lib = ctypes.CDLL(next(i["filepath"] for i in threadpool_info() if i["internal_api"] == "openblas"))
a = numpy.ones((300, 300), numpy.float32)
print(nnumpy._openblas.RESTARTED, lib.openblas_thread_timeout(), float((a @ a)[0, 0]))
"""


def test_numpy_imported_first_gets_its_openblas_threads_restarted():
    if not any(i["internal_api"] == "openblas" for i in threadpool_info()):
        pytest.skip("numpy is not built on OpenBLAS here")
    code = "import numpy, nnumpy" + OPENBLAS_TIMEOUT
    assert run_python(code) == f"True {nn.OPENBLAS_THREAD_TIMEOUT} 300.0"  # re-read, and products still work
    assert run_python(code, OPENBLAS_THREAD_TIMEOUT="28") == "False 28 300.0"  # the user's value: left alone


SPLIT_KERNEL = """
import ctypes, os, threading
import numpy, nnumpy
from threadpoolctl import threadpool_info
lib = ctypes.CDLL(next(i["filepath"] for i in threadpool_info() if i["internal_api"] == "openblas"))
a = numpy.ones((300, 300), numpy.float32)
before = (os.environ["OPENBLAS_THREAD_TIMEOUT"], lib.openblas_thread_timeout(), float((a @ a)[0, 0]))
from tqdm import tqdm
bar = tqdm(total=2, file=open(os.devnull, "w"))  # a progress bar's monitor thread never calls BLAS
assert any(t.name == "tqdm_monitor" for t in threading.enumerate())
if OTHER_THREAD:  # any other thread could
    done = threading.Event()
    threading.Thread(target=done.wait).start()
nnumpy.ReLU().forward(numpy.ones((2, 1 << 20), numpy.float32))  # 8 MiB: split over nnumpy's 2 threads
after = (os.environ["OPENBLAS_THREAD_TIMEOUT"], lib.openblas_thread_timeout(), float((a @ a)[0, 0]))
if OTHER_THREAD:
    done.set()
print(*before, *after)
"""


@pytest.mark.parametrize("other_thread", [False, True], ids=["alone", "beside-another-thread"])
def test_openblas_spins_short_once_nnumpy_kernels_use_their_threads(other_thread):
    if not any(i["internal_api"] == "openblas" for i in threadpool_info()):
        pytest.skip("numpy is not built on OpenBLAS here")
    code = f"OTHER_THREAD = {other_thread}" + SPLIT_KERNEL
    long, short = nn._openblas.LONG_SPIN, nn._openblas.SHORT_SPIN
    after = f"{long} {long}" if other_thread else f"{short} {short}"  # no restart while another thread runs
    assert run_python(code, NNUMPY_NUM_THREADS="2") == f"{long} {long} 300.0 {after} 300.0"
    user = run_python(code, NNUMPY_NUM_THREADS="2", OPENBLAS_THREAD_TIMEOUT="20")
    assert user == "20 20 300.0 20 20 300.0"  # the user's value: left alone


# ------------------------------------------------------- kernels: 3 threads == 1 thread
def outputs_and_grads(module, x, seed=1):
    y = module.forward(x).copy()
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    module.zeroGradParameters()
    gx = module.backward(x, g).copy()
    return [y, gx, *(p.copy() for p in module.getGradParameters())]


def compare_thread_counts(make, x, exact):
    """The kernels split over 3 threads vs on one (BLAS threads unchanged)."""
    threaded = outputs_and_grads(make(), x)
    parallel._state["threads"] = 1
    try:
        serial = outputs_and_grads(make(), x)
    finally:
        parallel._state["threads"] = 3
    for ours, ref in zip(threaded, serial, strict=True):
        if exact:
            np.testing.assert_array_equal(ours, ref)
        else:  # sums over pieces add in another order
            assert_close(ours, ref, x.dtype, "3 threads vs 1")


def channels_last(shape, seed=0, dtype=np.float32):
    n, c, h, w = shape
    return np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(dtype).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_batchnorm2d_threads_agree(dtype, layout):
    x = channels_last((7, 5, 6, 4), dtype=dtype)
    x = np.ascontiguousarray(x) if layout == "nchw" else x
    compare_thread_counts(lambda: nn.BatchNorm2d(5, dtype=dtype), x * 3 + 1, exact=False)


def test_batchnorm_eval_and_channelwise_scaling_threads_agree():
    x = channels_last((7, 5, 6, 4))
    compare_thread_counts(lambda: nn.BatchNorm2d(5).evaluate(), x, exact=False)
    compare_thread_counts(lambda: nn.ChannelwiseScaling(5, rng=0), x, exact=False)


def test_relu_threads_agree():
    compare_thread_counts(nn.ReLU, channels_last((7, 5, 6, 4)), exact=True)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 0))])
def test_maxpool_threads_agree(kernel, stride, padding):
    x = channels_last((7, 3, 9, 8))
    compare_thread_counts(lambda: nn.MaxPool2d(kernel, stride, padding), x, exact=True)


@pytest.mark.parametrize(
    "args", [dict(kernel_size=3), dict(kernel_size=(2, 3), stride=2, padding=(1, 2), dilation=(1, 2), groups=2)]
)
def test_conv2d_threads_agree(args):
    x = channels_last((7, 4, 9, 8))
    # the weight gradient adds one partial sum per thread
    compare_thread_counts(lambda: nn.Conv2d(4, 6, rng=0, **args), x, exact=False)


def test_pieces_that_call_blas_run_it_on_one_thread_while_split():
    if not blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    like = np.zeros(10**6)
    with nn.num_threads(2):
        nn.set_num_threads(3, blas=False)  # kernels on 3 threads, BLAS on 2
        seen = parallel.parallel_for(lambda lo, hi: blas_threads(), 3, like, calls_blas=True)
        assert seen == [[1] * len(blas_threads())] * 3
        assert blas_threads() == [2] * len(seen[0])  # restored after the pieces
        assert parallel.parallel_for(lambda lo, hi: blas_threads(), 3, like) == [[2] * len(seen[0])] * 3
        nn.set_num_threads(1, blas=False)  # one piece: BLAS keeps its threads
        assert parallel.parallel_for(lambda lo, hi: blas_threads(), 3, like, calls_blas=True) == [[2] * len(seen[0])]


def test_more_threads_replace_the_pool_and_its_idle_threads_exit(monkeypatch):
    like = np.zeros(10**6)
    parallel.parallel_for(lambda lo, hi: None, 3, like)
    old = parallel._state["pool"]
    monkeypatch.setitem(parallel._state, "threads", 5)
    assert parallel.parallel_for(lambda lo, hi: (lo, hi), 5, like) == [(i, i + 1) for i in range(5)]
    assert parallel._state["pool"] is not old and old._shutdown


def test_calls_from_several_user_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor

    x = np.random.default_rng(0).standard_normal((64, 8, 6, 5)).astype(np.float32)
    ref = nn.MaxPool2d(2).forward(x)
    with ThreadPoolExecutor(4) as users:
        results = list(users.map(lambda _: nn.MaxPool2d(2).forward(x), range(8)))
    for r in results:
        np.testing.assert_array_equal(r, ref)
