"""Several writers on one ChunkedStore: no writer loses a chunk to another's clean-up, all chunks verify."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

import linkviz.cache
from linkviz.cache import ChunkedStore

META = {"job": "concurrency", "n": 24}
KEYS = ("number", "payload")
N_CHUNKS = 24


def _payload(index: int) -> np.ndarray:
    """Deterministic content of chunk ``index`` (about 200 kB, so writes take a while)."""
    return np.random.default_rng(index).normal(size=(250, 100))


def _writer(directory: str, offset: int) -> int:
    """Open the store, write every chunk (starting at ``offset``, so writers overlap), calling completed() often."""
    store = ChunkedStore(directory, meta=META, keys=KEYS)
    for step in range(N_CHUNKS):
        index = (offset + step) % N_CHUNKS
        store.save(index, number=np.array([index]), payload=_payload(index))
        store.completed()
    return os.getpid()


def test_completed_during_another_writers_save_keeps_its_temp_file(tmp_path, monkeypatch):
    """B calls completed() while A's chunk sits in its temp file; A's save must still land (it used to fail
    with FileNotFoundError because B deleted A's temp file)."""
    writer_a = ChunkedStore(tmp_path, meta=META, keys=KEYS)
    writer_b = ChunkedStore(tmp_path, meta=META, keys=KEYS)
    real_replace = os.replace
    interleaved = []

    def replace_after_other_writer_cleans_up(source, target):
        if not interleaved and str(source).endswith(".tmp") and Path(target).name.startswith("chunk_"):
            interleaved.append(sorted(writer_b.completed()))
        real_replace(source, target)

    monkeypatch.setattr(linkviz.cache.os, "replace", replace_after_other_writer_cleans_up)
    writer_a.save(0, number=np.array([0]), payload=_payload(0))
    assert interleaved == [[]]
    np.testing.assert_array_equal(writer_b.load(0)["payload"], _payload(0))
    assert writer_b.completed() == {0}


def test_processes_writing_one_store_at_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    n_writers = 3
    with context.Pool(n_writers) as pool:
        pids = pool.starmap(_writer, [(str(tmp_path), k * N_CHUNKS // n_writers) for k in range(n_writers)])
    assert len(pids) == n_writers
    store = ChunkedStore(tmp_path, meta=META, keys=KEYS)
    assert store.completed() == set(range(N_CHUNKS))
    for index in range(N_CHUNKS):
        chunk = store.load(index)
        assert chunk["number"].tolist() == [index]
        np.testing.assert_array_equal(chunk["payload"], _payload(index))
    store.mark_complete()
    assert store.is_complete
    assert not list(tmp_path.glob(".*.tmp"))


def test_concurrent_first_open_with_other_meta_is_refused(tmp_path):
    ChunkedStore(tmp_path, meta=META, keys=KEYS)
    with pytest.raises(linkviz.cache.CacheMismatchError, match="n"):
        ChunkedStore(tmp_path, meta={**META, "n": 25}, keys=KEYS)
