"""UnitTuner responsiveness on the toy world: slider release -> updated image, target p50 <= 100 ms.

Compares the widget (one rank-1 latent update + one generator pass per move, in its worker) with two direct
paths that end in the same JPEG grid: re-linking the fully perturbed r (``SetUnits`` + ``link.to_w``), which
should cost about the same, and re-running the classifier pipeline (G(w) -> classifier -> r -> edit -> link -> G)
on every move. Every path runs on a worker thread (the direct ones on a bare :class:`LatestWinsWorker`): on a
loaded machine torch's main-thread OpenMP pool can be many times slower than a fresh thread, which would make
the comparison unfair. The paths are interleaved (each slider value on every path, in a rotating order, before
the next value; :func:`bench_unit_tuner_latency.time_interleaved`): timed one after the other in separate blocks,
a machine whose load drifts made equal paths read 0.9-6x apart. The torch thread count is fixed (``--threads``,
default 1). Sizes: the number of seeds shown (``--seeds``, default 1 2 4 8 columns). Peak memory: each move's
resident-set high-water mark above the one at its start (read from ``/proc``, reset before the move; no tracing).
The overlays' cost is measured by ``bench_unit_tuner_latency.py``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
import torch

from linkviz.engines import torch_threads
from linkviz.images import encode_image, tile_images
from linkviz.linking import build_linked_model
from linkviz.models.classifier import Classifier
from linkviz.tuning import SetUnits, effect_sizes
from linkviz.widgets import LatestWinsWorker, UnitTuner
from linkviz.worlds.toy import TOY_CLASSIFIER_SPEC, ToyWorld, load_toy_world
from linkviz.worlds.toy.generator_net import ToyGenerator
from linkviz.worlds.toy.world import load_classifier_module

try:  # run as a script, the benchmarks folder is on sys.path
    from bench_unit_tuner_latency import Scenario, time_interleaved
except ImportError:  # imported as benchmarks.bench_unit_tuner
    from benchmarks.bench_unit_tuner_latency import Scenario, time_interleaved

TARGET_MS = 100.0


def toy_world(device: str) -> tuple[ToyWorld, bool]:
    """The committed toy world, or its classifier with an untrained generator (same cost) if weights are missing."""
    try:
        return load_toy_world(device=device), True
    except FileNotFoundError as error:
        print(f"note: {error}; timing an untrained generator of the same architecture")
    generator = ToyGenerator().to(device).eval().requires_grad_(False)
    generator.update_w_avg(samples_per_class=64, seed=0)
    classifier = Classifier(load_classifier_module(device=device), TOY_CLASSIFIER_SPEC)
    return ToyWorld(classifier=classifier, generator=generator), False


def percentiles(timings: list[float]) -> tuple[float, float]:
    p50, p90 = np.percentile(np.asarray(timings) * 1000, [50, 90])
    return float(p50), float(p90)


def on_worker(compute: Callable[[float], object]) -> Callable[[float], None]:
    """Run a direct path on a worker thread like the widget's, so every path sees the same torch threading."""
    errors: list[Exception] = []
    worker = LatestWinsWorker(lambda result: None, errors.append, name="bench")

    def move(value: float) -> None:
        worker.submit(lambda: compute(value))
        worker.wait_idle()
        if errors:
            raise errors[0]

    return move


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def with_peak(move: Callable[[float], None], peaks: list[float]) -> Callable[[float], None]:
    """``move`` that appends its peak resident set above the one at its start (MiB, Linux) to ``peaks``."""

    def measured(value: float) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")
            start = _status_kib("VmRSS")
        except OSError:
            move(value)
            return
        move(value)
        peaks.append((_status_kib("VmHWM") - start) / 1024)

    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 8],
                        help="base examples shown (one column each), one size per value")
    parser.add_argument("--samples-per-class", type=int, default=20, help="pairs per class to fit the link")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of every path")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with torch_threads(args.threads):
        world, trained = toy_world(args.device)
        linked = build_linked_model(world, samples_per_class=args.samples_per_class, device=args.device,
                                    accepted_only=trained)
        unit = int(np.argmax(effect_sizes(linked.link, linked.stats)))
        print(f"UnitTuner on the toy world ({'trained' if trained else 'untrained'} generator), {args.device}, unit "
              f"{unit}, {args.moves} interleaved moves per size, torch threads {torch.get_num_threads()}, load "
              f"average {os.getloadavg()[0]:.1f} at the start")
        for n_seeds in args.seeds:
            measure_seeds(linked, unit, tuple(range(min(n_seeds, len(linked.pairs)))), args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def measure_seeds(linked, unit: int, seeds: tuple[int, ...], args: argparse.Namespace) -> None:
    """Time the three paths, interleaved, showing ``seeds``; print p50/p90, ratios and peak memory."""
    low, high = float(linked.stats.min[unit]), float(linked.stats.max[unit])
    values = np.linspace(low, high, args.moves)[np.random.default_rng(0).permutation(args.moves)]

    tuner = UnitTuner(linked, seeds=seeds, unit=unit)

    def widget_move(value: float) -> None:
        tuner.value.value = value
        tuner.worker.wait_idle()

    r_base = torch.as_tensor(linked.pairs.r[list(seeds)]).to(args.device)
    w_base = torch.as_tensor(linked.pairs.w[list(seeds)]).to(args.device)
    originals = linked.render(w_base)
    zoom = max(1, 128 // originals.shape[1])

    def show(r: torch.Tensor) -> bytes:
        with torch.no_grad():
            tuned = linked.render(linked.link.to_w(r))
        grid = tile_images(np.concatenate([originals, tuned]), columns=len(seeds), zoom=zoom, gap=1)
        return encode_image(grid, format="jpeg")

    def relink(value: float) -> bytes:
        return show(SetUnits(unit, value).apply(r_base))

    def classifier_pipeline(value: float) -> bytes:
        with torch.no_grad():
            images = linked.generator.synthesis(w_base[:, None, :].expand(-1, linked.generator.num_ws, -1))
            _, r = linked.classifier.forward_generated(images)
        return show(SetUnits(unit, value).apply(r.float()))

    paths = {"widget (rank-1 update, worker)": widget_move, "re-link perturbed r": on_worker(relink),
             "re-run classifier pipeline": on_worker(classifier_pipeline)}
    peaks: dict[str, list[float]] = {name: [] for name in paths}
    measured = {name: with_peak(move, peaks[name]) for name, move in paths.items()}
    timings = time_interleaved(lambda scenario, value: measured[scenario.name](value),
                               [Scenario(name, False, False) for name in paths], values)
    results = {name: percentiles(seconds) for name, seconds in timings.items()}
    widget_p50 = results["widget (rank-1 update, worker)"][0]
    print(f"{len(seeds)} seed(s):")
    for name, (p50, p90) in results.items():
        peak = f"{max(peaks[name]):.0f} MiB" if peaks[name] else "n/a"
        print(f"  {name:>32}: p50 {p50:7.1f} ms, p90 {p90:7.1f} ms; p50 / target {p50 / TARGET_MS:.2f}; "
              f"p50 / widget p50 {p50 / widget_p50:.2f}; peak RSS {peak}")
    print(f"  target: widget p50 <= {TARGET_MS:.0f} ms -> {'met' if widget_p50 <= TARGET_MS else 'NOT met'}")

if __name__ == "__main__":
    main()
