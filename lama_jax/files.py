"""File-system primitives: atomic writes, exclusive locks, and cloud-storage paths.

Atomic writes: a file or folder appears complete under its final name or not at all, with the
permissions a plain `open` or `mkdir` would have given it (tempfile's are private).

Locks: `exclusive_lock` holds an advisory lock (`flock`) on a file for a block. The kernel
drops it when its process ends, however it ends, so a crash never leaves a folder locked;
the file records who holds it, for the message that refuses a second holder.

Cloud storage: a path with a scheme (`gs://bucket/run`, `s3://...`) is remote (`is_remote`);
the modules that accept one (training workdirs, model directories) reach it through
`etils.epath` instead of `os`, since it has no local folder, no rename of folders and no locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import time
from typing import Iterator

from lama_jax.errors import LamaJaxError


class LockedError(LamaJaxError, RuntimeError):
    """Another process holds the lock; the message names it and the lock file."""


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask cannot be read without setting it


def is_remote(path: str) -> bool:
    """Whether `path` is a cloud-storage URI (`gs://...`, `s3://...`) rather than a local path."""
    return "://" in str(path)


def full_path(path: str) -> str:
    """A local `path` made absolute; a cloud-storage URI unchanged."""
    return str(path) if is_remote(path) else os.path.abspath(path)


def write_atomic(path: str, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def staging_dir(parent: str, prefix: str) -> str:
    """A new empty folder in `parent` to fill before renaming it into place."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(path, 0o777 & ~_UMASK)
    return path


@contextlib.contextmanager
def exclusive_lock(path: str, what: str) -> Iterator[None]:
    """Holds the lock file `path` while the block runs; raises `LockedError` at once if
    another process holds it. `what` names the locked thing in the message."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with open(path) as f:
                holder = f.read().strip() or "another process"
            raise LockedError(f"{what}: in use by {holder}; wait for it to finish (the lock "
                              f"is {path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, (f"process {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n").encode())
        yield
    finally:
        os.close(fd)  # releases the lock
