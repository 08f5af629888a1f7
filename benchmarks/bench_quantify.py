"""Quantification throughput: ``sweep_changes`` with the vectorised part metrics vs. the previous per-sequence path.

The baseline is a faithful copy of the path ``sweep_changes`` took before (commit f574abb): per unit, per seed,
:func:`~linkviz.quantify.measure_parts` (one ``skimage`` labelling, ``regionprops`` and rank-entropy call per
image and part, a row dict per part and per component) then :func:`~linkviz.quantify.part_changes` (pandas
``melt``, ``merge`` and ``groupby`` per sequence), concatenated, and the table encoded with a Python lookup per row.
It runs inside the same ``sweep_changes`` (same segmentation, cache writes and decoding) by swapping the chunk
function, and the script checks that both produce the same table.

The sweep is written in ``run_sweep``'s on-disk format from the toy generator's images, each unit moving every
seed's latent along its own direction per step; the segmenter returns the samples' true part masks
(``ToyWorld.true_parts``, looked up by image), so that only the quantification is timed.

Both paths are interleaved (one repetition of each before the next) on one thread; the table reports the median
ms per tuned image of each, their ratio, peak Python-heap memory (tracemalloc, in a separate untimed run, since
tracing slows pure-Python code more than numpy) and the time the new path would take for the full toy sweep
(256 units x 100 seeds x 5 steps = 128k images) on 2 processes, with and without the segmenter's own cost
(``--segmenter-ms``, per image, measured separately: 1.6 ms for the render U-Net in issue 16).

Run: ``.venv/bin/python benchmarks/bench_quantify.py [--sizes 2x8,4x16,8x32,16x32] [--repeats 3] [--dask]``
(``--dask`` also times the new path on a ``DaskEngine`` over a 2-worker ``LocalCluster`` at the largest size,
after one untimed run that imports linkviz in the workers, interleaved with the same path in this process).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from linkviz.cache import ChunkedStore
from linkviz.images import to_uint8
from linkviz.quantify import ChangeTable, measure_parts, part_changes, pipeline, sweep_changes
from linkviz.tuning import SweepResult
from linkviz.worlds.toy import load_toy_world

FULL_SWEEP_IMAGES = 256 * 100 * 5


class TruthSegmenter:
    """Images -> their true part masks, looked up by the images' bytes (picklable for Dask workers)."""

    def __init__(self, images: np.ndarray, masks: np.ndarray) -> None:
        self.masks = {hashlib.blake2b(image.tobytes(), digest_size=16).digest(): mask.astype(np.uint8)
                      for image, mask in zip(images, masks)}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self.masks[hashlib.blake2b(image.tobytes(), digest_size=16).digest()] for image in images])


def write_toy_sweep(directory: Path, world, n_units: int, n_seeds: int, n_steps: int = 5,
                    seed: int = 0) -> tuple[SweepResult, TruthSegmenter]:
    """A finished sweep of toy renders [U, N, S, R, R, 3] on disk and the segmenter of their true parts."""
    generator = torch.Generator().manual_seed(seed)
    z_dim, c_dim = world.generator.z_dim, world.generator.c_dim
    base = torch.randn(n_seeds, z_dim, generator=generator)
    classes = torch.nn.functional.one_hot(torch.randint(0, c_dim, (n_seeds,), generator=generator), c_dim).float()
    directions = torch.randn(n_units, z_dim, generator=generator) * 0.1
    offsets = torch.arange(n_steps, dtype=torch.float32) - n_steps // 2
    z = base[None, :, None] + directions[:, None, None] * offsets[None, None, :, None]
    z = z.reshape(-1, z_dim)
    c = classes[None, :, None].expand(n_units, n_seeds, n_steps, c_dim).reshape(-1, c_dim)
    with torch.no_grad():
        images = np.concatenate([to_uint8(world.generator(z[i:i + 256], c[i:i + 256]).numpy())
                                 for i in range(0, len(z), 256)])
    masks = world.true_parts(z, c)
    meta = {"format": 1, "bench": "toy renders", "units": list(range(n_units)), "n_seeds": n_seeds,
            "n_steps": n_steps, "mode": "range", "units_per_chunk": 8, "store_w": False, "seed": seed}
    store = ChunkedStore(directory, meta=meta, keys=["units", "values", "baseline_step", "images"])
    shaped = images.reshape(n_units, n_seeds, n_steps, *images.shape[1:])
    for index, start in enumerate(range(0, n_units, 8)):
        group = np.arange(start, min(start + 8, n_units))
        values = np.broadcast_to(offsets.numpy(), (len(group), n_seeds, n_steps))
        store.save(index, units=group.astype(np.int64), values=np.ascontiguousarray(values),
                   baseline_step=np.full((len(group), n_seeds), n_steps // 2, np.int64), images=shaped[group])
    store.mark_complete()
    return SweepResult(directory), TruthSegmenter(images, masks)


def baseline_chunk_changes(sweep, units, segment, labels, *, reference_step, change_options) -> ChangeTable:
    """The chunk function of ``sweep_changes`` before vectorising: per unit, per seed, pandas per sequence."""
    images = np.stack([sweep.images(unit) for unit in units])
    masks = pipeline._segment_batch(segment, images.reshape(-1, *images.shape[3:]), len(labels))
    masks = masks.reshape(images.shape[:5])
    tables = []
    for j, unit in enumerate(units):
        references = pipeline._reference_steps(sweep, unit, reference_step)
        options = dict(change_options)
        change_keys = ("visibility", "area_floor", "angle_min_eccentricity")
        changes = {key: options.pop(key) for key in change_keys if key in options}
        for k in range(images.shape[1]):
            measured = measure_parts(images[j, k], masks[j, k], labels, reference_step=int(references[k]), **options)
            tables.append(part_changes(measured, unit=unit, seed=k, **changes))
    return ChangeTable.concat(tables)


def baseline_encode(table: ChangeTable, labels) -> dict[str, np.ndarray]:
    """``_encode`` before: a Python dict lookup per row."""
    frame = table.frame
    label_index = {name: i for i, name in enumerate(labels)}
    metric_index = {name: i for i, name in enumerate(pipeline.METRICS)}
    return {"unit": frame["unit"].to_numpy(np.int64), "seed": frame["seed"].to_numpy(np.int64),
            "step": frame["step"].to_numpy(np.int64),
            "label": np.array([label_index[name] for name in frame["label"]], dtype=np.int64),
            "metric": np.array([metric_index[str(name)] for name in frame["metric"]], dtype=np.int64),
            "value": frame["value"].to_numpy(np.float64), "baseline": frame["baseline"].to_numpy(np.float64),
            "change": frame["change"].to_numpy(np.float64), "visible": frame["visible"].to_numpy(bool)}


def run_path(path: str, sweep, segment, labels, cache_dir: Path, engine=None) -> tuple[float, pd.DataFrame]:
    """Seconds of one uncached ``sweep_changes`` on ``path`` ("baseline" or "new"), and its table."""
    patches = ([mock.patch.object(pipeline, "_chunk_changes", baseline_chunk_changes),
                mock.patch.object(pipeline, "_encode", baseline_encode)] if path == "baseline" else [])
    for patch in patches:
        patch.start()
    try:
        start = time.perf_counter()
        table = sweep_changes(sweep, segment, labels, segmenter_id=f"truth-{path}-{time.time_ns()}",
                              cache_dir=cache_dir, progress=False, engine=engine)
        return time.perf_counter() - start, table.frame
    finally:
        for patch in patches:
            patch.stop()


def peak_memory_mb(path: str, sweep, segment, labels, cache_dir: Path) -> float:
    tracemalloc.start()
    try:
        run_path(path, sweep, segment, labels, cache_dir)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def markdown_table(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2x8,4x16,8x32,16x32", help="units x seeds, comma separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--segmenter-ms", type=float, default=1.6, help="segmenter cost per image, for the estimate")
    parser.add_argument("--dask", action="store_true", help="also time a 2-worker LocalCluster at the largest size")
    args = parser.parse_args()
    world = load_toy_world(device="cpu")
    labels = world.part_names
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
        torch.set_num_threads(1)
        for size in args.sizes.split(","):
            n_units, n_seeds = (int(part) for part in size.split("x"))
            sweep, segment = write_toy_sweep(Path(tmp) / f"sweep-{size}", world, n_units, n_seeds)
            n_images = n_units * n_seeds * sweep.n_steps
            times: dict[str, list[float]] = {"baseline": [], "new": []}
            tables = {}
            for _ in range(args.repeats):
                for path, measured in times.items():  # interleaved
                    seconds, tables[path] = run_path(path, sweep, segment, labels, Path(tmp) / "cache")
                    measured.append(seconds)
            pd.testing.assert_frame_equal(tables["new"], tables["baseline"], check_dtype=False, rtol=1e-9, atol=1e-9)
            baseline_ms, new_ms = (1e3 * statistics.median(times[path]) / n_images for path in ("baseline", "new"))
            rows.append({"units x seeds x steps": f"{n_units} x {n_seeds} x {sweep.n_steps}", "images": n_images,
                         "baseline ms/img": round(baseline_ms, 2), "new ms/img": round(new_ms, 2),
                         "speed-up": round(baseline_ms / new_ms, 1),
                         "baseline peak MiB": round(peak_memory_mb("baseline", sweep, segment, labels,
                                                                   Path(tmp) / "cache"), 1),
                         "new peak MiB": round(peak_memory_mb("new", sweep, segment, labels, Path(tmp) / "cache"), 1),
                         "128k on 2 procs, min (metrics / + segmenter)":
                             f"{new_ms * FULL_SWEEP_IMAGES / 2 / 6e4:.1f} / "
                             f"{(new_ms + args.segmenter_ms) * FULL_SWEEP_IMAGES / 2 / 6e4:.1f}"})
            print(rows[-1], flush=True)
        print(markdown_table(rows))
        if args.dask:
            from distributed import Client, LocalCluster

            from linkviz.engines import DaskEngine

            with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client):
                engine = DaskEngine(client)
                run_path("new", sweep, segment, labels, Path(tmp) / "cache", engine=engine)  # warm: imports
                times = {"one": [], "two": []}
                for _ in range(args.repeats):  # interleaved
                    times["one"].append(run_path("new", sweep, segment, labels, Path(tmp) / "cache")[0])
                    times["two"].append(run_path("new", sweep, segment, labels, Path(tmp) / "cache", engine=engine)[0])
                one, two = statistics.median(times["one"]), statistics.median(times["two"])
            print(f"{n_images} images: 1 process {1e3 * one / n_images:.2f} ms/img, 2-worker LocalCluster "
                  f"{1e3 * two / n_images:.2f} ms/img (speed-up {one / two:.2f}x); 128k images on 2 workers: "
                  f"{two / n_images * FULL_SWEEP_IMAGES / 60:.1f} min")


if __name__ == "__main__":
    main()
