"""Disk caches for resumable batch jobs that never silently reuse bad data.

An entry lives in ``<root>/<namespace>/<key>/`` and records, in ``meta.json``,
the full arguments it was computed with; opening it with other arguments raises
:class:`CacheMismatchError`. Results are stored as numbered chunks, each written
atomically with a sha256 sidecar, so an interrupted job resumes from the chunks
that verify and recomputes the rest.

A store assumes a single writer at a time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename."""
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open directories
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _json_normalised(value: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so tuples become lists, as they will on disk."""
    return json.loads(json.dumps(dict(value), sort_keys=True, allow_nan=False))


class ChunkedStore:
    """Append-only store of numbered chunks of named arrays.

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
    ) -> None:
        self.directory = Path(directory).expanduser()
        self.keys = None if keys is None else tuple(keys)
        record = _json_normalised(
            {"meta": meta, "keys": None if self.keys is None else list(self.keys)}
        )
        self.meta = record["meta"]
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self.directory / _META_FILE
        if meta_path.exists():
            self._check_record(meta_path, record)
        else:
            _atomic_write(meta_path, json.dumps(record, sort_keys=True, indent=1).encode())

    def _check_record(self, meta_path: Path, record: dict[str, Any]) -> None:
        try:
            stored = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            raise CacheMismatchError(f"unreadable {meta_path}: {error}") from error
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
        self._checksum_path(index).unlink(missing_ok=True)
        _atomic_write(self.chunk_path(index), data)
        sidecar = f"{hashlib.sha256(data).hexdigest()}  {self.chunk_path(index).name}\n"
        _atomic_write(self._checksum_path(index), sidecar.encode())

    def load(self, index: int) -> dict[str, np.ndarray]:
        """Read chunk ``index``, verifying its checksum and keys.

        Returns
        -------
        dict of str to np.ndarray
            The arrays saved under ``index``.

        Raises
        ------
        CorruptChunkError
            If the chunk is missing, fails its checksum or cannot be parsed.
        """
        path = self.chunk_path(index)
        try:
            data = path.read_bytes()
            expected = self._checksum_path(index).read_text().split()[0]
        except (OSError, IndexError) as error:
            raise CorruptChunkError(f"{path}: missing chunk or checksum ({error})") from error
        if hashlib.sha256(data).hexdigest() != expected:
            raise CorruptChunkError(f"{path}: checksum mismatch")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except Exception as error:  # zip/format errors come in many types
            raise CorruptChunkError(f"{path}: unreadable ({error})") from error
        if self.keys is not None and set(arrays) != set(self.keys):
            raise CorruptChunkError(f"{path}: holds {sorted(arrays)}, expected {sorted(self.keys)}")
        return arrays

    def _chunk_indices_on_disk(self) -> list[int]:
        return sorted(
            int(match.group(1))
            for match in map(_CHUNK_PATTERN.match, os.listdir(self.directory))
            if match
        )

    def _discard(self, index: int) -> None:
        self.chunk_path(index).unlink(missing_ok=True)
        self._checksum_path(index).unlink(missing_ok=True)
        (self.directory / _COMPLETE_FILE).unlink(missing_ok=True)

    def completed(self) -> set[int]:
        """Indices of chunks that exist and verify.

        Every chunk on disk is read in full. A chunk that fails its checksum,
        cannot be parsed or lacks the expected keys is deleted (with a warning
        naming it) so the caller recomputes it. Leftover temporary files from
        interrupted writes are removed.

        Returns
        -------
        set of int
        """
        for name in os.listdir(self.directory):
            if name.startswith(".") and name.endswith(".tmp"):
                (self.directory / name).unlink(missing_ok=True)
        good = set()
        for index in self._chunk_indices_on_disk():
            try:
                self.load(index)
            except CorruptChunkError as error:
                warnings.warn(f"discarding corrupt cache chunk: {error}", stacklevel=2)
                self._discard(index)
            else:
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
            raise CorruptChunkError(f"{self.directory}: chunks are not contiguous from 0: {indices}")
        if not indices:
            raise CorruptChunkError(f"{self.directory}: no chunks")
        chunks = [self.load(index) for index in indices]
        return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in keys}

    def mark_complete(self) -> None:
        """Record that the job finished, with the number of chunks written."""
        indices = self._chunk_indices_on_disk()
        if indices != list(range(len(indices))):
            raise CorruptChunkError(f"{self.directory}: chunks are not contiguous from 0: {indices}")
        record = json.dumps({"n_chunks": len(indices)}).encode()
        _atomic_write(self.directory / _COMPLETE_FILE, record)

    @property
    def is_complete(self) -> bool:
        """Whether :meth:`mark_complete` ran and its chunk count still holds."""
        try:
            record = json.loads((self.directory / _COMPLETE_FILE).read_text())
        except (OSError, ValueError):
            return False
        indices = self._chunk_indices_on_disk()
        return indices == list(range(record.get("n_chunks", -1)))
