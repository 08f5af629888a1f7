"""Engines run a chunked job's missing chunks into its store: locally, or on a local Dask cluster of processes.

The job here is planted: chunk ``i`` holds ``i`` repeated and a per-process marker, so the stores written by the
local engine and by the cluster can be compared, and a worker can be killed in the middle of a chunk (the task
kills its own process the first time it runs); the cluster must recompute that chunk and keep the others.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import torch

from linkviz.cache import ChunkedStore
from linkviz.engines import DaskEngine, LocalEngine, torch_threads

distributed = pytest.importorskip("distributed")

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

KEYS = ("chunk", "values", "threads")


def planted_chunk(index: int, *, log: Path, die_at: int | None = None) -> dict[str, np.ndarray]:
    """Chunk ``index``: its number, 100 values from it, and torch's thread count inside the task; notes each
    start in ``log`` (one file per start); kills its own process the first time it runs chunk ``die_at``."""
    log.mkdir(parents=True, exist_ok=True)
    starts = len(list(log.glob(f"chunk{index}-*")))
    (log / f"chunk{index}-{starts}-{os.getpid()}").touch()
    if index == die_at and starts == 0:
        os._exit(1)  # a worker killed mid-chunk (out of memory, preempted node)
    if index == -1:
        raise ValueError("planted failure")
    values = np.random.default_rng(index).normal(size=100)
    return {"chunk": np.array([index]), "values": values, "threads": np.array([torch.get_num_threads()])}


def open_store(directory: Path) -> ChunkedStore:
    return ChunkedStore(directory, meta={"job": "planted"}, keys=KEYS)


def starts(log: Path, index: int) -> int:
    return len(list(log.glob(f"chunk{index}-*")))


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client


def test_torch_threads_sets_and_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="at least 1"), torch_threads(0):
        pass


def test_the_local_engine_saves_each_chunk_and_resumes_after_an_interruption(tmp_path):
    store, log = open_store(tmp_path / "store"), tmp_path / "log"
    compute = partial(planted_chunk, log=log)
    with pytest.raises(ValueError, match="planted failure"):
        LocalEngine().run(lambda i: compute(-1) if i == 2 else compute(i), store, range(4))
    assert store.completed() == {0, 1}  # what finished before the failure is on disk
    LocalEngine(n_threads=1).run(compute, store, sorted(set(range(4)) - store.completed()))
    assert store.completed() == {0, 1, 2, 3}
    assert [starts(log, i) for i in range(4)] == [1, 1, 1, 1]  # chunks 0 and 1 were not computed again
    assert store.load(3)["threads"][0] == 1


@pytest.mark.timeout(600)
def test_a_dask_cluster_writes_the_same_store_and_recomputes_a_killed_workers_chunk(client, tmp_path):
    local, log = open_store(tmp_path / "local"), tmp_path / "local-log"
    LocalEngine().run(partial(planted_chunk, log=log), local, range(6))
    store, log = open_store(tmp_path / "cluster"), tmp_path / "cluster-log"
    DaskEngine(client).run(partial(planted_chunk, log=log, die_at=3), store, range(6))
    assert store.completed() == set(range(6))
    assert starts(log, 3) == 2  # killed once, rescheduled once
    assert all(starts(log, i) == 1 for i in (0, 1, 2, 4, 5))
    for index in range(6):
        ours, theirs = store.load(index), local.load(index)
        np.testing.assert_array_equal(ours["values"], theirs["values"])
        assert ours["threads"][0] == 1  # one torch thread per task: no oversubscription of the cores
    pids = {name.name.rsplit("-", 1)[1] for name in log.iterdir()}
    assert str(os.getpid()) not in pids  # computed by the workers, not the client


@pytest.mark.timeout(600)
def test_a_failing_chunk_on_the_cluster_says_what_to_do_and_keeps_the_rest(client, tmp_path):
    store, log = open_store(tmp_path / "store"), tmp_path / "log"
    compute = partial(planted_chunk, log=log)
    with pytest.raises(RuntimeError, match="rerun the same call"):
        DaskEngine(client).run(lambda i: compute(-1) if i == 0 else compute(i), store, range(3))
    LocalEngine().run(compute, store, sorted(set(range(3)) - store.completed()))
    assert store.completed() == {0, 1, 2}


def page_faults_of_reused_buffers(index: int) -> dict[str, np.ndarray]:
    """Chunk ``index``: minor page faults while 50 buffers of 4 MiB (a generator activation's size) are filled and
    freed one after the other; with glibc's own malloc thresholds the second and later reuse the first's pages."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        np.ones(2**20, dtype=np.float32)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {"chunk": np.array([index]), "values": np.array([faults], dtype=float), "threads": np.array([1])}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc and getrusage page faults")
def test_dask_tasks_reuse_freed_memory_instead_of_faulting_it_in_again(client, tmp_path):
    """Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which fixes glibc's mmap threshold at 128 KiB: every
    freed buffer above it was returned to the system and faulted in again (1024 faults per 4 MiB buffer, 2.4x the
    CPU per toy-world image). DaskEngine's tasks restore glibc's thresholds."""
    store = open_store(tmp_path / "store")
    DaskEngine(client).run(page_faults_of_reused_buffers, store, range(2))
    faults = [store.load(index)["values"][0] for index in range(2)]
    assert max(faults) < 50 * 1024 / 4, f"page faults for 50 reused 4 MiB buffers: {faults} (1024 per buffer = none reused)"


def test_dask_engine_refuses_what_is_not_a_client():
    with pytest.raises(TypeError, match="distributed.Client"):
        DaskEngine(object())


# --- a real job: a unit sweep of the toy generator ---


class DyingGenerator:
    """The toy generator, except that the first synthesis in any process after ``armed`` exists kills that
    process (once: the file is removed first), as a worker lost mid-chunk."""

    def __init__(self, generator, armed: Path) -> None:
        self.generator, self.armed = generator, armed
        for name in ("num_ws", "w_dim", "z_dim", "c_dim", "img_resolution"):
            setattr(self, name, getattr(generator, name))

    def synthesis(self, ws):
        try:
            self.armed.unlink()
        except FileNotFoundError:
            return self.generator.synthesis(ws)
        os._exit(1)

    def state_dict(self):
        return self.generator.state_dict()


@pytest.fixture(scope="module")
def toy_sweep_inputs():
    import linkviz
    from linkviz.linking import LinearLink, UnitStats

    generator = linkviz.load_toy_world().generator
    rng = np.random.default_rng(0)
    r = rng.gamma(2.0, 1.0, size=(50, 6)).astype(np.float32)
    w_avg = generator.mapping.w_avg.mean(0).numpy()
    link = LinearLink(weight=rng.normal(0, 0.05, size=(generator.w_dim, 6)).astype(np.float32), bias=w_avg)
    return generator, link, UnitStats.from_activations(r), r[:3]


@pytest.mark.timeout(900)
def test_a_sweep_on_the_cluster_equals_the_local_one_and_survives_a_killed_worker(client, toy_sweep_inputs, tmp_path):
    from linkviz.tuning import run_sweep

    generator, link, stats, r_base = toy_sweep_inputs
    options = {"stats": stats, "n_steps": 3, "units_per_chunk": 1, "progress": False}
    local = run_sweep(link, generator, r_base, out_dir=tmp_path / "local", **options)
    armed = tmp_path / "armed"
    armed.touch()
    dying = DyingGenerator(generator, armed)
    remote = run_sweep(link, dying, r_base, out_dir=tmp_path / "remote", engine=DaskEngine(client), **options)
    assert not armed.exists()  # a worker died in the middle of a chunk, and the sweep still finished
    assert remote.units == local.units == tuple(range(6))
    for unit in local.units:  # the same images up to float rounding (one torch thread on a worker, two here)
        assert_same_images(remote.images(unit), local.images(unit))
    again = run_sweep(link, dying, r_base, out_dir=tmp_path / "remote", **options)  # complete: a read
    np.testing.assert_array_equal(again.images(5), remote.images(5))

    # the part-change table of the same sweep, measured on the cluster and here
    from linkviz.quantify import sweep_changes

    measure = {"segmenter_id": "bright-v1", "units_per_chunk": 2, "progress": False}
    here = sweep_changes(remote, bright_parts, ("dark", "bright"), cache_dir=tmp_path / "here", **measure)
    there = sweep_changes(remote, bright_parts, ("dark", "bright"), cache_dir=tmp_path / "there",
                          engine=DaskEngine(client), **measure)
    assert len(here.frame) > 0
    pd.testing.assert_frame_equal(there.frame, here.frame)


def bright_parts(images: np.ndarray) -> np.ndarray:
    """A segmenter: part 1 where the image is brighter than mid-grey."""
    return (np.asarray(images).mean(-1) > 127).astype(np.int64)


def assert_same_images(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Equal but for rounding: at most 1 of 255 apart, in under 0.1% of the values."""
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
