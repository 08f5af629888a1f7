"""Scale-out of a unit sweep: one process vs. a local Dask cluster of 2 workers, why, and what N GPUs would take.

Three measurements, interleaved over ``--repeats`` rounds, each reporting images per second (wall) and the CPU
time per image summed over every process involved (``psutil`` / ``time.process_time``; this number does not
depend on how much of the machine other jobs take, the wall rate does):

1. **Raw generator passes outside Dask** (the same ``render_latents`` at batch 8): one process with 1 torch
   thread, one process with 2 threads, two spawned processes with 1 thread each rendering half the images
   (started together at a barrier). If two processes cost the same CPU per image as one, the machine gives
   two processes their speed-up whenever it has two free cores.
2. **The sweep** (toy world, a random link over ``--units`` units, ``--seeds`` base examples, 5 steps) through
   :func:`linkviz.run_sweep` with :class:`~linkviz.engines.LocalEngine` (1 thread) and with
   :class:`~linkviz.engines.DaskEngine` on a ``LocalCluster`` of 2 worker processes x 1 thread (started and
   warmed up before timing). Same images checked (at most 1 grey level apart). For Dask the CPU is split into
   workers, nannies and this process (client and scheduler), plus each worker's busy fraction from the task
   stream and the torch threads seen inside a task.
3. **The N-GPU plan**: the paper's job (2048 units x 100 seeds x 5 steps per class) on N GPUs from an *assumed*
   per-GPU generator throughput (``--gpu-images-per-s``; not measured here: no GPU) and the *measured* Dask
   efficiency (the fraction of the workers' time spent inside tasks).

Run: ``.venv/bin/python benchmarks/bench_scale_out.py [--units 16] [--seeds 8] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import torch
from distributed import Client, LocalCluster, get_task_stream

import linkviz
from linkviz.engines import DaskEngine, LocalEngine, _undo_dask_malloc_settings
from linkviz.linking import LinearLink, UnitStats
from linkviz.tuning import run_sweep
from linkviz.tuning.sweep import render_latents

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


def raw_passes(n_images: int, n_threads: int, seed: int, barrier=None) -> tuple[float, float]:
    """(wall s, CPU s) of ``n_images`` toy generator passes at batch 8 on ``n_threads`` torch threads, timed after
    loading and a warm-up (and after ``barrier``, so that two processes start together)."""
    torch.set_num_threads(n_threads)
    _undo_dask_malloc_settings()  # these processes start after the cluster, whose malloc setting leaks into os.environ
    generator = linkviz.load_toy_world(device="cpu").generator
    noise = torch.randn(n_images, generator.w_dim, generator=torch.Generator().manual_seed(seed))
    w = generator.mapping.w_avg.mean(0) + 0.5 * noise
    render_latents(generator, w[:16], batch_size=8)
    if barrier is not None:
        barrier.wait()
    cpu, start = time.process_time(), time.perf_counter()
    render_latents(generator, w, batch_size=8)
    return time.perf_counter() - start, time.process_time() - cpu


def raw_rates(n_images: int) -> dict[str, tuple[float, float]]:
    """name -> (img/s, CPU ms per image) of the raw passes, each configuration in fresh spawned processes."""
    context = multiprocessing.get_context("spawn")
    out = {}
    for name, threads in (("1 process x 1 thread", 1), ("1 process x 2 threads", 2)):
        with context.Pool(1) as pool:
            wall, cpu = pool.apply(raw_passes, (n_images, threads, 0))
        out[name] = (n_images / wall, 1000 * cpu / n_images)
    with context.Manager() as manager, context.Pool(2) as pool:
        barrier = manager.Barrier(2)
        jobs = [pool.apply_async(raw_passes, (n_images // 2, 1, seed, barrier)) for seed in range(2)]
        results = [job.get() for job in jobs]
    out["2 processes x 1 thread"] = (2 * (n_images // 2) / max(r[0] for r in results),
                                     1000 * sum(r[1] for r in results) / (2 * (n_images // 2)))
    return out


def _cpu_seconds(pids: list[int]) -> float:
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def _threads_in_task() -> tuple[int, str | None]:
    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")


def timed_dask(run: Callable[[], object], client: Client) -> dict[str, float]:
    """Wall and CPU seconds of ``run()`` on the cluster: workers, nannies, this process; workers' busy time."""
    worker_pids = list(client.run(os.getpid).values())
    nanny_pids = [psutil.Process(pid).parent().pid for pid in worker_pids]
    before = {"workers": _cpu_seconds(worker_pids), "nannies": _cpu_seconds(nanny_pids),
              "client + scheduler": time.process_time()}
    start = time.perf_counter()
    with get_task_stream(client) as stream:
        run()
    wall = time.perf_counter() - start
    after = {"workers": _cpu_seconds(worker_pids), "nannies": _cpu_seconds(nanny_pids),
             "client + scheduler": time.process_time()}
    busy = sum(part["stop"] - part["start"] for task in stream.data for part in task["startstops"]
               if part["action"] == "compute")
    return {"wall": wall, "busy": busy, **{name: after[name] - before[name] for name in before}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gpu-images-per-s", type=float, default=100.0,
                        help="ASSUMED StyleGAN-XL-size generator images/s on one GPU (measure with bench_sweep.py)")
    parser.add_argument("--classes", type=int, default=1, help="classes of the paper's job")
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator, link, stats, r_base = inputs(args.units, args.seeds)
    images = args.units * args.seeds * STEPS
    options = {"stats": stats, "n_steps": STEPS, "units_per_chunk": 2, "progress": False}
    print(f"load before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    raw: dict[str, list[tuple[float, float]]] = {}
    sweep: dict[str, list[tuple[float, float]]] = {"LocalEngine, 1 thread": [], "DaskEngine, 2 x 1 thread": []}
    parts: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as work, LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                              dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        engines = {"LocalEngine, 1 thread": LocalEngine(n_threads=1), "DaskEngine, 2 x 1 thread": DaskEngine(client)}
        for engine in engines.values():  # untimed: workers import torch and linkviz, everyone warms up
            run_sweep(link, generator, r_base, out_dir=Path(tempfile.mkdtemp(dir=work)), engine=engine,
                      **{**options, "units": [0, 1, 2, 3]})
        in_task = [client.submit(_threads_in_task, pure=False, key=f"threads-{i}").result() for i in range(2)]
        results = {}
        for repeat in range(args.repeats):
            for name, value in raw_rates(images).items():
                raw.setdefault(name, []).append(value)
            for name in (list(engines) if repeat % 2 == 0 else list(engines)[::-1]):
                out = Path(tempfile.mkdtemp(dir=work))

                def run(name=name, out=out) -> None:
                    results[name] = run_sweep(link, generator, r_base, out_dir=out, engine=engines[name], **options)

                if name.startswith("Dask"):
                    part = timed_dask(run, client)
                    parts.append(part)
                    cpu = part["workers"] + part["nannies"] + part["client + scheduler"]
                    sweep[name].append((images / part["wall"], 1000 * cpu / images))
                else:
                    cpu, start = time.process_time(), time.perf_counter()
                    run()
                    wall = time.perf_counter() - start
                    sweep[name].append((images / wall, 1000 * (time.process_time() - cpu) / images))
        local, remote = results["LocalEngine, 1 thread"], results["DaskEngine, 2 x 1 thread"]
        difference = max(int(np.abs(local.images(u).astype(int) - remote.images(u).astype(int)).max())
                         for u in local.units)
        assert difference <= 1, f"the engines disagree by {difference} grey levels"
    load = os.getloadavg()[0]
    print(f"\nunit sweep scale-out, toy world, {images} images ({args.units} units x {args.seeds} seeds x {STEPS} "
          f"steps), median of {args.repeats}, load after {load:.1f}; torch threads / OMP_NUM_THREADS inside a Dask "
          f"task: {in_task}")
    print(f"  {'':<28}{'img/s':>8}{'CPU ms/img':>12}{'speed-up':>10}")
    for table in (raw, sweep):
        first = float(np.median([v[0] for v in next(iter(table.values()))]))
        for name, values in table.items():
            rate, cpu = float(np.median([v[0] for v in values])), float(np.median([v[1] for v in values]))
            print(f"  {name:<28}{rate:8.1f}{cpu:12.1f}{rate / first:9.2f}x")
    part = {key: float(np.median([p[key] for p in parts])) for key in parts[0]}
    print(f"  Dask CPU split (s, median): workers {part['workers']:.2f}, nannies {part['nannies']:.2f}, "
          f"client + scheduler {part['client + scheduler']:.2f}; workers busy in tasks {part['busy']:.2f} s of "
          f"{2 * part['wall']:.2f} worker-seconds; images the same (max difference {difference} grey level)")
    plan(args.gpu_images_per_s, args.classes, min(1.0, part["busy"] / (2 * part["wall"])))


def plan(gpu_images_per_s: float, classes: int, efficiency: float) -> None:
    """Print the paper's job on N GPUs: ``images / (N * per-GPU rate * efficiency)``."""
    total = PAPER_IMAGES_PER_CLASS * classes
    print(f"\nN-GPU plan for the paper's job: {total:,} images (2048 units x 100 seeds x {STEPS} steps x {classes} "
          f"class(es)). ASSUMED: {gpu_images_per_s:g} StyleGAN-XL-size images/s per GPU (--gpu-images-per-s; not "
          f"measured here). MEASURED here: Dask efficiency {efficiency:.2f} (the fraction of the workers' time spent "
          "inside tasks: scheduling gaps and the last chunk's tail are the rest); chunks are independent and each "
          "GPU worker owns its device, so throughput is taken as linear in N at that efficiency.")
    print(f"  {'GPUs':>6} {'hours':>8} {'GPU-hours':>10}")
    for gpus in (1, 2, 8, 32, 128):
        hours = total / (gpus * gpu_images_per_s * efficiency) / 3600
        print(f"  {gpus:>6} {hours:8.2f} {hours * gpus:10.1f}")


if __name__ == "__main__":
    main()
