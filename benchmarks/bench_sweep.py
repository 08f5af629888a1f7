"""Unit sweep throughput: linkviz's ``run_sweep`` vs. the Linking in Style reference loop vs. the generator floor.

The baseline is the structure of the reference's ``src/tune_units.py`` (kaschube-lab/LinkingInStyle), written
here for linkviz's models: for each base sample, for each unit, the unit of r is *set* to each of
``linspace(min_i, max_i, 3)``, the 3 modified r are linked (``w = A r + b``), tiled to every ``num_ws``, and
synthesised as one batch of 3; with ``--pngs`` each (sample, unit) is written as a zip of PNGs, as the reference
does. linkviz runs the same values (``mode="reference"``, 3 steps) through :func:`linkviz.run_sweep`, and the
script checks both produce the same images (at most 1 grey level apart: batch sizes differ, so float sums do).

The floor is the generator alone: ``units x seeds x steps`` latents synthesised at linkviz's batch size, with
nothing else (no link, no uint8 conversion, no storage).

The three paths are interleaved (one repetition of each before the next), so that load drift slows all alike;
the table reports the median images/s per path and the ratios, for several sizes, and the peak resident memory
of each path measured in a fresh subprocess.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--threads 1] [--sizes 16x4,32x8,64x8] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

import linkviz
from linkviz.images import encode_image, to_uint8
from linkviz.linking import LinearLink, UnitStats
from linkviz.tuning import run_sweep
from linkviz.tuning.sweep import default_batch_size

STEPS = 3


def inputs(n_units: int, n_seeds: int, *, seed: int = 0):
    """The toy generator, a link from ``n_units`` units with a realistic spread, its stats and base r."""
    generator = linkviz.load_toy_world().generator
    rng = np.random.default_rng(seed)
    r = rng.gamma(2.0, 1.0, size=(200, n_units)).astype(np.float32)
    w_avg = generator.mapping.w_avg.mean(0).numpy()
    link = LinearLink(weight=rng.normal(0, 0.3 / np.sqrt(n_units), size=(generator.w_dim, n_units)).astype(
        np.float32), bias=w_avg)
    return generator, link, UnitStats.from_activations(r), r[:n_seeds]


def reference_loop(generator, link: LinearLink, stats: UnitStats, r_base: np.ndarray, out: Path | None
                   ) -> np.ndarray:
    """The reference's loop: per sample, per unit, one batch of the 3 set values; optionally a zip of PNGs."""
    weight, bias = torch.from_numpy(link.weight), torch.from_numpy(link.bias)
    images = np.empty((r_base.shape[1], len(r_base), STEPS, generator.img_resolution, generator.img_resolution, 3),
                      np.uint8)
    with torch.no_grad():
        for sample, r in enumerate(r_base):
            for unit in range(r_base.shape[1]):
                values = np.linspace(stats.min[unit], stats.max[unit], STEPS)
                modified = np.repeat(r[None], STEPS, axis=0)
                modified[:, unit] = values
                w = torch.from_numpy(modified) @ weight.T + bias
                batch = to_uint8(generator.synthesis(w[:, None, :].repeat(1, generator.num_ws, 1)).numpy())
                images[unit, sample] = batch
                if out is not None:
                    with zipfile.ZipFile(out / f"sample{sample}_unit{unit}.zip", "w") as archive:
                        for step, image in enumerate(batch):
                            archive.writestr(f"step{step}.png", encode_image(image, format="png"))
    return images


def linkviz_sweep(generator, link, stats, r_base, out: Path) -> np.ndarray:
    result = run_sweep(link, generator, r_base, stats=stats, out_dir=out, n_steps=STEPS, mode="reference",
                       progress=False)
    return np.stack([result.images(unit) for unit in result.units])


def floor(generator, link, stats, r_base, out: Path | None) -> None:
    n = r_base.shape[1] * len(r_base) * STEPS
    batch = default_batch_size("cpu")
    w = torch.from_numpy(link.bias)[None].repeat(n, 1)
    with torch.no_grad():
        for start in range(0, n, batch):
            generator.synthesis(w[start:start + batch, None, :].expand(-1, generator.num_ws, -1))


PATHS = ("reference loop", "linkviz run_sweep", "generator floor")


def run_path(name: str, args: tuple, work: Path, pngs: bool):
    out = Path(tempfile.mkdtemp(dir=work))
    if name == "reference loop":
        return reference_loop(*args, out if pngs else None)
    if name == "linkviz run_sweep":
        return linkviz_sweep(*args, out)
    return floor(*args, None)


def peak_memory(name: str, size: tuple[int, int], threads: int, pngs: bool) -> float:
    """Growth of the peak resident MiB during one run of ``name`` in a fresh process, over the peak after the
    models and inputs are loaded (which all paths share)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_sweep as b, torch, "
            f"tempfile, pathlib, resource; torch.set_num_threads({threads}); a = b.inputs(*{size}); "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"b.run_path({name!r}, a, pathlib.Path(tempfile.mkdtemp()), {pngs}); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(output.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16x4,32x8,64x8", help="units x seeds, comma separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--pngs", action="store_true", help="the reference writes its zips of PNGs")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    load = os.getloadavg()[0]
    print(f"unit sweep, toy world, CPU, torch threads {threads}, {os.cpu_count()} CPUs, load {load:.1f}, "
          f"{STEPS} steps, reference PNGs {'on' if args.pngs else 'off'}, {args.repeats} interleaved repeats")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for size in args.sizes.split(","):
            n_units, n_seeds = (int(part) for part in size.split("x"))
            data = inputs(n_units, n_seeds)
            images = n_units * n_seeds * STEPS
            reference = reference_loop(*data, None)
            ours = linkviz_sweep(*data, Path(tempfile.mkdtemp(dir=work)))
            difference = np.abs(reference.astype(int) - ours.astype(int))
            assert difference.max() <= 1, f"the paths disagree by {difference.max()} grey levels"
            seconds = {name: [] for name in PATHS}
            for repeat in range(args.repeats):
                names = PATHS[repeat % 3:] + PATHS[:repeat % 3]
                for name in names:
                    start = time.perf_counter()
                    run_path(name, data, Path(work), args.pngs)
                    seconds[name].append(time.perf_counter() - start)
            rate = {name: images / float(np.median(times)) for name, times in seconds.items()}
            memory = {} if args.no_memory else {name: peak_memory(name, (n_units, n_seeds), threads, args.pngs)
                                                 for name in PATHS}
            rows.append((size, images, rate, memory, float((difference > 0).mean())))
    print(f"{'units x seeds':>13} {'images':>7} {'reference img/s':>16} {'linkviz img/s':>14} {'floor img/s':>12} "
          f"{'linkviz/ref':>11} {'floor/linkviz':>13}  peak +MiB ref/linkviz/floor  differing values")
    for size, images, rate, memory, differing in rows:
        ref, ours, base = rate["reference loop"], rate["linkviz run_sweep"], rate["generator floor"]
        peaks = "/".join(f"{memory[name]:.0f}" for name in PATHS) if memory else "-"
        print(f"{size:>13} {images:>7} {ref:16.1f} {ours:14.1f} {base:12.1f} {ours / ref:11.2f}x "
              f"{base / ours:12.2f}x  {peaks:>26}  {differing:.1e}")
    print(json.dumps({"threads": threads, "load": load, "rows": [
        {"size": size, "rates": rate, "peak_mib": memory} for size, _, rate, memory, _ in rows]}))


if __name__ == "__main__":
    main()
