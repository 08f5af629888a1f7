"""Where the chunks of a chunked job run: in this process, or on a Dask cluster.

Sweeps (:func:`~linkviz.tuning.run_sweep`) and change tables (:func:`~linkviz.quantify.sweep_changes`) are
chunked jobs: a :class:`~linkviz.cache.ChunkedStore` on disk and a function that computes chunk ``i``. An engine
runs the chunks that the store does not hold yet and saves each one as soon as it is computed, so the on-disk
format and the resume semantics are the same whichever engine ran them: finished chunks are kept, a chunk whose
computation died (an interrupted process, a killed worker) is computed again, and a chunk is written by one
writer at a time (the store writes atomically under its file lock).

- :class:`LocalEngine` computes the chunks one after the other in this process (the default).
- :class:`DaskEngine` submits one task per chunk to a ``distributed`` cluster; each task computes its chunk on
  a worker and writes it to the shared store itself, so only the chunk number travels back. Dask reschedules the
  task of a worker that died. Why Dask and not Ray: linkviz's jobs are embarrassingly parallel chunks that write
  to a shared folder, which needs nothing beyond a task scheduler; ``distributed`` is pure Python, starts a local
  cluster in a second on a laptop or CI machine, and reaches HPC schedulers and Kubernetes through
  ``dask-jobqueue`` / ``dask-kubernetes`` without a separate object store or daemon.

Threads are chosen deliberately: a task sets torch's thread count to ``threads_per_task`` while it runs (default
1: one process per core, no oversubscription) and restores it afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from linkviz.cache import ChunkedStore, CorruptChunkError

__all__ = ["ChunkCompute", "DaskEngine", "Engine", "LocalEngine", "torch_threads"]

#: Computes chunk ``index`` of a job: the named arrays :meth:`ChunkedStore.save` writes.
ChunkCompute = Callable[[int], dict[str, np.ndarray]]


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads (None: leave as is), restoring the count after."""
    if n_threads is None:
        yield
        return
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be at least 1; got {n_threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@runtime_checkable
class Engine(Protocol):
    """Runs the missing chunks of a chunked job and saves each into the job's store."""

    def run(self, compute: ChunkCompute, store: ChunkedStore, indices: Sequence[int], *,
            sizes: Sequence[int] | None = None, bar: tqdm | None = None) -> None:
        """Compute and save chunk ``i`` for every ``i`` in ``indices``.

        Parameters
        ----------
        compute : callable
            ``compute(i)`` returns chunk ``i``'s arrays.
        store : ChunkedStore
            Where chunk ``i`` is saved (``store.save(i, **arrays)``) as soon as it is computed.
        indices : sequence of int
            The chunks to compute (those the store lacks).
        sizes : sequence of int, optional
            Progress units per chunk (``sizes[k]`` for ``indices[k]``); default 1 each.
        bar : tqdm, optional
            Progress bar to advance as chunks finish.
        """
        ...


def _holds(store: ChunkedStore, index: int) -> bool:
    """Whether ``store`` holds a verified chunk ``index`` (reads that chunk only, not the whole store)."""
    if not store.chunk_path(index).exists():
        return False
    try:
        store.load(index)
    except CorruptChunkError:
        return False  # recomputed and saved over
    return True


def _save_chunk(compute: ChunkCompute, store: ChunkedStore, index: int, n_threads: int | None,
                skip_saved: bool = False) -> int:
    """Compute chunk ``index`` and save it (what one task does, on whichever process runs it); with
    ``skip_saved``, a chunk the store holds already is kept (a cluster reruns the finished tasks of a worker that
    died, because their results died with it)."""
    if skip_saved and _holds(store, index):
        return index
    with torch_threads(n_threads):
        arrays = compute(index)
    store.save(index, **arrays)
    return index


# glibc mallopt parameters: fixed thresholds as glibc's dynamic ones reach on 64-bit (mmap 32 MiB, trim 2x that).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 2**20


def _undo_dask_malloc_settings() -> None:
    """Undo, in a Dask worker, what Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``)
    does to glibc: any fixed malloc threshold switches off the growing mmap threshold, so every freed buffer above
    128 KiB (each activation of a generator pass) goes back to the system and is page-faulted in again on the next
    pass: 23x the page faults and 2.4x the CPU per toy-world image (``benchmarks/README.md``, "Scale-out"). This sets
    the thresholds that glibc's own dynamic rule reaches; a no-op where the C library has no ``mallopt``."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        return


def _dask_chunk(compute: ChunkCompute, store: ChunkedStore, index: int, n_threads: int | None,
                skip_saved: bool) -> int:
    """What one Dask task does: :func:`_save_chunk` with glibc's malloc thresholds restored first."""
    _undo_dask_malloc_settings()
    return _save_chunk(compute, store, index, n_threads, skip_saved)


@dataclass(frozen=True)
class LocalEngine:
    """Compute the chunks one by one in this process, with torch's current thread count (or ``n_threads``)."""

    n_threads: int | None = None

    def run(self, compute: ChunkCompute, store: ChunkedStore, indices: Sequence[int], *,
            sizes: Sequence[int] | None = None, bar: tqdm | None = None) -> None:
        sizes = _sizes(indices, sizes)
        for index, size in zip(indices, sizes, strict=True):
            _save_chunk(compute, store, int(index), self.n_threads)
            if bar is not None:
                bar.update(size)


@dataclass(frozen=True)
class DaskEngine:
    """Run each chunk as one task on a Dask ``distributed`` cluster; workers write their chunks themselves.

    The store's folder must be reachable by every worker at the same path (a local cluster, or a shared file
    system). Finished chunks stay on disk whatever happens to the client; rerunning the job with any engine
    computes only the rest.

    Parameters
    ----------
    client : distributed.Client
        A connected client, e.g. ``Client(LocalCluster(n_workers=2, threads_per_worker=1))``.
    threads_per_task : int
        torch threads inside each task (default 1; match the cluster's ``threads_per_worker`` and cores).
    retries : int
        Times a task is retried after an exception in the task itself (a dead worker's task is rescheduled by
        the scheduler regardless, up to its ``allowed-failures`` setting).

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
    ...     result = run_sweep(link, generator, r_base, stats=stats, out_dir="sweep", engine=DaskEngine(client))
    """

    client: Any
    threads_per_task: int = 1
    retries: int = 0

    def __post_init__(self) -> None:
        if not hasattr(self.client, "submit") or not hasattr(self.client, "scheduler_info"):
            raise TypeError(f"client must be a distributed.Client; got {type(self.client).__name__}")
        if int(self.threads_per_task) < 1 or int(self.retries) < 0:
            raise ValueError(f"threads_per_task must be >= 1 and retries >= 0; got {self.threads_per_task}, "
                             f"{self.retries}")

    def run(self, compute: ChunkCompute, store: ChunkedStore, indices: Sequence[int], *,
            sizes: Sequence[int] | None = None, bar: tqdm | None = None) -> None:
        from distributed import as_completed

        sizes = _sizes(indices, sizes)
        if not indices:
            return
        size_of = dict(zip((int(index) for index in indices), sizes, strict=True))
        token = store.directory.name
        [compute_future] = self.client.scatter([compute], broadcast=True, hash=False)
        futures = [self.client.submit(_dask_chunk, compute_future, store, int(index), self.threads_per_task, True,
                                      key=f"linkviz-chunk-{token}-{int(index)}", retries=self.retries, pure=False)
                   for index in indices]
        try:
            for future in as_completed(futures):
                index = future.result()  # re-raises a task's error here, naming the chunk below
                if bar is not None:
                    bar.update(size_of[index])
        except Exception as error:
            for future in futures:
                future.cancel()
            raise RuntimeError(f"a chunk of the job in {store.directory} failed on the cluster: {error!r}; finished "
                               "chunks are saved, rerun the same call to compute the rest") from error


def _sizes(indices: Sequence[int], sizes: Sequence[int] | None) -> list[int]:
    if sizes is None:
        return [1] * len(indices)
    if len(sizes) != len(indices):
        raise ValueError(f"sizes must have one entry per index; got {len(sizes)} for {len(indices)}")
    return [int(size) for size in sizes]
