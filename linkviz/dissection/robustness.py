"""Detector robustness (seed slides): dissect the same layer on perturbed probes and compare with the original.

Every condition is a full dissection with its own thresholds (the perturbed images are the probe), as in the
slides: the question is whether the layer still has units that segment the concepts, not whether the same
activation values recur.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from ..models.classifier import Classifier
from .dissect import DissectionResult, dissect
from .probe_dataset import ProbeDataset
from .probe_perturbations import Perturbation

__all__ = ["RobustnessResult", "detector_robustness"]


def _stats(result: DissectionResult) -> dict[str, float]:
    detectors = result.is_detector
    return {"units": len(detectors), "detectors": int(detectors.sum()), "unique_detectors": result.unique_detectors(),
            "mean_detector_iou": float(result.unit_iou[detectors].mean()) if detectors.any() else 0.0}


@dataclass(frozen=True)
class RobustnessResult:
    """Dissections of one layer on the original probe and on perturbed copies.

    Attributes
    ----------
    baseline : DissectionResult
        On the unperturbed probe.
    perturbations : tuple of Perturbation
    results : tuple of DissectionResult
        One per perturbation, in the same order.
    """

    baseline: DissectionResult
    perturbations: tuple[Perturbation, ...]
    results: tuple[DissectionResult, ...]

    def _conditions(self) -> list[tuple[str, float, DissectionResult]]:
        return [("none", 0.0, self.baseline)] + [(p.name, float(p.strength), r)
                                                 for p, r in zip(self.perturbations, self.results)]

    def summary(self) -> pd.DataFrame:
        """One row per condition (the original first, as perturbation ``"none"``, strength 0).

        Returns
        -------
        DataFrame
            ``perturbation, strength, units, detectors, unique_detectors, mean_detector_iou, kept_detectors``;
            ``kept_detectors`` counts units that are detectors of the same concept as on the original probe.
        """
        base = self.baseline
        rows = []
        for name, strength, result in self._conditions():
            kept = result.is_detector & base.is_detector & (result.unit_labels == base.unit_labels)
            rows.append({"perturbation": name, "strength": strength, **_stats(result),
                         "kept_detectors": int(kept.sum())})
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        """Tidy per-unit table: ``perturbation, strength`` followed by :meth:`DissectionResult.to_frame`'s
        columns and ``baseline_label, baseline_iou, same_label``."""
        base = self.baseline.to_frame()
        frames = []
        for name, strength, result in self._conditions():
            frame = result.to_frame()
            frame.insert(0, "strength", strength)
            frame.insert(0, "perturbation", name)
            frame["baseline_label"] = base["label"].to_numpy()
            frame["baseline_iou"] = base["iou"].to_numpy()
            frame["same_label"] = frame["label"].to_numpy() == base["label"].to_numpy()
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def by_category(self) -> pd.DataFrame:
        """Detectors and unique detectors per category and condition:
        ``perturbation, strength, category, detectors, unique_detectors``."""
        frame = self.to_frame()
        frame = frame[frame.is_detector]
        table = (frame.groupby(["perturbation", "strength", "category"], sort=False)
                 .agg(detectors=("unit", "size"), unique_detectors=("label", "nunique")).reset_index())
        return table


def detector_robustness(model: nn.Module | Classifier, layer: str, probe: ProbeDataset,
                        perturbations: Sequence[Perturbation], *, progress: bool = True, **dissect_options
                        ) -> RobustnessResult:
    """Dissect ``layer`` on the probe and on each perturbed copy of it.

    Parameters
    ----------
    model : nn.Module or Classifier
    layer : str
        Dotted module name.
    probe : ProbeDataset
    perturbations : sequence of Perturbation
        E.g. :func:`~linkviz.dissection.probe_perturbations.slide_perturbations`.
    progress : bool
        Show a bar over conditions (each dissection's own bars are off).
    **dissect_options
        Passed to :func:`~linkviz.dissection.dissect` (``quantile``, ``mode``, ``batch_size``, ``spec``,
        ``cache_dir``, ...); ``top_k`` defaults to 0 here (no report images).

    Returns
    -------
    RobustnessResult
    """
    dissect_options.setdefault("top_k", 0)
    dissect_options["progress"] = False
    perturbations = tuple(perturbations)
    results = []
    with tqdm(total=len(perturbations) + 1, desc=f"{layer}: robustness", disable=not progress) as bar:
        baseline = dissect(model, layer, probe, **dissect_options)
        bar.update()
        for perturbation in perturbations:
            bar.set_postfix_str(f"{perturbation.name} {perturbation.strength:g}")
            results.append(dissect(model, layer, perturbation(probe), **dissect_options))
            bar.update()
    return RobustnessResult(baseline=baseline, perturbations=perturbations, results=tuple(results))
