"""Whole-file writes: a reader sees the old file or the whole new one, concurrent writers never share a temp file."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from linkviz.atomic_files import write_atomically
from linkviz.linking import LinearLink

SIZE = 1 << 20


def test_a_write_replaces_the_file_and_leaves_no_temporary_behind(tmp_path):
    path = tmp_path / "weights.safetensors"
    assert write_atomically(path, b"old") == path
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    write_atomically(path, b"old")
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]


def test_concurrent_writers_and_a_reader_only_ever_see_whole_files(tmp_path):
    path = tmp_path / "shared.bin"
    write_atomically(path, b"a" * SIZE)
    seen, errors, stop = set(), [], threading.Event()

    def writer(byte: bytes) -> None:
        try:
            for _ in range(20):
                write_atomically(path, byte * SIZE)
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    def reader() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            seen.add((len(data), data[:1], data[-1:]))

    threads = [threading.Thread(target=writer, args=(b,)) for b in (b"b", b"c")]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    assert not errors
    assert all(length == SIZE and first == last for length, first, last in seen), seen
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]


def test_a_saved_link_is_written_whole(tmp_path):
    link = LinearLink(weight=np.ones((2, 3), dtype=np.float32), bias=np.zeros(2, dtype=np.float32), latent_norm=2.0)
    link.save(tmp_path / "link.safetensors")
    link.save(tmp_path / "link.safetensors")
    again = LinearLink.load(tmp_path / "link.safetensors")
    np.testing.assert_array_equal(again.weight, link.weight)
    assert again.latent_norm == 2.0 and [p.name for p in tmp_path.iterdir()] == ["link.safetensors"]


def test_a_streamed_write_is_whole_too(tmp_path):
    path = tmp_path / "arrays.npz"
    write_atomically(path, lambda handle: np.savez(handle, a=np.arange(5)))
    with np.load(path) as data:
        np.testing.assert_array_equal(data["a"], np.arange(5))

    def broken(handle) -> None:
        handle.write(b"partial")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        write_atomically(path, broken)
    with np.load(path) as data:  # the old file, whole
        np.testing.assert_array_equal(data["a"], np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]
