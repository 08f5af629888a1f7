"""UnitTuner latency on the toy world: the server-side cost of a slider release, with and without overlays.

Times :meth:`linkviz.controllers.UnitTuning.compute` (what the widget's worker runs on each release: one
generator pass, then the flow arrows and the part masks when they are on) and the JPEG encoding of its grid, for
three scenarios:

- ``plain``: linked and tuned rows only (target p50 <= 100 ms);
- ``arrows``: plus the flow row;
- ``arrows+parts``: plus part overlays from the few-shot segmenter of notebook 02 (generator features of the
  latents -> :class:`~linkviz.segmentation.PartSegmenter`), target p50 <= 400 ms.

The scenarios are interleaved: each slider value is timed in every scenario before the next value, in a rotating
order, so that a machine whose load drifts during the run slows every scenario alike (timing them in separate
blocks made equal paths read 0.9-6x apart). The same slider values are used by every scenario; the seed set is
fixed, so the cached linked images and their parts are reused, as in the widget.

Reusable pieces for other front ends (e.g. a browser benchmark): :data:`SCENARIOS`, :func:`toy_setup` (the
linked toy world, its segmenter, the strongest unit, the seeds and the slider values) and
:func:`time_interleaved` (any ``run(scenario, value)`` callable).

Run: ``.venv/bin/python benchmarks/bench_unit_tuner_latency.py [--moves 20] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

import linkviz
from linkviz.controllers import UnitTuning
from linkviz.images import encode_image
from linkviz.linking import LinkedModel, build_linked_model
from linkviz.segmentation import generator_features, predict_parts, train_few_shot

TARGETS_MS = {"plain": 100.0, "arrows": None, "arrows+parts": 400.0}


@dataclass(frozen=True)
class Scenario:
    """One way of using the tuner: which overlays are on."""

    name: str
    arrows: bool
    parts: bool


SCENARIOS: tuple[Scenario, ...] = (Scenario("plain", False, False), Scenario("arrows", True, False),
                                   Scenario("arrows+parts", True, True))


@dataclass(frozen=True)
class TunerSetup:
    """Everything a tuner benchmark needs: the linked world, a ws -> masks segmenter and what to move."""

    linked: LinkedModel
    segmenter: Callable[[torch.Tensor], np.ndarray]
    part_labels: tuple[str, ...]
    unit: int
    seeds: tuple[int, ...]
    values: np.ndarray


def toy_segmenter(world, *, n_train: int = 10, resolution: int = 32, seed: int = 0):
    """Notebook 02's few-shot part segmenter of the toy world (ws -> masks at the image size) and its labels."""
    from linkviz.worlds.toy import PART_NAMES, render

    generator = world.generator
    z = torch.randn(n_train, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    c = linkviz.one_hot(torch.arange(n_train) % generator.c_dim, generator.c_dim)
    stride = generator.img_resolution // resolution
    masks = render(generator.factors(z, c)).part_masks[:, ::stride, ::stride]
    features = generator_features(generator, generator.mapping(z, c), resolution=resolution)
    segmenter = train_few_shot(features, masks, n_classes=len(PART_NAMES), epochs=30, lr_step=20, seed=seed)

    def segment(ws: torch.Tensor) -> np.ndarray:
        parts = predict_parts(segmenter, generator_features(generator, ws, resolution=resolution)).numpy()
        return parts.repeat(stride, axis=1).repeat(stride, axis=2)

    return segment, tuple(PART_NAMES)


def toy_setup(*, samples_per_class: int = 20, n_seeds: int = 4, moves: int = 20, seed: int = 0,
              device: str = "cpu", cache_dir: str | None = None) -> TunerSetup:
    """The committed toy world linked on ``samples_per_class`` pairs per class, its strongest unit, the default
    (class-balanced) seeds and ``moves`` slider values across the unit's observed range in a shuffled order."""
    world = linkviz.load_toy_world(device=device)
    linked = build_linked_model(world, samples_per_class=samples_per_class, seed=seed, device=device,
                                cache_dir=cache_dir)
    segmenter, part_labels = toy_segmenter(world, seed=seed)
    unit = int(np.argmax(linkviz.effect_sizes(linked.link, linked.stats)))
    low, high = float(linked.stats.min[unit]), float(linked.stats.max[unit])
    values = np.linspace(low, high, moves)[np.random.default_rng(seed).permutation(moves)]
    seeds = _balanced_seeds(linked, n_seeds)
    return TunerSetup(linked=linked, segmenter=segmenter, part_labels=part_labels, unit=unit, seeds=seeds,
                      values=values)


def _balanced_seeds(linked: LinkedModel, n: int) -> tuple[int, ...]:
    """Seeds across the classes (``example_seeds`` where the library has it, else the same round-robin)."""
    if hasattr(linked, "example_seeds"):
        return tuple(linked.example_seeds(n))
    order = [np.flatnonzero(linked.pairs.predicted == c) for c in np.unique(linked.pairs.predicted)]
    return tuple(int(rows[k]) for k in range(max(map(len, order))) for rows in order if k < len(rows))[:n]


def time_interleaved(run: Callable[[Scenario, float], object], scenarios: Sequence[Scenario], values: np.ndarray,
                     *, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of ``run(scenario, value)``: every scenario at each value before the next value.

    The order of the scenarios rotates from one value to the next, so none always runs first (after a cache
    miss) or last. ``warmup`` values are run in every scenario first, untimed.
    """
    for value in values[:warmup]:
        for scenario in scenarios:
            run(scenario, float(value))
    timings: dict[str, list[float]] = {scenario.name: [] for scenario in scenarios}
    for index, value in enumerate(values):
        shift = index % len(scenarios)
        for scenario in (*scenarios[shift:], *scenarios[:shift]):
            start = time.perf_counter()
            run(scenario, float(value))
            timings[scenario.name].append(time.perf_counter() - start)
    return timings


def summary(timings: dict[str, list[float]]) -> list[tuple[str, float, float, float | None]]:
    """(scenario, p50 ms, p95 ms, target ms) rows."""
    rows = []
    for name, seconds in timings.items():
        p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
        rows.append((name, float(p50), float(p95), TARGETS_MS.get(name)))
    return rows


def controller_run(setup: TunerSetup) -> Callable[[Scenario, float], bytes]:
    """``run(scenario, value)``: what the widget's worker does on a slider release (compute + JPEG)."""
    tuning = UnitTuning(setup.linked, segmenter=setup.segmenter, segment_from="ws", part_labels=setup.part_labels)

    def run(scenario: Scenario, value: float) -> bytes:
        view = tuning.compute(setup.unit, value, setup.seeds, arrows=scenario.arrows, parts=scenario.parts)
        return encode_image(view.grid, format="jpeg")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=20, help="slider values timed per scenario")
    parser.add_argument("--seeds", type=int, default=4, help="base examples shown (one column each)")
    parser.add_argument("--samples-per-class", type=int, default=20, help="pairs per class to fit the link")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--cache-dir", default=None, help="cache of the sampled pairs")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    setup = toy_setup(samples_per_class=args.samples_per_class, n_seeds=args.seeds, moves=args.moves,
                      device=args.device, cache_dir=args.cache_dir)
    timings = time_interleaved(controller_run(setup), SCENARIOS, setup.values)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"UnitTuning.compute + JPEG on the toy world, {args.device}, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs (load {load:.1f}), unit {setup.unit}, seeds {setup.seeds}, "
          f"{args.moves} interleaved moves")
    print(f"  {'scenario':<14} {'p50 ms':>8} {'p95 ms':>8}  target")
    for name, p50, p95, target in summary(timings):
        verdict = "" if target is None else f"p50 <= {target:.0f} ms: {'met' if p50 <= target else 'NOT met'}"
        print(f"  {name:<14} {p50:8.1f} {p95:8.1f}  {verdict}")


if __name__ == "__main__":
    main()
