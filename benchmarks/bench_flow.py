"""Dense flow accuracy and speed: TV-L1 vs. iterative Lucas-Kanade on synthetic pairs with known motion.

Cases (smooth random texture, ``--size`` pixels square):
- ``shift``: the whole image moved by a sub-pixel translation (dense flow, no alignment);
- ``growth`` / ``shrinkage``: a radial bump (up to ~``0.61 * sigma * amplitude`` px, sigma = size / 8) in a static surround;
- ``shift+growth``: both, through :func:`linkviz.tracking.residual_flow` (global alignment + residual flow),
  scored on the composed flow.
Prints the mean endpoint error (EPE, pixels, over pixels that truly move > 0.1 px) and the median time of each
method, and the ilk/tvl1 ratios.

``--batch N`` then times the batched path (:func:`linkviz.tracking.tvl1.tvl1_flow_batch` on N known-motion
pairs of ``--size`` px, one thread): milliseconds per pair (wall and CPU, median of ``--repeats``, interleaved)
for scikit-image's setting (5 warps x 10 iterations) and the tuner's (2 x 5), with their EPE;
``--solver-file OLD.py`` times that file's ``tvl1_flow_batch`` too (e.g. ``git show REV:linkviz/tracking/tvl1.py``),
checking it gives the same flows.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import warp
from threadpoolctl import threadpool_limits

from linkviz.tracking import dense_flow, residual_flow
from linkviz.tracking.tvl1 import tvl1_flow_batch

SETTINGS = {"skimage 5 x 10": {"num_warp": 5, "num_iter": 10}, "tuner 2 x 5": {"num_warp": 2, "num_iter": 5}}


def texture(size: int, *, seed: int) -> np.ndarray:
    image = ndi.gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), 1.5)
    return (image - image.min()) / (image.max() - image.min())


def radial_bump(size: int, amplitude: float, *, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference, moving, true forward flow (2, H, W)) for a radial expansion (amplitude > 0) at the centre."""
    sigma, centre = size / 8, (size - 1) / 2
    rows, cols = np.mgrid[:size, :size].astype(np.float64)

    def field(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        envelope = amplitude * np.exp(-((r - centre) ** 2 + (c - centre) ** 2) / (2 * sigma ** 2))
        return (r - centre) * envelope, (c - centre) * envelope

    reference = texture(size, seed=seed)
    u_row, u_col = field(rows, cols)
    moving = warp(reference, np.array([rows - u_row, cols - u_col]), order=3, mode="reflect")
    d_row, d_col = np.zeros_like(rows), np.zeros_like(cols)
    for _ in range(50):  # forward flow d solves d(x) = u(x + d(x))
        d_row, d_col = field(rows + d_row, cols + d_col)
    return reference, moving, np.stack([d_row, d_col])


def cases(size: int, *, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """name -> (reference, moving, true flow, align first)."""
    pad, shift = 16, np.array([0.6, -1.3])
    big = texture(size + 2 * pad, seed=seed)
    crop = (slice(pad, pad + size),) * 2
    moved = ndi.shift(big, shift, order=3, mode="nearest")[crop]
    constant = np.broadcast_to(shift[:, None, None], (2, size, size))
    growth, shrinkage = radial_bump(size, 0.3, seed=seed), radial_bump(size, -0.3, seed=seed)
    both = ndi.shift(growth[1], shift, order=3, mode="nearest")
    return {
        "shift": (big[crop], moved, constant, False),
        "growth": (*growth, False),
        "shrinkage": (*shrinkage, False),
        "shift+growth": (growth[0], both, growth[2] + shift[:, None, None], True),
    }


def measure(reference, moving, truth, align: bool, method: str, repeats: int) -> tuple[float, float]:
    """(mean EPE over truly moving pixels, median seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        if align:
            field = residual_flow(reference, moving, method=method)
            flow, valid = field.total_flow(), field.valid
        else:
            field = dense_flow(reference, moving, method=method)
            flow, valid = field.flow, field.valid
        times.append(time.perf_counter() - start)
    moving_region = valid & (np.hypot(*truth) > 0.1)
    return float(np.hypot(*(flow - truth))[moving_region].mean()), float(np.median(times))


def batched(size: int, n_pairs: int, repeats: int, solver_file: str | None) -> None:
    """Time the batched TV-L1 solver per pair on ``n_pairs`` known-motion pairs (cases cycled over seeds)."""
    triples = [case[:3] for seed in range(n_pairs) for name, case in cases(size, seed=seed).items()
               if not case[3]][:n_pairs]
    references, movings = (np.stack([t[i] for t in triples]).astype(np.float32) for i in (0, 1))
    truths = np.stack([t[2] for t in triples])
    solvers = {"this tree": tvl1_flow_batch}
    if solver_file:
        spec = importlib.util.spec_from_file_location("other_tvl1", solver_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        solvers[solver_file] = module.tvl1_flow_batch
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    flows = {}
    with threadpool_limits(1):
        for _ in range(repeats):
            for setting, options in SETTINGS.items():
                for solver, solve in solvers.items():
                    cpu, start = time.process_time(), time.perf_counter()
                    flows[solver, setting] = solve(references, movings, **options)
                    times.setdefault((solver, setting), []).append(
                        (time.perf_counter() - start, time.process_time() - cpu))
    moving = np.hypot(truths[:, 0], truths[:, 1]) > 0.1
    print(f"\nbatched TV-L1, {n_pairs} pairs of {size} px, 1 thread, median of {repeats}, load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'solver':<40}{'setting':<16}{'ms/pair wall':>13}{'ms/pair CPU':>12}{'EPE':>7}")
    for (solver, setting), values in times.items():
        wall, cpu = (1000 * float(np.median([v[i] for v in values])) / n_pairs for i in (0, 1))
        flow = flows[solver, setting]
        epe = np.hypot(*(flow - truths).transpose(1, 0, 2, 3))[moving].mean()
        same = np.abs(flow - flows["this tree", setting]).max()
        print(f"{solver[-40:]:<40}{setting:<16}{wall:13.2f}{cpu:12.2f}{epe:7.3f}"
              + ("" if solver == "this tree" else f"  (max difference to this tree {same:.1e})"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case and method (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=0, help="also time the batched solver on this many pairs")
    parser.add_argument("--solver-file", default=None, help="another tvl1.py to time against (batched only)")
    parser.add_argument("--skip-single", action="store_true", help="only the batched timing")
    args = parser.parse_args()
    if args.batch:
        batched(args.size, args.batch, args.repeats, args.solver_file)
    if args.skip_single:
        return
    print(f"{'case':<14}{'max motion':>11}{'EPE tvl1':>10}{'EPE ilk':>9}{'t tvl1':>9}{'t ilk':>8}"
          f"{'EPE ilk/tvl1':>14}{'t ilk/tvl1':>12}")
    for name, (reference, moving, truth, align) in cases(args.size, seed=args.seed).items():
        epe_tvl1, t_tvl1 = measure(reference, moving, truth, align, "tvl1", args.repeats)
        epe_ilk, t_ilk = measure(reference, moving, truth, align, "ilk", args.repeats)
        print(f"{name:<14}{np.hypot(*truth).max():>9.2f}px{epe_tvl1:>10.3f}{epe_ilk:>9.3f}{t_tvl1:>8.3f}s"
              f"{t_ilk:>7.3f}s{epe_ilk / epe_tvl1:>14.2f}{t_ilk / t_tvl1:>12.2f}")


if __name__ == "__main__":
    main()
