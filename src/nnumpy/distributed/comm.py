"""The communicator and failure handling: who runs, how many, and how an
error on one rank ends the whole job.

``get_comm()`` is ``MPI.COMM_WORLD`` when the process was started by an MPI
launcher (or mpi4py.MPI is already imported), None in one plain process, so
single-process code never initialises MPI. Importing this module installs
nothing: ``init()`` (or ``install_excepthook()``) installs the
abort-on-exception hook, because the user asked for it.
"""

import os
import shutil
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from .. import parallel

__all__ = [
    "init",
    "get_comm",
    "rank",
    "size",
    "is_main",
    "is_distributed",
    "barrier",
    "launched_by_mpi",
    "find_mpiexec",
    "local_size",
    "threads_per_rank",
    "share_cores",
    "install_excepthook",
    "abort_on_error",
    "abort",
]

_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")

_comm = None


# ------------------------------------------------------------------ communicator
def launched_by_mpi():
    """True when this process was started by an MPI launcher (``mpiexec``, ``mpirun``, ``srun``)."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError(
            "nnumpy.distributed: this process was started by an MPI launcher but mpi4py is not "
            "installed; install it with: pip install 'nnumpy[mpi]'  (mpi4py and the mpich wheel)"
        ) from error
    return MPI


def get_comm():
    """The communicator in use, or None when running as one plain process.

    ``MPI.COMM_WORLD`` if the process was launched by ``mpiexec``/``mpirun``
    (or mpi4py.MPI is already imported); the one given to ``init(comm)``;
    None otherwise, so single-process code never initialises MPI.
    """
    global _comm
    if _comm is None and (launched_by_mpi() or "mpi4py.MPI" in sys.modules):
        _comm = _import_mpi().COMM_WORLD
    return _comm


def init(comm=None, abort_on_exception=True):
    """Return the communicator (None in one plain process), and make errors fatal to the job.

    Args:
        comm: an mpi4py communicator to use instead of ``MPI.COMM_WORLD``
            (e.g. a sub-communicator).
        abort_on_exception: when running on several ranks, install
            ``install_excepthook()`` so an uncaught exception on any rank
            aborts the whole job within seconds (instead of leaving the
            other ranks blocked in a collective forever). This replaces the
            process's ``sys.excepthook``; pass False to keep your own (then
            wrap your code in ``abort_on_error()`` or handle errors yourself).
            In one plain process nothing is installed.

    MPI is initialised only when the process was started by an MPI launcher
    (or ``comm`` is given): the same script runs as one process without
    touching MPI. On several ranks, nnumpy's kernel threads are capped at
    ``threads_per_rank()`` (cores / ranks on this machine) unless
    ``NNUMPY_NUM_THREADS`` is set; BLAS threads are left to ``--threads`` or
    ``OMP_NUM_THREADS``.
    """
    global _comm
    if comm is not None:
        _comm = comm
    comm = get_comm()
    share_cores()
    if abort_on_exception and comm is not None and comm.Get_size() > 1:
        install_excepthook()
    return comm


def rank():
    """This process's rank (0 when not running under MPI)."""
    comm = get_comm()
    return comm.Get_rank() if comm is not None else 0


def size():
    """Number of processes (1 when not running under MPI)."""
    comm = get_comm()
    return comm.Get_size() if comm is not None else 1


def is_main():
    """True on rank 0, the process that prints, writes checkpoints and plots."""
    return rank() == 0


def is_distributed():
    """True when more than one process takes part."""
    return size() > 1


def barrier():
    """Wait until every rank gets here."""
    if is_distributed():
        get_comm().Barrier()


def local_size():
    """Number of ranks on this machine (1 without MPI)."""
    comm = get_comm()
    if comm is None or comm.Get_size() == 1:
        return 1
    for var in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def share_cores():
    """On several ranks, cap nnumpy's kernel threads at ``threads_per_rank()``
    (ranks sharing a machine split its cores), unless ``NNUMPY_NUM_THREADS`` is set."""
    if size() > 1 and not os.environ.get("NNUMPY_NUM_THREADS"):
        parallel.set_num_threads(min(parallel.get_num_threads(), threads_per_rank()), blas=False)


def threads_per_rank():
    """BLAS threads per rank that share this machine's cores without oversubscribing."""
    return max(1, (os.cpu_count() or 1) // local_size())


def find_mpiexec():
    """Path of the ``mpiexec`` to launch ranks with, or None.

    Looks next to the running Python first (the ``mpich`` wheel installs it in
    the virtual environment's ``bin``), then on ``PATH``.
    """
    for name in ("mpiexec", "mpirun"):
        candidate = Path(sys.executable).parent / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    return None


# ------------------------------------------------------------------ failure handling
def abort(code=1, message=None):
    """Print ``message`` (prefixed with the rank) and abort every rank of the job."""
    if message:
        print(f"[rank {rank()}/{size()}] {message}", file=sys.stderr, flush=True)
    _abort_comm(code)
    raise SystemExit(code)


def _abort_comm(code):
    comm = get_comm()
    if comm is not None and comm.Get_size() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.3)  # let mpiexec forward what this rank printed before it tears the job down
        comm.Abort(code)


def _abort_hook(exc_type, exc, tb):
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    prefix = f"[rank {rank()}/{size()}] "
    sys.stderr.write("".join(prefix + line + "\n" for line in text.rstrip("\n").split("\n")))
    sys.stderr.write(f"{prefix}aborting all ranks\n")
    _abort_comm(1)


def install_excepthook():
    """Make an uncaught exception on any rank print its traceback (prefixed
    with the rank) and ``Abort`` the communicator, so the other ranks, possibly
    blocked in a collective, end too and ``mpiexec`` exits non-zero.
    (``python -m mpi4py script.py`` does the same for scripts.)"""
    if sys.excepthook is not _abort_hook:
        sys.excepthook = _abort_hook


@contextmanager
def abort_on_error():
    """Context manager: any exception (or ``SystemExit`` with a non-zero code)
    inside the block aborts the whole job when running on several ranks.

    Use it around code whose errors are caught and turned into an exit code
    (a command-line tool), where ``sys.excepthook`` never sees them.
    """
    try:
        yield
    except SystemExit as error:
        if error.code not in (None, 0) and is_distributed():
            abort(error.code if isinstance(error.code, int) else 1, f"exiting with {error.code!r}")
        raise
    except BaseException:
        if is_distributed():
            _abort_hook(*sys.exc_info())
        raise
