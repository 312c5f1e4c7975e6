"""Crash-safe file writes.

Every write goes to a temporary file in the target's directory, is flushed
and fsynced, then atomically renamed over the target (and the directory
fsynced), so a process killed mid-write leaves the previous file intact.

A temporary file is named ``.<name>.<host>.<pid>.<random>.tmp``: the writer's
host and process id. A write that was killed leaves its temporary file
behind; the next write to the same path removes the temporaries of writers
on this host that are gone (their process no longer exists), never those of
a live writer (a concurrent save) nor of another host's.
"""

import contextlib
import os
import re
import socket
import tempfile

__all__ = ["atomic_write", "remove_stale_temporaries"]

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
    remove_stale_temporaries(path)
    prefix = f".{os.path.basename(path)}.{_host()}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
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


def _host():
    """This host's name as it appears in temporary names (no dots)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists (another user's process)
        return True
    return True


def remove_stale_temporaries(path):
    """Remove the temporary files that killed writers of ``path`` left
    (``.<name>.<host>.<pid>.<random>.tmp`` of this host whose process is
    gone); returns their names. Temporaries of live writers and of other
    hosts are kept, as is anything else in the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.{_host()}.") + r"(\d+)\.[^.]+\.tmp")
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))
            removed.append(name)
    return removed


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
