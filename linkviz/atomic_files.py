"""Whole-file writes: a reader sees the old file or the whole new one, never a part, and writers never collide.

Every weight file, cache chunk and record linkviz writes goes through here: the bytes go to a temporary file
beside the target whose name no other writer uses (host, process and a random part), are fsynced, and the file is
renamed onto the target (:func:`os.replace`, atomic on one file system), then the directory is fsynced. Concurrent
writers each land one whole file and the last rename wins; a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

__all__ = ["fsync_directory", "temp_path", "write_atomically", "write_temp"]


def temp_path(path: Path) -> Path:
    """A hidden temporary name beside ``path`` (``.name.host.pid.random.tmp``) that no other writer uses."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
    return path.with_name(f".{path.name}.{host}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


def write_temp(path: Path, data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary handle) to a fresh temporary file beside ``path``,
    fsynced; return the temporary path."""
    temp = temp_path(path)
    try:
        with open(temp, "xb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def write_atomically(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one, never a part.

    Parameters
    ----------
    path : str or PathLike
        The target; its directory must exist.
    data : bytes or callable
        The whole new content, or a function that writes it to the binary handle it is given (streams large
        arrays, e.g. ``lambda handle: np.savez(handle, **arrays)``, without a second copy in memory).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    temp = write_temp(path, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return path


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened or fsynced)."""
    with suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
