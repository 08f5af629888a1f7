"""Scale-out of a unit sweep: one process vs. a local Dask cluster of 2 workers, and what N workers would take.

The same sweep (toy world, a random link over ``--units`` units, ``--seeds`` base examples, 5 steps) runs
through :func:`linkviz.run_sweep` with :class:`~linkviz.engines.LocalEngine` (one process, one torch thread) and
with :class:`~linkviz.engines.DaskEngine` on a ``distributed.LocalCluster`` of 2 worker processes with one thread
each (the cluster is started, and every path warmed up on 4 units, before timing). Both write the same images (checked: at most 1 grey level apart).
The paths alternate over ``--repeats`` rounds, each into a fresh folder.

From the measured images per second per worker, the script prints the cost of the paper's job (2048 units x 100
seeds x 5 steps per class) for N workers, assuming the near-linear scaling the 1 -> 2 step shows (chunks are
independent and write their own files); a GPU worker's rate is not measured here (no GPU in this run), so the
table is per CPU worker, with the GPU rows to be filled from ``bench_sweep.py`` on a GPU.

Run: ``.venv/bin/python benchmarks/bench_scale_out.py [--units 32] [--seeds 8] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from distributed import Client, LocalCluster

import linkviz
from linkviz.engines import DaskEngine, LocalEngine
from linkviz.linking import LinearLink, UnitStats
from linkviz.tuning import run_sweep

STEPS = 5
PAPER_IMAGES_PER_CLASS = 2048 * 100 * STEPS


def inputs(n_units: int, n_seeds: int, *, seed: int = 0):
    """The toy generator, a random link from ``n_units`` units, its stats and ``n_seeds`` base activations."""
    generator = linkviz.load_toy_world(device="cpu").generator
    rng = np.random.default_rng(seed)
    r = rng.gamma(2.0, 1.0, size=(200, n_units)).astype(np.float32)
    link = LinearLink(weight=rng.normal(0, 0.3 / np.sqrt(n_units), size=(generator.w_dim, n_units)).astype(
        np.float32), bias=generator.mapping.w_avg.mean(0).numpy())
    return generator, link, UnitStats.from_activations(r), r[:n_seeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator, link, stats, r_base = inputs(args.units, args.seeds)
    images = args.units * args.seeds * STEPS
    options = {"stats": stats, "n_steps": STEPS, "units_per_chunk": 2, "progress": False}
    seconds: dict[str, list[float]] = {"1 process": [], "2 Dask workers": []}
    with tempfile.TemporaryDirectory() as work, LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                              dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        engines = {"1 process": LocalEngine(n_threads=1), "2 Dask workers": DaskEngine(client)}
        for engine in engines.values():  # untimed: workers import torch and linkviz, everyone warms up
            run_sweep(link, generator, r_base, out_dir=Path(tempfile.mkdtemp(dir=work)), engine=engine,
                      **{**options, "units": [0, 1, 2, 3]})
        results = {}
        for repeat in range(args.repeats):
            for name in (list(engines) if repeat % 2 == 0 else list(engines)[::-1]):
                out = Path(tempfile.mkdtemp(dir=work))
                start = time.perf_counter()
                results[name] = run_sweep(link, generator, r_base, out_dir=out, engine=engines[name], **options)
                seconds[name].append(time.perf_counter() - start)
        local, remote = results["1 process"], results["2 Dask workers"]
        difference = max(int(np.abs(local.images(u).astype(int) - remote.images(u).astype(int)).max())
                         for u in local.units)
        assert difference <= 1, f"the engines disagree by {difference} grey levels"
    rate = {name: images / float(np.median(times)) for name, times in seconds.items()}
    speed_up = rate["2 Dask workers"] / rate["1 process"]
    print(f"unit sweep scale-out, toy world, {args.units} units x {args.seeds} seeds x {STEPS} steps = {images} "
          f"images, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, one torch thread per worker, "
          f"median of {args.repeats}")
    for name, value in rate.items():
        print(f"  {name:<15} {value:7.1f} img/s")
    print(f"  speed-up 1 -> 2 workers: {speed_up:.2f}x (same images, max difference {difference} grey level)")
    per_worker = rate["2 Dask workers"] / 2
    print(f"\nthe paper's job per class ({PAPER_IMAGES_PER_CLASS:,} images) at {per_worker:.1f} img/s per CPU worker "
          "(toy generator; a StyleGAN-XL pass is far costlier, scale by its measured rate):")
    print(f"  {'workers':>8} {'hours':>8}")
    for workers in (1, 2, 8, 32, 128):
        print(f"  {workers:>8} {PAPER_IMAGES_PER_CLASS / (per_worker * workers) / 3600:8.2f}")


if __name__ == "__main__":
    main()
