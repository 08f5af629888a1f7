"""dissect() on a local Dask cluster of two processes: the same thresholds and counts as in one process, the same
cache files, resume after a worker killed in the middle of a chunk, and finished chunks kept.

The network is a tiny conv net defined here that notes every forward call in a folder (one file per call, named
with the process id) and, while an "armed" file exists, kills its own process on its second call after removing
the file (so exactly one worker dies, in the middle of a chunk of the first pass).
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from torch import nn

from linkviz.dissection import ProbeDataset, dissect
from linkviz.dissection.chunked_passes import DissectionPasses, chunk_ranges
from linkviz.engines import DaskEngine, LocalEngine, torch_threads

distributed = pytest.importorskip("distributed")

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

N_IMAGES, CHUNK_IMAGES, BATCH = 12, 4, 2  # 3 chunks of 2 batches per pass


class LoggingNet(nn.Module):
    """conv 3 -> 4 units (3x3) -> ReLU -> conv 4 -> 2; notes each forward call; dies once while armed."""

    def __init__(self, log: Path, armed: Path | None = None) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.features = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Conv2d(4, 2, 1)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        self.log, self.armed = str(log), None if armed is None else str(armed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        os.makedirs(self.log, exist_ok=True)
        calls = [name for name in os.listdir(self.log) if name.endswith(f"-{os.getpid()}")]
        Path(self.log, f"{uuid.uuid4().hex}-{os.getpid()}").touch()
        if self.armed is not None and calls:  # second call in this process: in the middle of a chunk
            try:
                os.unlink(self.armed)
            except FileNotFoundError:
                pass
            else:
                os._exit(1)  # a worker lost mid-chunk (out of memory, preempted node)
        return self.head(self.relu(self.features(x)))


def planted_probe() -> ProbeDataset:
    """12 random 8x8 images with 4x4 colour and object label maps and a scene label."""
    rng = np.random.default_rng(1)
    return ProbeDataset(
        images=rng.integers(0, 256, (N_IMAGES, 8, 8, 3), dtype=np.uint8),
        label_names=("-", "red-c", "blue-c", "cat", "dog", "kitchen-s", "beach-s"),
        categories=("color", "object", "scene"),
        pixel_labels={"color": rng.integers(0, 3, (N_IMAGES, 1, 4, 4)),
                      "object": np.where(rng.random((N_IMAGES, 1, 4, 4)) < 0.5,
                                         rng.integers(3, 5, (N_IMAGES, 1, 4, 4)), 0)},
        image_labels={"scene": rng.integers(5, 7, (N_IMAGES, 1))},
    )


def run_dissect(model: nn.Module, cache_dir: Path | None, engine=None, mode: str = "paper"):
    return dissect(model, "relu", planted_probe(), quantile=0.05, batch_size=BATCH, chunk_images=CHUNK_IMAGES,
                   cache_dir=cache_dir, progress=False, engine=engine, top_k=3, mode=mode,
                   threads=1)  # one torch thread here, as in each task on a worker


def forward_calls(log: Path) -> list[str]:
    return sorted(log.iterdir()) if log.exists() else []


def exact_thresholds(model: nn.Module, level: float) -> np.ndarray:
    """``np.quantile`` of every unit over all images and positions."""
    images = torch.from_numpy(planted_probe().images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad(), torch_threads(1):
        maps = model.relu(model.features(images))
    return np.quantile(maps.transpose(0, 1).reshape(4, -1).double().numpy(), level, axis=1)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client


def assert_same_result(ours, theirs) -> None:
    np.testing.assert_array_equal(ours.thresholds, theirs.thresholds)
    for name in ("intersection", "activation", "truth", "active"):
        np.testing.assert_array_equal(getattr(ours.counts, name), getattr(theirs.counts, name))
    np.testing.assert_allclose(ours.iou, theirs.iou, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(ours.unit_labels, theirs.unit_labels)
    np.testing.assert_array_equal(ours.image_max, theirs.image_max)
    np.testing.assert_array_equal(ours.top_images, theirs.top_images)


@pytest.mark.timeout(600)
def test_a_cluster_dissection_equals_one_process_and_survives_a_killed_worker(client, tmp_path):
    local = run_dissect(LoggingNet(tmp_path / "local-log"), None)
    np.testing.assert_array_equal(local.thresholds, exact_thresholds(LoggingNet(tmp_path / "x"), 0.95))
    armed = tmp_path / "armed"
    armed.touch()
    dying = LoggingNet(tmp_path / "log", armed)
    remote = run_dissect(dying, tmp_path / "cache", DaskEngine(client))
    assert not armed.exists()  # a worker died in the middle of a chunk, and the dissection still finished
    assert_same_result(remote, local)
    calls = forward_calls(tmp_path / "log")
    assert str(os.getpid()) not in {name.name.split("-")[1] for name in calls}  # the workers ran the network
    # 2 passes x 3 chunks x 2 batches, plus the killed chunk's calls before it died (1 or 2)
    assert 2 * 6 + 1 <= len(calls) <= 2 * 6 + 2
    lite_here = run_dissect(LoggingNet(tmp_path / "lite-log"), tmp_path / "lite-here", LocalEngine(), mode="lite")
    lite_there = run_dissect(LoggingNet(tmp_path / "lite-log"), tmp_path / "lite-there", DaskEngine(client),
                             mode="lite")
    assert_same_result(lite_there, lite_here)


@pytest.mark.timeout(600)
def test_a_cluster_run_keeps_finished_chunks_and_reads_a_cache_written_by_one_process(client, tmp_path):
    log = tmp_path / "log"
    first = run_dissect(LoggingNet(log), tmp_path / "cache", LocalEngine())
    entry = next((tmp_path / "cache").rglob("thresholds")).parent
    (entry / "thresholds" / "chunk_000001.npz").unlink()  # one chunk of each pass lost
    (entry / "tally" / "chunk_000002.npz").unlink()
    before = len(forward_calls(log))
    again = run_dissect(LoggingNet(log), tmp_path / "cache", DaskEngine(client))
    assert len(forward_calls(log)) - before == 2 * 2  # only the two lost chunks, two batches each
    assert_same_result(again, first)
    before = len(forward_calls(log))
    run_dissect(LoggingNet(log), tmp_path / "cache", DaskEngine(client))  # complete: read only
    assert len(forward_calls(log)) == before


def test_an_engine_without_a_cache_folder_is_refused(tmp_path):
    class Elsewhere:  # an engine that is not this process
        def run(self, *args, **kwargs):
            raise AssertionError("must not run")

    with pytest.raises(ValueError, match="needs cache_dir"):
        run_dissect(LoggingNet(tmp_path / "log"), None, Elsewhere())


def test_independent_threshold_chunks_merge_to_the_exact_quantile(tmp_path):
    """Each chunk alone (no running bound), merged in any order of completion, gives np.quantile."""
    from linkviz.dissection.chunked_passes import _threshold_task

    model, probe = LoggingNet(tmp_path / "log"), planted_probe()
    passes = DissectionPasses(module=model.eval(), layer="relu", probe=probe, categories=probe.categories,
                              label_category=probe.primary_categories(), spec=None, batch_size=BATCH,
                              device=torch.device("cpu"), level=0.99, mode="paper", top_k=0, chunk_images=5,
                              keep_activations_bytes=0, progress=False)
    chunks = [_threshold_task(passes, index) for index in range(len(chunk_ranges(N_IMAGES, 5)))]
    k = int(N_IMAGES * 64 - np.floor((N_IMAGES * 64 - 1) * 0.99))
    assert all(chunk["top_values"].shape[1] == min(k, len(images) * 64)
               for chunk, images in zip(chunks, chunk_ranges(N_IMAGES, 5), strict=True))
    np.testing.assert_array_equal(passes._merged_thresholds(chunks), exact_thresholds(model, 0.99))
