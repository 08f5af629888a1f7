"""Tests for linkviz.hashing and linkviz.cache."""

from __future__ import annotations

import hashlib
import io
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.atomic_files import temp_path
from linkviz.cache import (
    CacheMismatchError,
    ChunkedStore,
    CorruptChunkError,
    default_cache_root,
    entry_directory,
)
from linkviz.hashing import hash_arguments, hash_state

KEYS = ("a", "b")


def _linear(seed: int, dtype: torch.dtype = torch.float32) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(3, 2).to(dtype)


class _Holder:
    def __init__(self, seed: int) -> None:
        self.mapping = _linear(seed)
        self.synthesis = _linear(seed + 1)
        self.name = "not a module"


# --- hashing -----------------------------------------------------------------------------------


def test_hash_state_depends_on_weights_only():
    assert hash_state(_linear(0)) == hash_state(_linear(0))
    assert hash_state(_linear(0)) != hash_state(_linear(1))
    changed = _linear(0)
    with torch.no_grad():
        changed.bias[0] += 1e-6
    assert hash_state(changed) != hash_state(_linear(0))


def test_hash_state_bfloat16_and_dtype():
    bf16 = _linear(0, torch.bfloat16)
    assert hash_state(bf16) == hash_state(_linear(0, torch.bfloat16))
    assert hash_state(bf16) != hash_state(_linear(0))


def test_hash_state_of_object_holding_modules():
    assert hash_state(_Holder(0)) == hash_state(_Holder(0))
    other = _Holder(0)
    other.synthesis = _linear(5)
    assert hash_state(other) != hash_state(_Holder(0))
    with pytest.raises(TypeError):
        hash_state(object())


def test_hash_arguments_canonical_forms():
    assert hash_arguments(a=1, b=(1, 2)) == hash_arguments(b=[1, 2], a=1)
    assert hash_arguments(a=1) != hash_arguments(a=1.0)
    assert hash_arguments(a=0.7) != hash_arguments(a=0.7000001)
    assert hash_arguments(a={"y": 1, "x": 2}) == hash_arguments(a={"x": 2, "y": 1})
    array = np.arange(6, dtype=np.float32)
    assert hash_arguments(a=array) == hash_arguments(a=torch.arange(6, dtype=torch.float32))
    assert hash_arguments(a=array) != hash_arguments(a=array.reshape(2, 3))
    assert hash_arguments(a=array) != hash_arguments(a=array.astype(np.float64))
    with pytest.raises(TypeError):
        hash_arguments(a=object())


# --- cache layout --------------------------------------------------------------------------------


def test_default_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("LINKVIZ_CACHE", str(tmp_path))
    assert default_cache_root() == tmp_path
    monkeypatch.delenv("LINKVIZ_CACHE")
    assert default_cache_root() == Path.home() / ".cache" / "linkviz"


def test_entry_directory(tmp_path):
    assert entry_directory(tmp_path, "pairs", "abc") == tmp_path / "pairs" / "abc"
    with pytest.raises(ValueError):
        entry_directory(tmp_path, "pairs", "../x")


# --- ChunkedStore --------------------------------------------------------------------------------


def _store(directory: Path, **meta) -> ChunkedStore:
    return ChunkedStore(directory, meta={"psi": 0.7, "classes": (1, 2), **meta}, keys=KEYS)


def _fill(store: ChunkedStore, n: int) -> None:
    for index in range(n):
        store.save(index, a=np.full((2, 3), index, np.float32), b=np.array([index, -index]))


def test_roundtrip_and_load_all(tmp_path):
    store = _store(tmp_path / "e")
    _fill(store, 3)
    assert store.completed() == {0, 1, 2}
    np.testing.assert_array_equal(store.load(1)["b"], [1, -1])
    merged = store.load_all(["a", "b"])
    assert merged["a"].shape == (6, 3)
    np.testing.assert_array_equal(merged["b"], [0, 0, 1, -1, 2, -2])
    assert (tmp_path / "e" / "chunk_000002.npz").exists()
    assert (tmp_path / "e" / "chunk_000002.sha256").exists()
    assert not list((tmp_path / "e").glob("*.tmp"))


def test_reopen_with_same_meta_keeps_chunks(tmp_path):
    _fill(_store(tmp_path), 2)
    assert _store(tmp_path).completed() == {0, 1}


@pytest.mark.parametrize("change", [{"psi": 0.8}, {"classes": (1, 3)}, {"extra": 1}])
def test_meta_mismatch_raises(tmp_path, change):
    _fill(_store(tmp_path), 1)
    with pytest.raises(CacheMismatchError):
        _store(tmp_path, **change)
    with pytest.raises(CacheMismatchError):
        ChunkedStore(tmp_path, meta={"psi": 0.7, "classes": (1, 2)}, keys=("a",))


def test_save_rejects_wrong_keys(tmp_path):
    with pytest.raises(ValueError):
        _store(tmp_path).save(0, a=np.zeros(2))


def _corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-20])


def _corrupt_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_remove_sidecar(path: Path) -> None:
    path.with_suffix(".sha256").unlink()


def _corrupt_garbage_with_valid_checksum(path: Path) -> None:
    data = b"not a zip file"
    path.write_bytes(data)
    path.with_suffix(".sha256").write_text(hashlib.sha256(data).hexdigest())


def _corrupt_wrong_keys_with_valid_checksum(path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros(1))
    path.write_bytes(buffer.getvalue())
    path.with_suffix(".sha256").write_text(hashlib.sha256(buffer.getvalue()).hexdigest())


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_truncate,
        _corrupt_flip,
        _corrupt_remove_sidecar,
        _corrupt_garbage_with_valid_checksum,
        _corrupt_wrong_keys_with_valid_checksum,
    ],
)
def test_corrupt_chunk_detected_and_deleted(tmp_path, corrupt):
    store = _store(tmp_path)
    _fill(store, 3)
    store.mark_complete()
    path = store.chunk_path(1)
    corrupt(path)
    with pytest.raises(CorruptChunkError):
        store.load(1)
    with pytest.warns(UserWarning, match="chunk_000001"):
        assert store.completed() == {0, 2}
    assert not path.exists()
    assert not store.is_complete
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.completed() == {0, 2}


def test_stale_temp_file_removed_and_live_one_kept(tmp_path):
    """A crashed writer's temp file (older than stale_temp_seconds) goes; a live writer's fresh one stays."""
    store = _store(tmp_path)
    _fill(store, 1)
    stale, live = tmp_path / ".chunk_000001.npz.abc.tmp", tmp_path / ".chunk_000002.npz.def.tmp"
    stale.write_bytes(b"partial")
    live.write_bytes(b"being written")
    hours_ago = time.time() - 7 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    assert store.completed() == {0}
    assert list(tmp_path.glob(".*.tmp")) == [live]


def test_temp_names_are_unique_per_writer(tmp_path):
    names = {temp_path(tmp_path / "chunk_000000.npz").name for _ in range(50)}
    assert len(names) == 50
    assert all(f".{os.getpid()}." in name and name.endswith(".tmp") for name in names)


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_remove_sidecar])
def test_corrupt_chunk_error_names_file_and_repair(tmp_path, corrupt):
    store = _store(tmp_path)
    _fill(store, 2)
    corrupt(store.chunk_path(1))
    with pytest.raises(CorruptChunkError, match=r"chunk_000001\.npz.*rerun the computation with the same"):
        store.load(1, ["b"])


def test_load_selected_keys(tmp_path):
    store = _store(tmp_path)
    _fill(store, 1)
    assert list(store.load(0, ["b"])) == ["b"]
    with pytest.raises(KeyError, match="c"):
        store.load(0, ["c"])


def test_mark_complete(tmp_path):
    store = _store(tmp_path)
    _fill(store, 2)
    assert not store.is_complete
    store.mark_complete()
    assert store.is_complete
    assert _store(tmp_path).is_complete
    store.chunk_path(1).unlink()
    assert not store.is_complete


def test_load_all_requires_contiguous_chunks(tmp_path):
    store = _store(tmp_path)
    _fill(store, 3)
    store.chunk_path(1).unlink()
    with pytest.raises(CorruptChunkError):
        store.load_all(KEYS)
    with pytest.raises(CorruptChunkError):
        store.mark_complete()
