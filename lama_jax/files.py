"""Atomic writes: a file or folder appears complete under its final name or not at all, with
the permissions a plain `open` or `mkdir` would have given it (tempfile's are private)."""

from __future__ import annotations

import os
import tempfile


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask cannot be read without setting it


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
