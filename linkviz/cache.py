"""Disk caches for resumable batch jobs that never silently reuse bad data.

An entry lives in ``<root>/<namespace>/<key>/`` and records, in ``meta.json``,
the full arguments it was computed with; opening it with other arguments raises
:class:`CacheMismatchError`. Results are stored as numbered chunks, each written
atomically with a sha256 sidecar, so an interrupted job resumes from the chunks
that verify and recomputes the rest.

Several processes may write to one entry at once: temporary files have names
unique to their writer (host, pid, random suffix) and are moved into place with
:func:`os.replace`; creating ``meta.json``, putting a chunk and its checksum in
place, discarding a corrupt chunk and writing ``complete.json`` hold the entry's
:mod:`filelock` lock (``.lock``). Readers take it only to confirm a failure
before acting on it. Temporary files are removed only once older than
``stale_temp_seconds`` (a crashed writer's), never while a writer may use them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from linkviz.atomic_files import fsync_directory, write_atomically, write_temp

__all__ = [
    "CacheMismatchError",
    "ChunkedStore",
    "CorruptChunkError",
    "default_cache_root",
    "entry_directory",
]

_CACHE_ENV = "LINKVIZ_CACHE"
_CHUNK_PATTERN = re.compile(r"^chunk_(\d{6})\.npz$")
_META_FILE = "meta.json"
_COMPLETE_FILE = "complete.json"
_LOCK_FILE = ".lock"
_STALE_TEMP_SECONDS = 6 * 3600.0
_LOCK_TIMEOUT_SECONDS = 600.0
_REPAIR_HINT = ("delete it (ChunkedStore.completed() does) and rerun the computation with the same arguments "
                "to recompute that chunk")


class CacheMismatchError(RuntimeError):
    """A cache entry was computed with other arguments than the ones given."""


class CorruptChunkError(RuntimeError):
    """A chunk on disk fails its checksum or cannot be read."""


def default_cache_root() -> Path:
    """Return the cache root: ``$LINKVIZ_CACHE`` if set, else ``~/.cache/linkviz``."""
    root = os.environ.get(_CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "linkviz"


def entry_directory(root: str | os.PathLike[str], namespace: str, key: str) -> Path:
    """Return ``<root>/<namespace>/<key>`` (not created)."""
    for part in (namespace, key):
        if not part or "/" in part or "\\" in part or part in (".", ".."):
            raise ValueError(f"invalid cache path component {part!r}")
    return Path(root).expanduser() / namespace / key


def _json_normalised(value: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so tuples become lists, as they will on disk."""
    return json.loads(json.dumps(dict(value), sort_keys=True, allow_nan=False))


class ChunkedStore:
    """Append-only store of numbered chunks of named arrays, safe for concurrent writers.

    Parameters
    ----------
    directory : str or path-like
        Entry directory (created if missing), usually from :func:`entry_directory`.
    meta : dict
        JSON-able arguments the entry is computed with. Written to ``meta.json``
        on first open; on later opens it must match exactly.
    keys : sequence of str, optional
        Array names every chunk must hold. Part of the entry's identity (checked
        like ``meta``). If omitted, chunks are only checked for integrity.
    stale_temp_seconds : float
        Age after which a temporary file is taken for a crashed writer's and
        removed by :meth:`completed` (default 6 hours).
    lock_timeout : float
        Seconds to wait for the entry's lock before raising ``TimeoutError``.

    Raises
    ------
    CacheMismatchError
        If the directory holds an entry made with different ``meta`` or ``keys``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        meta: Mapping[str, Any],
        keys: Sequence[str] | None = None,
        stale_temp_seconds: float = _STALE_TEMP_SECONDS,
        lock_timeout: float = _LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self.directory = Path(directory).expanduser()
        self.keys = None if keys is None else tuple(keys)
        self.stale_temp_seconds = float(stale_temp_seconds)
        self.lock_timeout = float(lock_timeout)
        record = _json_normalised(
            {"meta": meta, "keys": None if self.keys is None else list(self.keys)}
        )
        self.meta = record["meta"]
        meta_path = self.directory / _META_FILE
        if meta_path.exists():  # read-only caches open without taking the lock
            self._check_record(meta_path, record)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if meta_path.exists():  # another writer created it meanwhile
                self._check_record(meta_path, record)
            else:
                write_atomically(meta_path, json.dumps(record, sort_keys=True, indent=1).encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the entry's inter-process lock; ``TimeoutError`` naming it if another process keeps it."""
        lock = FileLock(self.directory / _LOCK_FILE, timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout as error:
            raise TimeoutError(f"waited {self.lock_timeout:.0f} s for the cache lock {lock.lock_file}; another "
                               "process holds it. If no linkviz job is running, delete that file and retry") from error
        try:
            yield
        finally:
            lock.release()

    def _check_record(self, meta_path: Path, record: dict[str, Any]) -> None:
        try:
            stored = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            raise CacheMismatchError(f"unreadable {meta_path}: {error}; delete {self.directory} to recompute "
                                     "the entry") from error
        if stored == record:
            return
        stored_meta = stored.get("meta", {}) if isinstance(stored, dict) else {}
        differing = sorted(
            name
            for name in set(stored_meta) | set(record["meta"])
            if stored_meta.get(name) != record["meta"].get(name)
        )
        if isinstance(stored, dict) and stored.get("keys") != record["keys"]:
            differing.append("<keys>")
        raise CacheMismatchError(
            f"cache entry {self.directory} was computed with different arguments "
            f"(differing: {', '.join(differing) or 'format'}); refusing to reuse it"
        )

    def chunk_path(self, index: int) -> Path:
        """Path of chunk ``index`` (``chunk_000012.npz``)."""
        if not 0 <= index <= 999_999:
            raise ValueError(f"chunk index must be in [0, 999999], got {index}")
        return self.directory / f"chunk_{index:06d}.npz"

    def _checksum_path(self, index: int) -> Path:
        return self.chunk_path(index).with_suffix(".sha256")

    def save(self, index: int, **arrays: np.ndarray) -> None:
        """Write chunk ``index`` atomically with its checksum sidecar.

        Both files are written to temporary files, then moved into place together
        under the entry's lock.

        Parameters
        ----------
        index : int
            Chunk number.
        **arrays : np.ndarray
            Named arrays; names must equal ``keys`` when the store has them.
        """
        if self.keys is not None and set(arrays) != set(self.keys):
            raise ValueError(f"chunk arrays {sorted(arrays)} differ from store keys {sorted(self.keys)}")
        converted = {name: np.asarray(value) for name, value in arrays.items()}
        for name, value in converted.items():
            if value.dtype == object:
                raise TypeError(f"array {name!r} has object dtype; cannot be stored")
        buffer = io.BytesIO()
        np.savez(buffer, **converted)
        data = buffer.getvalue()
        path, checksum_path = self.chunk_path(index), self._checksum_path(index)
        sidecar = f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode()
        temps = [write_temp(path, data), write_temp(checksum_path, sidecar)]
        try:
            with self._locked():
                checksum_path.unlink(missing_ok=True)
                os.replace(temps[0], path)
                os.replace(temps[1], checksum_path)
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)
        fsync_directory(self.directory)

    def load(self, index: int, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Read chunk ``index``, verifying its checksum and keys.

        Parameters
        ----------
        index : int
            Chunk number.
        keys : iterable of str, optional
            Arrays to return (default all); the whole file is still verified.

        Returns
        -------
        dict of str to np.ndarray
            The arrays saved under ``index``.

        Raises
        ------
        CorruptChunkError
            If the chunk is missing, fails its checksum or cannot be parsed; the
            message names the file and how to repair it.
        """
        try:
            return self._read(index, keys)
        except CorruptChunkError:
            with self._locked():  # it may have been caught mid-replacement by another writer
                return self._read(index, keys)

    def _read(self, index: int, keys: Iterable[str] | None) -> dict[str, np.ndarray]:
        path = self.chunk_path(index)
        try:
            data = path.read_bytes()
            expected = self._checksum_path(index).read_text().split()[0]
        except (OSError, IndexError) as error:
            raise _corrupt(path, f"missing chunk or checksum ({error})") from error
        if hashlib.sha256(data).hexdigest() != expected:
            raise _corrupt(path, "checksum mismatch (truncated or damaged file)")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                names = set(archive.files)
                if self.keys is not None and names != set(self.keys):
                    raise _corrupt(path, f"holds {sorted(names)}, expected {sorted(self.keys)}")
                wanted = archive.files if keys is None else list(keys)
                missing = sorted(set(wanted) - names)
                if missing:
                    raise KeyError(f"chunk {path} holds no arrays {missing}; it has {sorted(names)}")
                return {name: archive[name] for name in wanted}
        except (CorruptChunkError, KeyError):
            raise
        except Exception as error:  # zip/format errors come in many types
            raise _corrupt(path, f"unreadable ({type(error).__name__}: {error})") from error

    def _chunk_indices_on_disk(self) -> list[int]:
        return sorted(
            int(match.group(1))
            for match in map(_CHUNK_PATTERN.match, os.listdir(self.directory))
            if match
        )

    def completed(self) -> set[int]:
        """Indices of chunks that exist and verify.

        Every chunk on disk is read in full. A chunk that fails its checksum,
        cannot be parsed or lacks the expected keys (also when checked again
        under the entry's lock) is deleted, with a warning naming it, so the
        caller recomputes it. Temporary files older than
        ``stale_temp_seconds`` (left by crashed writers) are removed; younger
        ones may belong to a live writer and are left alone.

        Returns
        -------
        set of int
        """
        now = time.time()
        for temp in self.directory.glob(".*.tmp"):
            with suppress(FileNotFoundError):  # its writer may move it into place meanwhile
                if now - temp.stat().st_mtime > self.stale_temp_seconds:
                    temp.unlink()
        good = set()
        for index in self._chunk_indices_on_disk():
            try:
                self._read(index, None)
            except CorruptChunkError:
                with self._locked():
                    try:
                        self._read(index, None)
                    except CorruptChunkError as error:
                        warnings.warn(f"discarding corrupt cache chunk: {error}", stacklevel=2)
                        self.chunk_path(index).unlink(missing_ok=True)
                        self._checksum_path(index).unlink(missing_ok=True)
                        (self.directory / _COMPLETE_FILE).unlink(missing_ok=True)
                        continue
            good.add(index)
        return good

    def load_all(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Concatenate arrays ``keys`` over all chunks in index order.

        Parameters
        ----------
        keys : iterable of str
            Names of the arrays to concatenate along axis 0.

        Returns
        -------
        dict of str to np.ndarray

        Raises
        ------
        CorruptChunkError
            If a chunk is corrupt or the chunk numbers are not ``0 .. n-1``.
        """
        keys = list(keys)
        indices = self._chunk_indices_on_disk()
        if indices != list(range(len(indices))):
            raise CorruptChunkError(f"{self.directory}: chunks are not contiguous from 0: {indices}; "
                                    "rerun the computation with the same arguments to fill the gaps")
        if not indices:
            raise CorruptChunkError(f"{self.directory}: no chunks; run the computation to fill it")
        chunks = [self.load(index, keys) for index in indices]
        return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in keys}

    def mark_complete(self) -> None:
        """Record that the job finished, with the number of chunks written."""
        with self._locked():
            indices = self._chunk_indices_on_disk()
            if indices != list(range(len(indices))):
                raise CorruptChunkError(f"{self.directory}: chunks are not contiguous from 0: {indices}; "
                                        "rerun the computation with the same arguments to fill the gaps")
            record = json.dumps({"n_chunks": len(indices)}).encode()
            write_atomically(self.directory / _COMPLETE_FILE, record)

    @property
    def is_complete(self) -> bool:
        """Whether :meth:`mark_complete` ran and its chunk count still holds."""
        try:
            record = json.loads((self.directory / _COMPLETE_FILE).read_text())
        except (OSError, ValueError):
            return False
        indices = self._chunk_indices_on_disk()
        return indices == list(range(record.get("n_chunks", -1)))


def _corrupt(path: Path, reason: str) -> CorruptChunkError:
    return CorruptChunkError(f"corrupt cache chunk {path}: {reason}; {_REPAIR_HINT}")

