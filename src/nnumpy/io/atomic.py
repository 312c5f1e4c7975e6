"""Crash-safe file writes.

Every write goes to a temporary file in the target's directory, is flushed
and fsynced, then atomically renamed over the target (and the directory
fsynced), so a process killed mid-write leaves the previous file intact.
"""

import contextlib
import os
import tempfile

__all__ = ["atomic_write"]

# A hook for tests: called with the temporary file's path after it is fully
# written and fsynced, just before the rename (the kill-during-write test pauses here).
before_replace = None


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path`` for writing; on success flush,
    fsync, rename it over ``path`` and fsync the directory. On error (or a
    kill) ``path`` is untouched and the temporary file is removed (or left as a
    hidden ``.name.*.tmp`` after a kill, which nothing reads).

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "history.json")
        >>> with atomic_write(p, "w") as f:
        ...     _ = f.write("{}")
        >>> open(p).read()
        '{}'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is not what an ordinary file gets
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
