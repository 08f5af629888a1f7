"""The unseen-concept test: train on a random part of the concepts, count held-out concepts still recovered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..dissection.dissect import DissectionResult
from ..dissection.probe_dataset import ProbeDataset
from ..models.classifier import Classifier
from .evaluate import RecallResult, evaluate_recall
from .explain import explain_units
from .head import TrainedExplainer
from .regions import concept_labels
from .semantic_space import NameMapping, SemanticSpace, concept_words

__all__ = ["UnseenConceptResult", "split_concepts", "unseen_concept_test"]


def split_concepts(names: Sequence[str], *, train_fraction: float, seed: int,
                   name_mapping: NameMapping | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split concept names at random into trained and held-out ones.

    Names with the same words (``"red-c"``, ``"red-s"``) fall on the same side, so a held-out concept's words
    are never trained on. ``round(train_fraction * groups)`` groups (at least one, and at least one held out)
    are drawn without replacement (LaViSE drew with replacement, so its "10 %" was 114 of 1,208 concepts).

    Parameters
    ----------
    names : sequence of str
    train_fraction : float
        In (0, 1).
    seed : int
    name_mapping : mapping, optional

    Returns
    -------
    train, held_out : tuple of str
        In the order of ``names``.

    Raises
    ------
    ValueError
        For a fraction outside (0, 1) or fewer than two word groups.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    keys = [concept_words(name, name_mapping=name_mapping) for name in names]
    groups = list(dict.fromkeys(keys))
    if len(groups) < 2:
        raise ValueError(f"need concepts with at least two different words to split, got {list(names)}")
    n_train = min(len(groups) - 1, max(1, round(train_fraction * len(groups))))
    chosen = {groups[i] for i in np.random.default_rng(seed).choice(len(groups), n_train, replace=False)}
    train = tuple(name for name, key in zip(names, keys) if key in chosen)
    held_out = tuple(name for name, key in zip(names, keys) if key not in chosen)
    return train, held_out


@dataclass(frozen=True, eq=False)
class UnseenConceptResult:
    """Outcome of the unseen-concept test.

    Attributes
    ----------
    train_concepts, held_out_concepts : tuple of str
        Concept names trained on and held out.
    s : int
        A concept is recovered if it is among the ``s`` nearest words on an image where the unit detects it.
    held_out_detected : tuple of str
        Held-out concepts (as words) in any ground truth: the ones that could be recovered.
    recovered : tuple of str
        Held-out concepts (as words) recovered at least once.
    recall : RecallResult
        recall@s over all units and concepts.
    explainer : TrainedExplainer
    """

    train_concepts: tuple[str, ...]
    held_out_concepts: tuple[str, ...]
    s: int
    held_out_detected: tuple[str, ...]
    recovered: tuple[str, ...]
    recall: RecallResult
    explainer: TrainedExplainer

    @property
    def fraction_recovered(self) -> float:
        """Recovered / detected held-out concepts (NaN if none was detected)."""
        return len(self.recovered) / len(self.held_out_detected) if self.held_out_detected else float("nan")

    def __repr__(self) -> str:
        return (f"UnseenConceptResult(trained on {len(self.train_concepts)}, held out {len(self.held_out_concepts)}; "
                f"{len(self.recovered)} of {len(self.held_out_detected)} detected held-out concepts recovered "
                f"at s={self.s})")


def unseen_concept_test(model: nn.Module | Classifier, probe: ProbeDataset, space: SemanticSpace,
                        dissection: DissectionResult, *, seed: int, train_fraction: float = 0.1, s: int = 5,
                        units: Sequence[int] | None = None, categories: Sequence[str] | None = None,
                        name_mapping: NameMapping | None = None, p: int = 25,
                        train_options: Mapping[str, Any] | None = None, device: str | torch.device | None = None,
                        progress: bool = True) -> UnseenConceptResult:
    """Train an explainer on a random ``train_fraction`` of the concepts and count held-out concepts recovered.

    Parameters
    ----------
    model : nn.Module or Classifier
    probe : ProbeDataset
        Training and reference images.
    space : SemanticSpace
    dissection : DissectionResult
        Dissection of the target layer on ``probe`` (layer, thresholds, top images and categories).
    seed : int
        Seeds the concept split and training.
    train_fraction : float
        Fraction of concept word groups trained on (0.1 in LaViSE).
    s : int
        Words per image that count as predicted.
    units : sequence of int, optional
        Units to explain (default all).
    categories : sequence of str, optional
        Probe categories (default: the dissection's).
    name_mapping : mapping, optional
    p : int
        Top images per unit.
    train_options : mapping, optional
        More keyword arguments for :func:`~linkviz.lavise.train.train_explainer` (e.g. ``epochs``; they override
        ``device`` and ``progress``).
    device : str or torch.device, optional
    progress : bool

    Returns
    -------
    UnseenConceptResult
    """
    from .train import train_explainer

    categories = dissection.categories if categories is None else tuple(categories)
    names = [probe.label_names[i] for i in concept_labels(probe, categories=categories)]
    train, held_out = split_concepts(names, train_fraction=train_fraction, seed=seed, name_mapping=name_mapping)
    options = {"device": device, "progress": progress, **dict(train_options or {})}
    explainer = train_explainer(model, dissection.layer, probe, space, seed=seed, concepts=train,
                                categories=categories, name_mapping=name_mapping, **options)
    explanation = explain_units(model, explainer, probe, space, units=units, p=p, s=s, words_per_image=s,
                                image_max=dissection.image_max, device=device, progress=progress)
    recall = evaluate_recall(model, explanation, probe, dissection, space, s=(s,), categories=categories,
                             name_mapping=name_mapping, device=device, progress=progress)
    held_keys = {" ".join(concept_words(name, name_mapping=name_mapping)) for name in held_out}
    hits = recall.hits[recall.hits.concept.isin(held_keys)]
    detected = tuple(sorted(set(hits.concept)))
    recovered = tuple(sorted(set(hits.concept[hits[f"hit@{s}"]])))
    return UnseenConceptResult(train_concepts=train, held_out_concepts=held_out, s=s, held_out_detected=detected,
                               recovered=recovered, recall=recall, explainer=explainer)
