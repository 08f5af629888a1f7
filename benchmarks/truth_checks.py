"""Truth checks on the toy world: do the concepts the pipeline names really move, and is the shortcut found?

1. Builds the linked toy world, sweeps the units with the largest effect on w, segments every swept image with
   the supervised reference segmenter (trained on renders) and measures the per-part changes
   (:func:`linkviz.quantify.sweep_changes`).
2. For the top units of every concept (label x metric x direction) that
   :func:`linkviz.quantify.find_selective_units` reports, a metric regressor trained on renders with known part
   masks re-estimates the true metrics of the same images; a unit agrees when the estimated change has the
   named sign. Prints the agreement per concept and overall (target >= 90 %).
3. Counterfactuals toward and away from the shortcut class (tree, sky-blue background): prints how often the
   background hue moves into / out of the sky band and the rank of the background among the changed concepts.

Both reference models are sanity-checked on held-out renders and on generated images whose true masks are known
(``generator.factors(z, c)`` rendered); the sweep, models and tables are cached in ``--data-dir``.
A smoke run: ``python benchmarks/truth_checks.py --units 8 --seeds 4 --examples-per-class 2 --cf-steps 100``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from linkviz.hashing import hash_arguments, hash_state
from linkviz.linking import build_linked_model
from linkviz.quantify import sweep_changes
from linkviz.segmentation import mean_iou, segment_images
from linkviz.tuning import effect_sizes, run_sweep
from linkviz.worlds.toy import PART_NAMES, SHORTCUT_CLASS, render, render_set
from linkviz.worlds.toy.metric_regressor import estimate_metrics, metric_targets
from linkviz.worlds.toy.reference_models import model_identity, toy_metric_regressor, toy_render_segmenter
from linkviz.worlds.toy.shortcut import shortcut_rediscovery, sweep_hue_shift
from linkviz.worlds.toy.truth import check_selective_units
from linkviz.worlds.toy.world import DEFAULT_WEIGHTS, load_toy_world

TARGET = 0.9


class Clock:
    """Prints each stage's wall time."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        print(f"[{now - self.start:6.1f} s] {what} ({now - self.last:.1f} s)", flush=True)
        self.last = now


def generated_with_truth(generator, n: int, *, seed: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced generated images (psi 1) [n, R, R, 3] and the renderer's masks of their factors."""
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    c = F.one_hot(torch.arange(n) % generator.c_dim, generator.c_dim).float().to(device)
    with torch.no_grad():
        images = generator.synthesis(generator.mapping(z, c))
    images = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return images, render(generator.factors(z, c), resolution=generator.img_resolution).part_masks


def regressor_quality(regressor, images: np.ndarray, masks: np.ndarray) -> str:
    """Median over labels of the Pearson correlation per target, as one line."""
    truth = metric_targets(images, masks, PART_NAMES)
    predicted = regressor.predict(images)
    parts = []
    for j, target in enumerate(("area", "luminance", "entropy", "eccentricity")):
        values = []
        for i in range(len(PART_NAMES)):
            defined = np.isfinite(truth[:, i, j])
            if defined.sum() >= 5 and truth[defined, i, j].std() > 0:
                values.append(np.corrcoef(truth[defined, i, j], predicted[defined, i, j])[0, 1])
        parts.append(f"{target} {np.nanmedian(values):.2f}")
    return "median r over labels: " + ", ".join(parts)


def unit_effects(linked, mode: str) -> np.ndarray:
    """How far each unit moves w over its tuning values: range x ||A_i|| (mode "range") or std x ||A_i||."""
    if mode == "range":
        return effect_sizes(linked.link, linked.stats)
    return linked.stats.std * np.linalg.norm(linked.link.weight, axis=0)


def seed_rows(linked, n_seeds: int) -> np.ndarray:
    """Rows of the base pairs taken round-robin over the classes (the k-th example of each class in turn)."""
    per_class = [linked.examples_of_class(c) for c in range(len(linked.class_names))]
    rows = [rows[k] for k in range(max(map(len, per_class))) for rows in per_class if k < len(rows)]
    return np.asarray(rows[:n_seeds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(".linkviz-data"))
    parser.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--samples-per-class", type=int, default=100, help="pairs per class to fit the link on")
    parser.add_argument("--units", type=int, default=32, help="swept units (largest effect on w first)")
    parser.add_argument("--seeds", type=int, default=10, help="base examples per unit, round-robin over classes")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--mode", choices=("std", "range"), default="std",
                        help="tuning values: r +- 2 std (stays near the image distribution) or the unit's min..max")
    parser.add_argument("--top", type=int, default=5, help="units checked per concept")
    parser.add_argument("--segmenter-renders", type=int, default=300, help="renders per class")
    parser.add_argument("--segmenter-epochs", type=int, default=20)
    parser.add_argument("--regressor-renders", type=int, default=1000, help="renders per class")
    parser.add_argument("--regressor-epochs", type=int, default=20)
    parser.add_argument("--examples-per-class", type=int, default=4, help="counterfactual originals per class")
    parser.add_argument("--cf-steps", type=int, default=300, help="counterfactual optimisation budget")
    parser.add_argument("--cf-objective", choices=("image", "activations"), default="image",
                        help="counterfactual objective: the rendered counterfactual's logits (as the demo and the "
                             "CounterfactualExplorer) or the head's logits at r' (the reference's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    clock = Clock()
    data_dir = args.data_dir

    world = load_toy_world(args.weights_dir, device=args.device)
    linked = build_linked_model(world, samples_per_class=args.samples_per_class, seed=args.seed,
                                cache_dir=data_dir, device=args.device)
    clock.lap(f"linked toy world: {len(linked.pairs)} pairs, D={linked.link.r_dim}")

    units = np.argsort(-unit_effects(linked, args.mode), kind="stable")[:args.units].tolist()
    r_base = linked.pairs.r[seed_rows(linked, args.seeds)]
    key = hash_arguments(link=linked.link.weight, bias=linked.link.bias, generator=hash_state(linked.generator),
                         r_base=r_base, units=units, steps=args.steps, mode=args.mode)
    sweep = run_sweep(linked.link, linked.generator, torch.from_numpy(r_base), stats=linked.stats,
                      out_dir=data_dir / "truth_sweeps" / key, units=units, n_steps=args.steps, mode=args.mode,
                      device=args.device, progress=False)
    clock.lap(f"sweep: {len(units)} units x {sweep.n_seeds} seeds x {sweep.n_steps} steps, mode {args.mode!r}")

    segmenter = toy_render_segmenter(data_dir, samples_per_class=args.segmenter_renders,
                                     epochs=args.segmenter_epochs, seed=args.seed, device=args.device)
    regressor = toy_metric_regressor(data_dir, samples_per_class=args.regressor_renders,
                                     epochs=args.regressor_epochs, seed=args.seed, device=args.device)
    held_out = render_set(20, seed=args.seed + 1000, cache_dir=data_dir)
    generated, generated_masks = generated_with_truth(world.generator, 100, seed=args.seed + 1000,
                                                      device=args.device)
    for name, (images, masks) in {"held-out renders": (held_out.images, held_out.part_masks),
                                  "generated images": (generated, generated_masks)}.items():
        miou, _ = mean_iou(segment_images(segmenter, images), masks, n_classes=len(PART_NAMES))
        print(f"  on {len(images)} {name}: segmenter mIoU {miou:.3f}; regressor "
              f"{regressor_quality(regressor, images, masks)}")
    clock.lap("reference segmenter and metric regressor")

    def segment(images: np.ndarray) -> np.ndarray:
        return segment_images(segmenter, images)

    table = sweep_changes(sweep, segment, PART_NAMES, segmenter_id=model_identity("render-unet", segmenter),
                          cache_dir=data_dir, progress=False)
    clock.lap(f"part changes: {len(table.frame)} rows")

    check = check_selective_units(table, sweep, lambda images: estimate_metrics(regressor, images), PART_NAMES,
                                  top=args.top)
    clock.lap("truth check of the selective units")
    concepts = check.by_concept()
    print(f"\nSelective units vs. the metric regressor (top {args.top} per concept, {len(concepts)} concepts with "
          "reported units):")
    if len(concepts):
        concepts = concepts.assign(direction=np.where(concepts["sign"] > 0, "+", "-"))
        with pd.option_context("display.width", 120, "display.max_rows", 200):
            print(concepts[["label", "metric", "direction", "n_units", "n_agree", "agreement"]]
                  .sort_values(["metric", "label", "direction"]).to_string(index=False))
        per_metric = check.units.groupby("metric")["agrees"].agg(["mean", "size"])
        print("per metric: " + ", ".join(f"{metric} {row['mean']:.0%} of {int(row['size'])}"
                                          for metric, row in per_metric.iterrows()))
    overall = check.overall
    print(f"OVERALL agreement: {overall:.1%} of {len(check.units)} (concept, unit) pairs "
          f"(target >= {TARGET:.0%}: {'met' if overall >= TARGET else 'NOT met'})")

    report = shortcut_rediscovery(linked, segment, PART_NAMES, examples_per_class=args.examples_per_class,
                                  max_steps=args.cf_steps, seed=args.seed, device=args.device,
                                  objective=args.cf_objective)
    clock.lap("shortcut rediscovery")
    examples = report.to_frame()
    print(f"\nShortcut rediscovery (class '{SHORTCUT_CLASS}', "
          f"sky band {report.band[0]:.0f}-{report.band[1]:.0f} deg, {args.cf_objective} objective):")
    for direction, moving in (("toward", "toward"), ("away", "away from")):
        chosen = examples[(examples["direction"] == direction) & examples["success"]]
        print(f"  {direction:6s}: {report.success_rate(direction):.0%} of "
              f"{(examples['direction'] == direction).sum()} counterfactuals reached their target; background "
              f"moved {moving} the sky band in {report.moved_rate(direction):.0%} of those (median band distance "
              f"{chosen['distance_before'].median():.0f} -> {chosen['distance_after'].median():.0f} deg); "
              f"rank of the background among the changed concepts: {report.background_rank(direction):.0f} (any "
              f"metric), {report.background_rank(direction, metric='hue_distance'):.0f} (its hue distance)")
        top = report.top_concepts(direction, top=5)
        print("          top changed: " + ", ".join(f"{row.label}/{row.metric} (d={row.cohens_d:+.1f})"
                                                 for row in top.itertuples()))
    shifts = sweep_hue_shift(sweep, band=report.band)
    toward = shifts[(shifts["change"] < 0) & (shifts["share_toward"] >= 0.5)]
    print(f"  sweep: {len(toward)} of {len(shifts)} swept units move the background (border ring) toward the sky band "
          "in most seeds; strongest: " + ", ".join(
              f"unit {row.unit} ({row.distance_before:.0f} -> {row.distance_after:.0f} deg, "
              f"{row.share_toward:.0%} of seeds)" for row in toward.head(5).itertuples()))
    clock.lap("done")


if __name__ == "__main__":
    main()
