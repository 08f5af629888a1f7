"""Batched (w, r) pair sampling vs. the reference's one-image-per-pass loop, on the toy world.

Both paths run with the same, fixed torch thread count (``--threads``, default 1, set with
:func:`linkviz.engines.torch_threads`): with torch's default pool on a machine shared with other jobs, the
ratio measured thread contention (8.4x at load 13, 1.4x idle, 1.05x with 1 thread), not batching. The paths are
interleaved (both at one size, in a rotating order, ``--repeats`` rounds); peak memory is each run's peak
resident set above the one at its start (Linux's high-water mark, reset before the run: no tracing, so it costs
no time). Sizes: ``--samples-per-class`` (default 4 8 16; 5 classes).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from measure import timed_with_peak

import linkviz
from linkviz.engines import torch_threads

PATHS = {"batched (64)": 64, "per image (1)": 1}


def run_path(world, batch_size: int, samples_per_class: int, device: str) -> int:
    """Sample the pairs of one path; returns how many."""
    pairs = linkviz.sample_pairs(world.generator, world.classifier, classes=range(5),
                                 samples_per_class=samples_per_class, seed=0, batch_size=batch_size, device=device,
                                 progress=False)
    return len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples-per-class", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of both paths")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds per size (medians)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    with torch_threads(args.threads):
        world = linkviz.load_toy_world(device=args.device)
        print(f"pair sampling on the toy world, {args.device}, {args.threads} torch thread(s), {args.repeats} "
              f"interleaved rounds per size, load average {os.getloadavg()[0]:.1f} at the start")
        print(f"{'pairs':>6} | {'batched pairs/s':>15} | {'per image pairs/s':>17} | speed-up | peak RSS MiB batched / "
              "per image")
        run_path(world, 64, 2, args.device)  # warm-up, untimed
        for size_index, samples in enumerate(args.samples_per_class):
            names = list(PATHS)
            seconds: dict[str, list[float]] = {name: [] for name in names}
            peaks: dict[str, list[float]] = {name: [] for name in names}
            for round_ in range(args.repeats):
                shift = (size_index + round_) % len(names)
                for name in (*names[shift:], *names[:shift]):
                    elapsed, peak, n_pairs = timed_with_peak(
                        lambda name=name, samples=samples: run_path(world, PATHS[name], samples, args.device))
                    seconds[name].append(elapsed)
                    peaks[name].append(float("nan") if peak is None else peak)
            batched, single = (float(np.median(seconds[name])) for name in names)
            memory = " / ".join(f"{max(peaks[name]):.0f}" for name in names)
            print(f"{n_pairs:6d} | {n_pairs / batched:15.1f} | {n_pairs / single:17.1f} | {single / batched:7.2f}x | "
                  f"{memory}")
    print(f"load average at the end {os.getloadavg()[0]:.1f} (target >= 5x on GPU; on CPU convolutions dominate)")


if __name__ == "__main__":
    main()
