"""recall@s of LaViSE explanations against Network Dissection ground truth.

For unit ``u`` and one of its top images ``i``: the unit's mask ``R`` is its activation map upsampled
(bilinear) to the probe's segmentation resolution and thresholded at the unit's dissection threshold
(``> T_u``, the top-0.5% quantile); the ground truth ``G`` is every concept whose mask in image ``i`` has
IoU > 0.04 with ``R``; the prediction ``W`` is the ``s`` words nearest to the explainer's output for that image.
recall = |W ∩ G| / |G| (images with empty ``G`` are skipped), averaged over a unit's images and then over units.

Concepts are compared by their words (:func:`~linkviz.lavise.semantic_space.concept_words`): names with the same
words (``"red-c"``, ``"red-s"``) are one ground-truth entry, and a multi-word concept counts as recovered when any
of its words is predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..dissection.dissect import DissectionResult
from ..dissection.probe_dataset import ProbeDataset
from ..dissection.tally import upsample
from ..models.classifier import Classifier, ClassifierSpec, unwrap_classifier
from ..models.modules import module_device
from .explain import LaviseExplanation
from .features import batches, eval_mode, layer_maps
from .semantic_space import NameMapping, SemanticSpace, concept_words

__all__ = ["RECALL_S", "RecallResult", "evaluate_recall", "ground_truth", "recall_at_s"]

#: The ``s`` values LaViSE reports recall at.
RECALL_S: tuple[int, ...] = (5, 10, 20)
_IOU_THRESHOLD = 0.04


@dataclass(frozen=True, eq=False)
class RecallResult:
    """recall@s of explanations of some units.

    Attributes
    ----------
    s_values : tuple of int
    units : ndarray of int64, shape (U,)
    per_unit : ndarray of float64, shape (U, len(s_values))
        Mean recall over each unit's evaluated images; NaN for a unit without any.
    n_images : ndarray of int64, shape (U,)
        Evaluated images per unit (active, with non-empty ground truth).
    hits : DataFrame
        One row per evaluated (unit, image, ground-truth concept): ``unit, image, concept`` (its words joined by
        spaces) and a bool column ``hit@s`` per ``s``.
    """

    s_values: tuple[int, ...]
    units: np.ndarray
    per_unit: np.ndarray
    n_images: np.ndarray
    hits: pd.DataFrame

    @property
    def recall(self) -> dict[int, float]:
        """Mean recall over units with evaluated images, per ``s`` (NaN if none)."""
        evaluated = self.n_images > 0
        return {s: float(self.per_unit[evaluated, j].mean()) if evaluated.any() else float("nan")
                for j, s in enumerate(self.s_values)}

    def to_frame(self) -> pd.DataFrame:
        """One row per unit and ``s``: ``unit, s, recall, n_images``."""
        return pd.DataFrame([(int(u), s, self.per_unit[r, j], int(self.n_images[r]))
                             for r, u in enumerate(self.units) for j, s in enumerate(self.s_values)],
                            columns=["unit", "s", "recall", "n_images"])

    def __repr__(self) -> str:
        shown = ", ".join(f"R@{s}={value:.3f}" for s, value in self.recall.items())
        return f"RecallResult({shown}; {int((self.n_images > 0).sum())} of {len(self.units)} units evaluated)"


def _image_masks(pixel: np.ndarray | None, image: np.ndarray | None, shape: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Labels of one image and their flat masks, shapes (m,) and (m, sh * sw)."""
    masks: dict[int, np.ndarray] = {}
    if pixel is not None:
        for label in np.unique(pixel):
            if label:
                masks[int(label)] = (pixel == label).any(0).ravel()
    if image is not None:
        for label in np.unique(image):
            if label:
                masks[int(label)] = np.ones(shape[0] * shape[1], bool)
    labels = np.array(sorted(masks), dtype=np.int64)
    stacked = np.stack([masks[i] for i in labels]) if labels.size else np.zeros((0, shape[0] * shape[1]), bool)
    return labels, stacked


def ground_truth(model: nn.Module | Classifier, explanation: LaviseExplanation, probe: ProbeDataset,
                 thresholds: np.ndarray | Sequence[float], *, categories: Sequence[str] | None = None,
                 iou_threshold: float = _IOU_THRESHOLD, spec: ClassifierSpec | None = None, batch_size: int = 32,
                 device: str | torch.device | None = None, progress: bool = True) -> list[list[tuple[int, ...]]]:
    """Concepts each unit detects on each of its top images (see the module docstring).

    Parameters
    ----------
    model : nn.Module or Classifier
        The classifier that was explained.
    explanation : LaviseExplanation
        From :func:`~linkviz.lavise.explain.explain_units` on this probe.
    probe : ProbeDataset
    thresholds : array of float, shape (C,)
        Per-unit activation thresholds (``DissectionResult.thresholds``).
    categories : sequence of str, optional
        Probe categories whose concepts count (default all).
    iou_threshold : float
        A concept is detected where IoU is strictly above this.
    spec, batch_size, device, progress
        As in :func:`~linkviz.lavise.explain.explain_units`.

    Returns
    -------
    list of list of tuple of int
        ``truth[r][j]``: label numbers detected by unit ``explanation.units[r]`` on its ``j``-th top image
        (empty for skipped images).
    """
    module, spec = unwrap_classifier(model, spec)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1 or (explanation.units.size and explanation.units.max() >= len(thresholds)):
        raise ValueError(f"thresholds must be a vector with one value per unit of layer {explanation.layer!r}, "
                         f"got shape {thresholds.shape}")
    if explanation.top_images.size and explanation.top_images.max() >= len(probe):
        raise ValueError("the explanation's top images are not images of this probe (index out of range)")
    device = module_device(module) if device is None else torch.device(device)
    truth: list[list[tuple[int, ...]]] = [[() for _ in row] for row in explanation.top_images]
    pair_row, pair_slot = np.nonzero(explanation.valid)
    pair_image = explanation.top_images[pair_row, pair_slot]
    needed = np.unique(pair_image)
    shape = probe.segmentation_shape
    with eval_mode(module):
        for block in tqdm(list(batches(len(needed), batch_size)), desc=f"{explanation.layer}: ground truth",
                          unit="batch", disable=not progress):
            block_images = needed[block]
            maps = layer_maps(module, explanation.layer, probe.image_batch(block_images), spec=spec, device=device)
            pixel, image = probe.label_batch(block_images, categories=categories)
            pairs = np.nonzero(np.isin(pair_image, block_images))[0]
            position = np.searchsorted(block_images, pair_image[pairs])
            units = explanation.units[pair_row[pairs]]
            unit_maps = maps[torch.from_numpy(position).to(device), torch.from_numpy(units).to(device)]
            upsampled = upsample(unit_maps[:, None], shape)[:, 0].double().cpu()
            active = (upsampled > torch.from_numpy(thresholds[units])[:, None, None]).flatten(1).numpy()
            per_image = [_image_masks(None if pixel is None else pixel[b], None if image is None else image[b],
                                      shape) for b in range(len(block_images))]
            for pair, b, mask in zip(pairs, position, active):
                labels, label_masks = per_image[b]
                intersection = (label_masks & mask).sum(1)
                union = (label_masks | mask).sum(1)
                iou = intersection / np.maximum(union, 1)
                truth[pair_row[pair]][pair_slot[pair]] = tuple(int(v) for v in labels[iou > iou_threshold])
    return truth


def _concept_keys(names: Sequence[str], space: SemanticSpace, name_mapping: NameMapping | None
                  ) -> dict[str, tuple[str, frozenset[int]]]:
    ids = space.word_ids(names, name_mapping=name_mapping)
    return {name: (" ".join(concept_words(name, name_mapping=name_mapping)), frozenset(word_ids))
            for name, word_ids in zip(names, ids)}


def recall_at_s(explanation: LaviseExplanation, truth: Sequence[Sequence[tuple[int, ...]]],
                label_names: Sequence[str], space: SemanticSpace, *, s: Sequence[int] = RECALL_S,
                name_mapping: NameMapping | None = None) -> RecallResult:
    """recall@s from ground truth (see :func:`ground_truth`).

    Parameters
    ----------
    explanation : LaviseExplanation
        Must store at least ``max(s)`` words per image.
    truth : nested sequence of tuple of int
        ``truth[r][j]``: detected label numbers, as returned by :func:`ground_truth`.
    label_names : sequence of str
        The probe's label names.
    space : SemanticSpace
        The space the explanation's word ids index.
    s : sequence of int
    name_mapping : mapping, optional
        Words for concept names.

    Raises
    ------
    OutOfVocabularyError
        If a ground-truth concept has words outside the space.
    ValueError
        If ``s`` exceeds the stored words per image or the vocabulary does not match.
    """
    s_values = tuple(int(v) for v in s)
    if not s_values or min(s_values) < 1 or max(s_values) > explanation.image_word_ids.shape[2]:
        raise ValueError(f"s must lie in [1, {explanation.image_word_ids.shape[2]}] (the words stored per image; "
                         f"raise words_per_image), got {s_values}")
    if len(space) != len(explanation.vocabulary):
        raise ValueError(f"the explanation's vocabulary has {len(explanation.vocabulary)} words, space "
                         f"{space.name!r} has {len(space)}")
    present = sorted({label for row in truth for labels in row for label in labels})
    keys = _concept_keys([label_names[i] for i in present], space, name_mapping)
    per_unit = np.full((len(explanation.units), len(s_values)), np.nan)
    n_images = np.zeros(len(explanation.units), np.int64)
    rows = []
    for r, unit in enumerate(explanation.units):
        recalls = []
        for j, labels in enumerate(truth[r]):
            entries = dict(keys[label_names[i]] for i in labels)
            if not entries:
                continue
            predicted = explanation.image_word_ids[r, j]
            hits = {key: [bool(set(predicted[:k].tolist()) & ids) for k in s_values] for key, ids in entries.items()}
            recalls.append(np.mean(list(hits.values()), axis=0))
            image = int(explanation.top_images[r, j])
            rows += [(int(unit), image, key, *flags) for key, flags in hits.items()]
        n_images[r] = len(recalls)
        if recalls:
            per_unit[r] = np.mean(recalls, axis=0)
    hits_frame = pd.DataFrame(rows, columns=["unit", "image", "concept"] + [f"hit@{k}" for k in s_values])
    return RecallResult(s_values=s_values, units=explanation.units, per_unit=per_unit, n_images=n_images,
                        hits=hits_frame)


def evaluate_recall(model: nn.Module | Classifier, explanation: LaviseExplanation, probe: ProbeDataset,
                    dissection: DissectionResult | np.ndarray, space: SemanticSpace, *,
                    s: Sequence[int] = RECALL_S, categories: Sequence[str] | None = None,
                    iou_threshold: float = _IOU_THRESHOLD, name_mapping: NameMapping | None = None,
                    spec: ClassifierSpec | None = None, batch_size: int = 32,
                    device: str | torch.device | None = None, progress: bool = True) -> RecallResult:
    """recall@s of explanations against dissection ground truth (see the module docstring).

    Parameters
    ----------
    model : nn.Module or Classifier
    explanation : LaviseExplanation
        Explanations on ``probe``, storing at least ``max(s)`` words per image.
    probe : ProbeDataset
    dissection : DissectionResult or ndarray of float, shape (C,)
        Dissection of the explained layer (its thresholds and categories are used), or the thresholds.
    space : SemanticSpace
    s : sequence of int
        Default (5, 10, 20).
    categories : sequence of str, optional
        Categories whose concepts count (default: the dissection's, else all).
    iou_threshold, name_mapping, spec, batch_size, device, progress
        See :func:`ground_truth` and :func:`recall_at_s`.

    Returns
    -------
    RecallResult

    Raises
    ------
    ValueError
        If the dissection is of another layer.
    """
    thresholds = dissection
    if isinstance(dissection, DissectionResult):
        if dissection.layer != explanation.layer:
            raise ValueError(f"the dissection is of layer {dissection.layer!r}, the explanation of "
                             f"{explanation.layer!r}")
        thresholds = dissection.thresholds
        categories = dissection.categories if categories is None else categories
    truth = ground_truth(model, explanation, probe, thresholds, categories=categories, iou_threshold=iou_threshold,
                         spec=spec, batch_size=batch_size, device=device, progress=progress)
    return recall_at_s(explanation, truth, probe.label_names, space, s=s, name_mapping=name_mapping)
