"""nnumpy.parallel: the thread pool of the memory-bound kernels and the thread settings.

(conftest.py gives every test 3 kernel threads; the tests here compare
results split over them with one thread, and check how matrix products share
the cores with the pool.)"""

import os
import signal

import numpy as np
import pytest
from helpers import assert_close
from threadpoolctl import threadpool_info

import nnumpy as nn
from nnumpy import kernels, parallel


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_parallel_for_covers_the_range_in_order():
    pieces = parallel.parallel_for(lambda lo, hi: (lo, hi), 10, np.zeros(10**6))
    assert pieces == [(0, 3), (3, 6), (6, 10)]


def test_pieces_never_outnumber_items():
    assert parallel.parallel_for(lambda lo, hi: (lo, hi), 2, np.zeros(10**6)) == [(0, 1), (1, 2)]


def test_small_arrays_stay_on_the_calling_thread():
    assert kernels.get_tuning()["min_bytes_per_thread"] == 1 << 20
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


def test_a_forked_process_gets_a_new_pool():
    parallel.parallel_for(lambda lo, hi: None, 4, np.zeros(10**6))  # the pool's threads run in this process
    pid = os.fork()
    if pid == 0:  # the child inherits the pool object, not its threads
        signal.alarm(30)  # a deadlock would end the child, and fail the test
        ok = parallel.parallel_for(lambda lo, hi: hi, 4, np.zeros(10**6)) == [1, 2, 4]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


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
    with kernels.tuning(threads=None):
        monkeypatch.setenv("NNUMPY_NUM_THREADS", "5")
        assert parallel.get_num_threads() == 5
        monkeypatch.setenv("NNUMPY_NUM_THREADS", "many")
        with pytest.raises(ValueError, match="NNUMPY_NUM_THREADS must be a positive integer, got 'many'"):
            parallel.get_num_threads()
        monkeypatch.delenv("NNUMPY_NUM_THREADS")
        assert parallel.get_num_threads() == len(os.sched_getaffinity(0))


# ------------------------------------------------------- kernels: 3 threads == 1 thread
def outputs_and_grads(module, x, seed=1):
    y = module.forward(x).copy()
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    module.zeroGradParameters()
    gx = module.backward(x, g).copy()
    return [y, gx, *(p.copy() for p in module.grad_parameters())]


def compare_thread_counts(make, x, exact):
    """The kernels split over 3 threads (whatever the array size) vs on one (BLAS threads unchanged)."""
    with kernels.tuning(min_bytes_per_thread=1, chunk_bytes=1, keep_columns_bytes=0):
        threaded = outputs_and_grads(make(), x)
        with kernels.tuning(threads=1):
            serial = outputs_and_grads(make(), x)
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
    like, k = np.zeros(10**6), len(blas_threads())
    with nn.num_threads(2), kernels.tuning(threads=3):  # kernels on 3 threads, BLAS on 2
        seen = parallel.parallel_for(lambda lo, hi: blas_threads(), 3, like, calls_blas=True)
        assert seen == [[1] * k] * 3
        assert blas_threads() == [2] * k  # restored after the pieces
        assert parallel.parallel_for(lambda lo, hi: blas_threads(), 3, like) == [[2] * k] * 3  # no products
        # one piece while the kernels split (the call before did): one BLAS thread too, its threads stay asleep
        assert parallel.parallel_for(lambda lo, hi: blas_threads(), 3, np.zeros(3), calls_blas=True) == [[1] * k]
        assert blas_threads() == [2] * k
    with nn.num_threads(2), kernels.tuning(threads=1):  # nothing splits: BLAS keeps its threads
        assert parallel.parallel_for(lambda lo, hi: blas_threads(), 3, like, calls_blas=True) == [[2] * k]


def test_threads_are_in_use_for_a_number_of_kernel_calls_after_a_split():
    big, small = np.zeros(10**6), np.zeros(3)
    with kernels.tuning(split_window_calls=3):
        assert not kernels.threads_in_use()  # a change of settings starts afresh
        parallel.parallel_for(lambda lo, hi: None, 3, big)
        assert kernels.threads_in_use()
        a = np.ones((60, 50))
        for _ in range(2):
            kernels.matmul(a, a.T)  # products count as kernel calls, and their own splits do not count
            assert kernels.threads_in_use()
        parallel.parallel_for(lambda lo, hi: None, 3, small)
        assert not kernels.threads_in_use()
    with kernels.tuning(split_window_calls=0):  # 0: products always on BLAS's own threads
        parallel.parallel_for(lambda lo, hi: None, 3, big)
        assert not kernels.threads_in_use()


@pytest.mark.parametrize("shape", [(1, 7, 5), (128, 300, 70), (37, 11, 90)])
def test_matmul_on_nnumpy_threads_equals_the_product(shape):
    m, k, n = shape
    r = np.random.default_rng(0)
    a, b = r.normal(size=(m, k)), r.normal(size=(k, n))
    np.testing.assert_allclose(kernels.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)  # not in use: one BLAS call
    blas_before = blas_threads()
    with kernels.tuning(min_bytes_per_thread=1, min_macs_per_thread=1):
        parallel.parallel_for(lambda lo, hi: None, 3, a)  # a split: the threads are in use
        out = np.empty((m, n))
        result = kernels.matmul(np.asfortranarray(a), b, out=out)
        assert kernels.threads_in_use()
    assert result is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    assert blas_threads() == blas_before


def test_linear_threads_agree():
    x = np.random.default_rng(0).standard_normal((64, 40)).astype(np.float32)
    with kernels.tuning(min_macs_per_thread=1):
        compare_thread_counts(lambda: nn.Sequential(nn.ReLU(), nn.Linear(40, 30, rng=0)), x, exact=False)


def test_more_threads_replace_the_pool_and_its_idle_threads_exit():
    like = np.zeros(10**6)
    parallel.parallel_for(lambda lo, hi: None, 3, like)
    old = kernels.parallel._pool["executor"]
    with kernels.tuning(threads=5):
        assert parallel.parallel_for(lambda lo, hi: (lo, hi), 5, like) == [(i, i + 1) for i in range(5)]
    assert kernels.parallel._pool["executor"] is not old and old._shutdown


def test_calls_from_several_user_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor

    x = np.random.default_rng(0).standard_normal((64, 8, 6, 5)).astype(np.float32)
    ref = nn.MaxPool2d(2).forward(x)
    with ThreadPoolExecutor(4) as users:
        results = list(users.map(lambda _: nn.MaxPool2d(2).forward(x), range(8)))
    for r in results:
        np.testing.assert_array_equal(r, ref)


BLAS_WORKERS = r"""
import os, threading, time
import numpy as np
import nnumpy as nn


def blas_worker_ticks():
    '''CPU time (clock ticks) of the threads Python does not know: the BLAS library's workers.'''
    python = {t.native_id for t in threading.enumerate()}
    ticks = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) not in python:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


nn.set_num_threads(2)
model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(8 * 16 * 16, 256), nn.ReLU(), nn.Linear(256, 10))
x = np.random.default_rng(0).standard_normal((64, 3, 32, 32)).astype(np.float32)


def steps(count):
    for _ in range(count):
        y = model.forward(x)
        model.backward(x, np.ones_like(y))


def workers_busy(count):
    steps(1)
    time.sleep(0.5)  # BLAS's workers, if any product woke them, stop spinning
    before = blas_worker_ticks()
    steps(count)
    return blas_worker_ticks() - before


with nn.kernels.tuning(min_bytes_per_thread=1 << 14):  # the CNN's kernels split over 2 threads
    ours = workers_busy(30)
    with nn.kernels.tuning(split_window_calls=0):  # the products on BLAS's threads: its workers spin
        control = workers_busy(30)
print(ours, control)
"""


def test_a_cnn_step_never_wakes_the_blas_worker_threads():
    """While nnumpy's kernels split, no product runs on the BLAS library's own
    threads, so they get no CPU time at all (without that, they spin ~0.1 s
    after each product on the cores nnumpy's threads need)."""
    import subprocess
    import sys

    if not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2:
        pytest.skip("needs Linux's /proc and two cores")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "NNUMPY_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", BLAS_WORKERS], capture_output=True, text=True, env=env,
                            check=True, timeout=300)  # fmt: skip
    ours, control = (int(v) for v in result.stdout.split())
    assert control > 0  # the measurement sees a spinning BLAS thread
    assert ours == 0


TUNE_PROCESS = r"""
import ctypes, os, threading
import numpy, nnumpy
from threadpoolctl import threadpool_info

lib = ctypes.CDLL(next(i["filepath"] for i in threadpool_info() if i["internal_api"] == "openblas"))
a = numpy.ones((300, 300), numpy.float32)
a @ a
if OTHER_THREAD:  # it could be inside a product: no restart
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    try:
        nnumpy.tune_process(blas_spin=18)
    except RuntimeError as error:
        print("refused", "OPENBLAS_THREAD_TIMEOUT" in os.environ, lib.openblas_thread_timeout())
    done.set()
else:
    done = nnumpy.tune_process(threads=1, blas_spin=18)
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    print(done, lib.openblas_thread_timeout(), blas, float((a @ a)[0, 0]))
"""


@pytest.mark.parametrize("other_thread", [False, True], ids=["alone", "beside-another-thread"])
def test_tune_process_sets_the_spin_and_restarts_openblas_when_alone(other_thread):
    import subprocess
    import sys

    if not any(i["internal_api"] == "openblas" for i in threadpool_info()):
        pytest.skip("numpy is not built on OpenBLAS here")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "NNUMPY_NUM_THREADS")}
    code = f"OTHER_THREAD = {other_thread}\n" + TUNE_PROCESS
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         timeout=120).stdout.strip()  # fmt: skip
    if other_thread:
        assert out == "refused False 0"  # nothing changed
    else:
        assert out == "{'threads': 1, 'blas_spin': '18', 'restarted': True} 18 [1] 300.0"  # and products work


@pytest.mark.parametrize("bad", [{"blas_spin": 3}, {"blas_spin": 31}, {"blas_spin": "18"}, {"threads": 0}])
def test_tune_process_rejects_bad_values_before_changing_anything(bad):
    before = dict(os.environ), nn.get_num_threads()
    with pytest.raises(ValueError, match="tune_process"):
        nn.tune_process(**bad)
    assert (dict(os.environ), nn.get_num_threads()) == before
