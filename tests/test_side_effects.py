"""Importing nnumpy changes nothing in the host process (issue 12): the
environment, the excepthooks, every signal handler, the warning filters,
NumPy's error state, the running threads and OpenBLAS's threads and settings
are the same before and after ``import nnumpy`` and every one of its
submodules, with numpy imported before or after, and after nnumpy's threaded
kernels ran (BLAS's thread count is restored when they end). Each case runs in
a fresh interpreter."""

import json
import os
import subprocess
import sys

import pytest

SNAPSHOT = r'''
import json, os, signal, sys, threading, warnings

# the helpers below use threadpoolctl, whose import sets KMP_DUPLICATE_LIB_OK: import it before any snapshot
import threadpoolctl  # noqa: F401


def describe(obj):
    """What a hook or handler is, the same in two processes (no addresses)."""
    if isinstance(obj, (int, type(None))):
        return repr(obj)
    kind = obj if isinstance(obj, type) else type(obj)
    return f"{getattr(obj, '__module__', kind.__module__)}.{getattr(obj, '__qualname__', kind.__qualname__)}"


def snapshot():
    return {
        "environ": dict(os.environ),
        "hooks": [describe(h) for h in (sys.excepthook, threading.excepthook, sys.unraisablehook, sys.displayhook)],
        "signals": {int(s): describe(signal.getsignal(s)) for s in signal.valid_signals()},
        "warnings": [repr(f) for f in warnings.filters],
        "meta_path": [describe(f) for f in sys.meta_path],
        "threads": sorted(t.name for t in threading.enumerate()),
    }


def native_threads():
    return set(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else set()


def blas():
    """Thread counts of the BLAS libraries and, for OpenBLAS, its idle-spin setting."""
    import ctypes
    from threadpoolctl import threadpool_info

    out = []
    for info in threadpool_info():
        spin = None
        if info.get("internal_api") == "openblas":
            lib = ctypes.CDLL(info["filepath"])
            spin = lib.openblas_thread_timeout() if hasattr(lib, "openblas_thread_timeout") else None
        out.append([info["filepath"], info["num_threads"], spin])
    return out


def import_everything():
    import pkgutil

    import nnumpy

    names = sorted(m.name for m in pkgutil.walk_packages(nnumpy.__path__, "nnumpy.") if "__main__" not in m.name)
    for name in names:
        __import__(name)
    return names


def run_threaded_kernels():
    """A convolution, BatchNorm, ReLU, pooling and Linear step split over nnumpy's threads."""
    import numpy as np

    import nnumpy as nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64, 5))
    x = np.random.default_rng(0).standard_normal((6, 3, 8, 8)).astype(np.float32)
    with nn.kernels.tuning(min_bytes_per_thread=1, min_macs_per_thread=1, chunk_bytes=1):
        y = model.forward(x)
        model.backward(x, np.ones_like(y))
        assert nn.kernels.threads_in_use()
    assert any(t.name.startswith("nnumpy") for t in threading.enumerate())  # the kernels did split
'''

CASE = r"""
import sys
if NUMPY_FIRST:
    import numpy
    a = numpy.ones((400, 400))
    a @ a  # OpenBLAS's worker threads run
    errors = numpy.geterr()
loaded = set(sys.modules)
before_blas, before_tasks = (blas(), native_threads()) if NUMPY_FIRST else (None, None)
before = snapshot()
if DEPENDENCIES is None:
    modules = import_everything()
else:  # the same modules as nnumpy's imports loaded, without nnumpy
    modules = []
    for name in DEPENDENCIES:
        try:
            __import__(name)
        except Exception:
            pass
after = snapshot()
report = {
    "modules": modules,
    "dependencies": [m for m in sys.modules if m not in loaded and m.split(".")[0] != "nnumpy"],
    "before": before,
    "after": after,
}
if NUMPY_FIRST:
    import numpy
    a @ a
    report["blas"] = [before_blas, blas()]
    report["openblas_threads_kept"] = before_tasks <= native_threads()
    report["numpy_errors"] = [errors, numpy.geterr()]
else:
    report["blas"] = [blas()]
if DEPENDENCIES is None:
    run_threaded_kernels()
    report["blas"].append(blas())
    report["after_kernels"] = snapshot()
    if NUMPY_FIRST:
        a @ a
        report["openblas_threads_kept"] = report["openblas_threads_kept"] and before_tasks <= native_threads()
print(json.dumps(report))
"""

PLAIN_NUMPY = r"""
import numpy
print(json.dumps(blas()))
"""


def run(numpy_first, dependencies=None):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "NNUMPY_NUM_THREADS")}
    script = f"NUMPY_FIRST = {numpy_first}\nDEPENDENCIES = {dependencies!r}\n" + CASE
    result = subprocess.run([sys.executable, "-c", SNAPSHOT + script], capture_output=True, text=True, env=env,
                            check=False, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


CASES = {"numpy imported first": True, "numpy imported after": False}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    """``(nnumpy's process, the same dependencies imported without nnumpy)``."""
    ours = run(CASES[request.param])
    return ours, run(CASES[request.param], ours["dependencies"])


def test_every_submodule_is_imported(case):
    modules = case[0]["modules"]
    assert "nnumpy.kernels" in modules and "nnumpy.layers.conv" in modules and len(modules) > 20


def test_import_changes_only_what_its_dependencies_change(case):
    ours, dependencies = case
    assert ours["before"] == dependencies["before"]  # two fresh interpreters
    for key, value in dependencies["after"].items():
        assert ours["after"][key] == value, f"importing nnumpy changed {key} beyond what its dependencies' imports do"


def test_import_restarts_no_openblas_thread_and_changes_no_blas_setting(case):
    ours, _ = case
    if "numpy_errors" not in ours:  # numpy imported after nnumpy: its settings are numpy's defaults
        assert ours["blas"][0] == run_plain_numpy()
        return
    before, after, _ = ours["blas"]
    assert before and after == before
    assert ours["openblas_threads_kept"]
    assert ours["numpy_errors"][0] == ours["numpy_errors"][1]


def run_plain_numpy():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "NNUMPY_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", SNAPSHOT + PLAIN_NUMPY], capture_output=True, text=True,
                            env=env, check=True, timeout=300)  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_threaded_kernels_leave_the_process_as_they_found_it(case):
    ours, _ = case
    assert ours["blas"][-1] == ours["blas"][-2]  # BLAS's thread count is back
    after, after_kernels = ours["after"], ours["after_kernels"]
    for key, value in after.items():
        if key != "threads":  # nnumpy's pool threads stay for the next kernel
            assert after_kernels[key] == value, f"nnumpy's threaded kernels changed {key}"
