"""Rediscovering the toy world's planted shortcut with counterfactuals.

The toy classifier learned that a sky-blue background (hue in :data:`~linkviz.worlds.toy.factors.SKY_HUE`) means
:data:`~linkviz.worlds.toy.factors.SHORTCUT_CLASS`. Counterfactuals *toward* that class (from examples of every
other class) should therefore pull the background's hue into the sky band, and counterfactuals *away* from it
(from its own examples to their runner-up class) should push it out. :func:`shortcut_rediscovery` runs both in
one batch, measures the background hue of each original (the linked reconstruction, alpha = 0) and its
counterfactual (alpha = 1), and ranks every (part label x metric) change over the counterfactual pairs, with the
part metrics of :mod:`linkviz.quantify` plus ``hue_distance`` (distance of the part's mean hue from the sky band),
to say whether the background is among the concepts that change most.

Hues and band distances are those of :mod:`linkviz.worlds.toy.hue` (re-exported here).

What the counterfactuals show, measured (toy world, ``build_linked_model(samples_per_class=80, seed=0)``, realism
``fit_latent_realism(linked.pairs.w)``, mushroom -> tree, one CPU thread). The shortcut as the classifier learned it
(:func:`learned_shortcut_band`, 48 mushroom renders per 5 degrees of background hue): median p(tree) > 0.5 for hues
in about (188, 234), ~1.0 across SKY_HUE, <= 0.07 outside (170, 250). Realistic counterfactuals whose background
(border ring) ends inside that band, of the realistic successes:

- image objective, random start (the default), first 24 mushrooms, seeds 0, 1, 2: 3, 7, 7 of 24 (SKY_HUE 2, 2, 4);
- activations objective, random start, seeds 0, 1, 2: 1/19, 1/16, 3/17; from a zero start with natural-gradient
  steps (``step_metric="realism"``) only 5/24 succeed in 300 steps;
- image objective, zero start, ``step_metric="realism"``, lr chosen on held-out mushrooms (rows 24:72 of
  ``examples_of_class``; lr 0.5, 1, 2, 4 gave 17/47, 14/48, 16/48, 16/48): 5/23 on the first 24 (lr 2: 8/24);
  deterministic, so the seed changes nothing.

So the planted shortcut shows in a minority (about 10-35%) of the reference search's realistic counterfactuals:
the gradient path from a mushroom mostly turns the background green (hue 105-130) and other cues, although a sky
background is realistic and reachable (the generator's own mushrooms with a sky background are trees at p = 1.0,
and they lie at a latent Mahalanobis distance of 1.7-9.5 from the originals, where the reference's counterfactuals
end at 12.5-14.3).

Asking for the *smallest* realistic change that makes the classifier sure (``search="minimal"``,
:func:`~linkviz.counterfactual.find_minimal_counterfactuals`, p(tree) >= 0.99, 100 steps) finds the shortcut: 22/24
realistic trees with the background inside the learned band in 16 of them (first 24 mushrooms; 16/23 and 13/20 on
rows 24-47 and 48-71 of ``examples_of_class``), most keeping the mushroom's shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from linkviz.counterfactual.minimal import find_minimal_counterfactuals
from linkviz.counterfactual.optimise import find_counterfactuals
from linkviz.counterfactual.realism import fit_latent_realism
from linkviz.counterfactual.trajectory import counterfactual_trajectory
from linkviz.linking.linked_model import LinkedModel
from linkviz.quantify.changes import part_changes
from linkviz.quantify.part_metrics import measure_parts, visibility_threshold
from linkviz.quantify.pipeline import Segmenter
from linkviz.tuning.sweep import SweepResult
from linkviz.worlds.toy.factors import PART_NAMES, SHORTCUT_CLASS, SKY_HUE
from linkviz.worlds.toy.hue import band_distance, border_mask, region_hue
from linkviz.worlds.toy.learned_shortcut import learned_shortcut_band

__all__ = ["ShortcutReport", "band_distance", "border_mask", "learned_shortcut_band", "region_hue",
           "shortcut_rediscovery", "sweep_hue_shift"]

Direction = Literal["toward", "away"]


@dataclass(frozen=True)
class ShortcutReport:
    """What counterfactuals toward and away from the shortcut class did to the background.

    Attributes
    ----------
    examples : DataFrame
        One row per counterfactual: ``example, direction, origin, target, success, hue_before, hue_after,
        distance_before, distance_after, moved``. Hues are the background's, distances from the sky band;
        ``moved`` says the distance fell (toward) or rose (away) by more than the tolerance.
    concepts : DataFrame
        Per direction, every (label, metric) change over the counterfactual pairs, strongest first:
        ``direction, rank, label, metric, mean, std, n, cohens_d`` (rank by ``|cohens_d|`` = ``|mean| / std``
        over the successful examples). Empty when no segmenter was given.
    band : (float, float)
        The shortcut's hue band.
    """

    examples: pd.DataFrame
    concepts: pd.DataFrame
    band: tuple[float, float]

    def to_frame(self) -> pd.DataFrame:
        """The per-example table (a copy)."""
        return self.examples.copy()

    def moved_rate(self, direction: Direction) -> float:
        """Share of the successful counterfactuals of ``direction`` whose background moved as expected."""
        chosen = self.examples[(self.examples["direction"] == direction) & self.examples["success"]]
        return float(chosen["moved"].mean()) if len(chosen) else float("nan")

    def success_rate(self, direction: Direction) -> float:
        """Share of the counterfactuals of ``direction`` that reached their target class."""
        chosen = self.examples[self.examples["direction"] == direction]
        return float(chosen["success"].mean()) if len(chosen) else float("nan")

    def background_rank(self, direction: Direction, *, label: str = "background", metric: str | None = None
                        ) -> float:
        """Best rank of ``label`` (any metric, or only ``metric``) among the changed concepts of ``direction``.

        NaN if unranked.
        """
        chosen = self.concepts[(self.concepts["direction"] == direction) & (self.concepts["label"] == label)]
        if metric is not None:
            chosen = chosen[chosen["metric"] == metric]
        return float(chosen["rank"].min()) if len(chosen) else float("nan")

    def top_concepts(self, direction: Direction, *, top: int = 5) -> pd.DataFrame:
        """The ``top`` strongest (label, metric) changes of ``direction``."""
        chosen = self.concepts[self.concepts["direction"] == direction]
        return chosen.nsmallest(top, "rank").reset_index(drop=True)


def _examples(linked: LinkedModel, shortcut: int, examples_per_class: int, device: str | torch.device
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows of ``linked.pairs``, origins, targets and directions of the toward and away counterfactuals."""
    rows, origins, targets, directions = [], [], [], []
    n_classes = len(linked.class_names)
    for label in range(n_classes):
        if label == shortcut:
            continue
        chosen = linked.examples_of_class(label)[:examples_per_class]
        rows += chosen.tolist()
        origins += [label] * len(chosen)
        targets += [shortcut] * len(chosen)
        directions += ["toward"] * len(chosen)
    away = linked.examples_of_class(shortcut)[:examples_per_class * (n_classes - 1)]
    if len(away):
        logits = linked.classifier.logits_from_penultimate(torch.as_tensor(linked.pairs.r[away]).to(device))
        logits[:, shortcut] = -torch.inf
        rows += away.tolist()
        origins += [shortcut] * len(away)
        targets += logits.argmax(dim=1).cpu().tolist()
        directions += ["away"] * len(away)
    if not rows:
        raise ValueError("the linked model's base pairs hold no examples to build counterfactuals from")
    return np.asarray(rows), np.asarray(origins), np.asarray(targets), directions


def _hue_distance_rows(images: np.ndarray, masks: np.ndarray, labels: Sequence[str], band: tuple[float, float],
                       visibility: float) -> pd.DataFrame:
    """Change of every label's ``hue_distance`` between the two images of each pair; 0 for invisible labels."""
    rows = []
    for index, name in enumerate(labels):
        region = masks == index  # [N, 2, H, W]
        hue = region_hue(images.reshape(-1, *images.shape[2:]), region.reshape(-1, *region.shape[2:]))
        distance = band_distance(hue, band).reshape(len(images), 2)
        visible = region.sum(axis=(2, 3)).mean(axis=1) >= visibility
        change = np.where(visible, distance[:, 1] - distance[:, 0], 0.0)
        rows.append(pd.DataFrame({"example": np.arange(len(images)), "label": name, "metric": "hue_distance",
                                  "change": change}))
    return pd.concat(rows, ignore_index=True)


def _concept_ranking(images: np.ndarray, masks: np.ndarray, labels: Sequence[str], *, directions: np.ndarray,
                     keep: np.ndarray, band: tuple[float, float]) -> pd.DataFrame:
    """Rank (label, metric) changes of the counterfactual pairs per direction by ``|mean| / std``."""
    visibility = visibility_threshold(images.shape[2:4])
    frames = []
    for i in range(len(images)):
        measured = measure_parts(images[i], masks[i], labels, reference_step=0, exclude=())
        changes = part_changes(measured, unit=-1, seed=i).frame
        frames.append(changes.loc[changes["step"] == 1, ["seed", "label", "metric", "change"]]
                      .rename(columns={"seed": "example"}))
    frames.append(_hue_distance_rows(images, masks, labels, band, visibility))
    changes = pd.concat(frames, ignore_index=True)
    changes["direction"] = directions[changes["example"].to_numpy()]
    changes = changes[keep[changes["example"].to_numpy()]]
    stats = (changes.dropna(subset=["change"]).groupby(["direction", "label", "metric"], sort=False)["change"]
             .agg(mean="mean", std="std", n="size").reset_index())
    stats["cohens_d"] = stats["mean"] / stats["std"].where(stats["std"] > 0)
    stats = stats.dropna(subset=["cohens_d"])
    stats = stats.assign(strength=stats["cohens_d"].abs()).sort_values(["direction", "strength"],
                                                                      ascending=[True, False], kind="stable")
    stats["rank"] = stats.groupby("direction").cumcount() + 1
    return stats[["direction", "rank", "label", "metric", "mean", "std", "n", "cohens_d"]].reset_index(drop=True)


def shortcut_rediscovery(
    linked: LinkedModel,
    segment: Segmenter | None = None,
    labels: Sequence[str] = PART_NAMES,
    *,
    shortcut_class: str = SHORTCUT_CLASS,
    band: tuple[float, float] = SKY_HUE,
    examples_per_class: int = 4,
    max_steps: int = 300,
    border: int = 4,
    tolerance: float = 2.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    search: Literal["gradient", "minimal"] = "gradient",
    **counterfactual_options: Any,
) -> ShortcutReport:
    """Counterfactuals toward and away from the shortcut class: does the background's hue follow the shortcut?

    Parameters
    ----------
    linked : LinkedModel
        The linked world; examples are rows of ``linked.pairs`` classified as their class.
    segment : callable, optional
        ``segment(images [M, H, W, 3] uint8) -> int masks [M, H, W]`` with values indexing ``labels``; the
        background is label 0. Without one, the background is the image's border ring and no concepts are
        ranked.
    labels : sequence of str
        The segmenter's labels.
    shortcut_class : str
        Name of the class with the planted shortcut.
    band : (float, float)
        The shortcut's hue band in degrees.
    examples_per_class : int
        Originals per non-shortcut class (toward); the away direction takes as many shortcut-class examples as
        the toward direction has in total, each sent to its runner-up class.
    max_steps : int
        Optimisation budget of each counterfactual.
    border : int
        Width of the border ring used as background without a segmenter.
    tolerance : float
        Degrees the band distance must fall (toward) or rise (away) for ``moved``.
    seed : int
        Seed of the reference search's initial shifts, and of the folds of the minimal search's default realism
        model (the minimal search itself starts from the original, without randomness).
    device : str or torch.device
    progress : bool
    search : {"gradient", "minimal"}
        :func:`~linkviz.counterfactual.find_counterfactuals` (the reference: gradient steps until the image is
        the target) or :func:`~linkviz.counterfactual.find_minimal_counterfactuals` (the smallest realistic change
        that makes the classifier sure of the target; the realism model defaults to one fitted on
        ``linked.pairs.w``, ``max_steps`` is its number of steps). The minimal search is the one that shows the
        toy world's shortcut in most examples (see the module docstring).
    **counterfactual_options
        Passed to the search function (``lr``, ``check_every``, ``realism``, ``target_probability``, ...).

    Returns
    -------
    ShortcutReport
    """
    if shortcut_class not in linked.class_names:
        raise ValueError(f"shortcut class {shortcut_class!r} is not one of {linked.class_names}")
    if examples_per_class < 1:
        raise ValueError(f"examples_per_class must be positive; got {examples_per_class}")
    shortcut = linked.class_names.index(shortcut_class)
    rows, origins, targets, directions = _examples(linked, shortcut, examples_per_class, device)
    r = torch.as_tensor(linked.pairs.r[rows])
    models = (linked.link, linked.generator, linked.classifier, r)
    if search == "minimal":
        options = {"realism": fit_latent_realism(linked.pairs.w, seed=seed), **counterfactual_options}
        result = find_minimal_counterfactuals(*models, origin=origins, target=targets, steps=max_steps, device=device,
                                              progress=progress, **options)
    elif search == "gradient":
        result = find_counterfactuals(*models, origin=origins, target=targets, max_steps=max_steps, seed=seed,
                                      device=device, progress=progress, **counterfactual_options)
    else:
        raise ValueError(f"search must be 'gradient' or 'minimal'; got {search!r}")
    pair = counterfactual_trajectory(linked.link, linked.generator, linked.classifier, r, result.shift,
                                     alphas=np.array([0.0, 1.0]), device=device)
    images = pair.images  # [N, 2, H, W, 3]: linked original, counterfactual
    if segment is not None:
        flat = images.reshape(-1, *images.shape[2:])
        masks = np.asarray(segment(flat))
        if masks.shape != flat.shape[:3] or not np.issubdtype(masks.dtype, np.integer):
            raise ValueError(f"the segmenter must return integer masks of shape {flat.shape[:3]}; got "
                             f"{masks.dtype} {masks.shape}")
        masks = masks.reshape(images.shape[:4])
        background = masks == 0
    else:
        masks = None
        background = np.broadcast_to(border_mask(images.shape[2:4], width=border), images.shape[:4])
    hue = region_hue(images.reshape(-1, *images.shape[2:]),
                     background.reshape(-1, *images.shape[2:4])).reshape(len(images), 2)
    distance = band_distance(hue, band)
    direction = np.asarray(directions)
    toward = direction == "toward"
    fall = distance[:, 0] - distance[:, 1]
    names = np.asarray(linked.class_names, dtype=object)
    examples = pd.DataFrame({
        "example": np.arange(len(rows)), "direction": direction, "origin": names[origins],
        "target": names[targets], "success": result.success, "hue_before": hue[:, 0], "hue_after": hue[:, 1],
        "distance_before": distance[:, 0], "distance_after": distance[:, 1],
        "moved": np.where(toward, fall > tolerance, -fall > tolerance),
    })
    if masks is None:
        concepts = pd.DataFrame(columns=["direction", "rank", "label", "metric", "mean", "std", "n", "cohens_d"])
    else:
        concepts = _concept_ranking(images, masks, tuple(labels), directions=direction, keep=result.success,
                                    band=band)
    return ShortcutReport(examples=examples, concepts=concepts, band=(float(band[0]), float(band[1])))


def _median(values: np.ndarray) -> float:
    """Median of the finite values (grey regions have no hue), NaN if there are none."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


def sweep_hue_shift(sweep: SweepResult, *, band: tuple[float, float] = SKY_HUE, step: int | None = None,
                    border: int = 4) -> pd.DataFrame:
    """How far tuning each unit of a sweep moves the background (border ring) hue toward a hue band.

    Parameters
    ----------
    sweep : SweepResult
        With an unperturbed step per seed.
    band : (float, float)
        Hue band in degrees (default the shortcut's sky band).
    step : int, optional
        Tuned step compared with the unperturbed one; default the last step.
    border : int
        Width of the border ring taken as background.

    Returns
    -------
    DataFrame
        ``unit, distance_before, distance_after, change, share_toward``, one row per unit, most negative
        ``change`` (strongest move toward the band) first: median band distances over seeds at the unperturbed
        and the tuned step, the median per-seed change, and the share of seeds whose distance fell.
    """
    step = sweep.n_steps - 1 if step is None else int(step)
    if not 0 <= step < sweep.n_steps:
        raise ValueError(f"step must be in [0, {sweep.n_steps}); got {step}")
    rows = []
    for unit in sweep.units:
        images, reference = sweep.images(unit), np.asarray(sweep.baseline_step(unit))
        if (reference < 0).any():
            raise ValueError(f"unit {unit} has no unperturbed step for some seeds (a sweep in mode {sweep.mode!r})")
        seeds = np.arange(len(images))
        pair = np.stack([images[seeds, reference], images[:, step]], axis=1)  # [N, 2, H, W, 3]
        ring = border_mask(pair.shape[2:4], width=border)
        distance = band_distance(region_hue(pair.reshape(-1, *pair.shape[2:]), ring), band).reshape(-1, 2)
        change = distance[:, 1] - distance[:, 0]
        rows.append({"unit": unit, "distance_before": _median(distance[:, 0]),
                     "distance_after": _median(distance[:, 1]), "change": _median(change),
                     "share_toward": float(np.mean(change < 0))})
    return pd.DataFrame(rows).sort_values("change", kind="stable").reset_index(drop=True)
