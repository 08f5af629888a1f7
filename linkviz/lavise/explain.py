"""Describing filters with words: top images, filter attention, nearest words, activation-weighted vote."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..dissection.probe_dataset import ProbeDataset
from ..hashing import hash_state
from ..models.classifier import Classifier, ClassifierSpec, unwrap_classifier
from ..models.hooks import resolve_module
from ..models.modules import module_device
from .attention import AttentionVariant, filter_attention
from .features import batches, eval_mode, layer_maps
from .head import ExplainerHead, TrainedExplainer
from .semantic_space import SemanticSpace

__all__ = ["VOTE_MODES", "LaviseExplanation", "explain_units", "top_images"]

VoteMode = Literal["activation", "truncated", "count"]
VOTE_MODES: tuple[str, ...] = ("activation", "truncated", "count")


@dataclass(frozen=True, eq=False)
class LaviseExplanation:
    """Words describing some units of a layer.

    Attributes
    ----------
    layer : str
    units : ndarray of int64, shape (U,)
    attention : {"code", "paper"}
    s : int
        Words per image that vote.
    top_images : ndarray of int64, shape (U, p)
        Probe images with the highest spatial maximum of each unit, highest first (ties: lower index first).
    image_activation : ndarray of float32, shape (U, p)
        The unit's spatial maximum on each of them (the vote weight).
    valid : ndarray of bool, shape (U, p)
        Images where the unit is active (maximum > 0); the others are skipped, as in LaViSE.
    image_word_ids : ndarray of int64, shape (U, p, k)
        Nearest vocabulary words of the explainer's prediction for each image, most similar first.
    image_similarity : ndarray of float32, shape (U, p, k)
        Their cosine similarities.
    unit_word_ids : tuple of ndarray of int64
        Per unit, the voted words (at most ``n_words``), most votes first.
    unit_votes : tuple of ndarray of float64
        Their votes.
    vocabulary : tuple of str
        The semantic space's words, which the ids index.
    """

    layer: str
    units: np.ndarray
    attention: str
    s: int
    top_images: np.ndarray
    image_activation: np.ndarray
    valid: np.ndarray
    image_word_ids: np.ndarray
    image_similarity: np.ndarray
    unit_word_ids: tuple[np.ndarray, ...]
    unit_votes: tuple[np.ndarray, ...]
    vocabulary: tuple[str, ...]

    def row(self, unit: int) -> int:
        """Index of ``unit`` in ``units`` (the row of the per-unit arrays).

        Raises
        ------
        KeyError
            If the unit was not explained.
        """
        rows = np.nonzero(self.units == unit)[0]
        if not rows.size:
            raise KeyError(f"unit {unit} was not explained; explained units: {self.units.tolist()}")
        return int(rows[0])

    _row = row  # the name the widgets first used

    def words(self, unit: int) -> list[str]:
        """The voted words of ``unit``, most votes first."""
        return [self.vocabulary[i] for i in self.unit_word_ids[self.row(unit)]]

    def image_words(self, unit: int, s: int | None = None) -> list[list[str]]:
        """The ``s`` nearest words (default ``self.s``) of each valid top image of ``unit``."""
        row = self.row(unit)
        s = self.s if s is None else s
        return [[self.vocabulary[i] for i in ids[:s]] for ids in self.image_word_ids[row][self.valid[row]]]

    def to_frame(self) -> pd.DataFrame:
        """One row per unit and voted word: ``unit, rank, word, votes``."""
        rows = [(int(unit), rank, self.vocabulary[word], float(votes))
                for unit, ids, weights in zip(self.units, self.unit_word_ids, self.unit_votes)
                for rank, (word, votes) in enumerate(zip(ids, weights))]
        return pd.DataFrame(rows, columns=["unit", "rank", "word", "votes"])

    def __repr__(self) -> str:
        shown = ", ".join(f"{u}: {' '.join(self.words(int(u))[:3])}" for u in self.units[:3])
        more = ", ..." if len(self.units) > 3 else ""
        return f"LaviseExplanation(layer={self.layer!r}, {len(self.units)} units; {shown}{more})"


def top_images(image_max: np.ndarray, units: np.ndarray, p: int) -> np.ndarray:
    """The ``p`` images with the highest spatial maximum of each unit.

    Parameters
    ----------
    image_max : ndarray of float, shape (N, C)
    units : ndarray of int, shape (U,)
    p : int

    Returns
    -------
    ndarray of int64, shape (U, min(p, N))
        Highest first; ties go to the lower image index (stable sort).
    """
    columns = np.asarray(image_max)[:, units].T
    return np.argsort(-columns, axis=1, kind="stable")[:, :p].astype(np.int64)


def _head_of(explainer: TrainedExplainer | ExplainerHead, layer: str | None) -> tuple[ExplainerHead, str]:
    if isinstance(explainer, TrainedExplainer):
        if layer is not None and layer != explainer.layer:
            raise ValueError(f"the explainer was trained on layer {explainer.layer!r}, not {layer!r}")
        return explainer.head, explainer.layer
    if not isinstance(explainer, ExplainerHead):
        raise TypeError(f"explainer must be a TrainedExplainer or an ExplainerHead, got {type(explainer).__name__}")
    if layer is None:
        raise ValueError("pass layer= with a bare ExplainerHead")
    return explainer, layer


def _check_classifier(explainer: TrainedExplainer | ExplainerHead, module: nn.Module) -> None:
    """ValueError if ``explainer`` records the hash of another classifier than ``module``."""
    if not isinstance(explainer, TrainedExplainer) or explainer.classifier_hash is None:
        return
    found = hash_state(module)
    if found != explainer.classifier_hash:
        raise ValueError(f"the explainer was trained on another classifier (weights hash "
                         f"{explainer.classifier_hash}, this one {found}); its words would describe that one's "
                         "units. Train an explainer for this classifier, or pass explainer.head with layer= to use "
                         "the head anyway")


def _image_max(module: nn.Module, layer: str, images: np.ndarray, *, spec: ClassifierSpec | None,
               device: torch.device, batch_size: int, progress: bool) -> np.ndarray:
    maxima = []
    for indices in tqdm(list(batches(len(images), batch_size)), desc=f"{layer}: top images", unit="batch",
                        disable=not progress):
        maxima.append(layer_maps(module, layer, images[indices], spec=spec, device=device).amax((2, 3)).cpu())
    return torch.cat(maxima).numpy()


def _vote(word_ids: np.ndarray, weights: np.ndarray, *, n_words: int, allowed: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Sum the weights of each word (``word_ids`` [m, s], ``weights`` [m]); most votes first, then first seen."""
    flat = word_ids.ravel()
    if not flat.size:
        return np.zeros(0, np.int64), np.zeros(0)
    words, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    votes = np.bincount(inverse, weights=np.repeat(weights, word_ids.shape[1]), minlength=len(words))
    order = np.lexsort((first, -votes))
    order = order[votes[order] > 0]  # images with zero weight (vote="truncated") do not vote
    if allowed is not None:
        order = order[allowed[words[order]]]
    order = order[:n_words]
    return words[order].astype(np.int64), votes[order]


def explain_units(model: nn.Module | Classifier, explainer: TrainedExplainer | ExplainerHead,
                  probe: ProbeDataset | np.ndarray, space: SemanticSpace, *, units: Sequence[int] | None = None,
                  layer: str | None = None, p: int = 25, s: int = 5, n_words: int = 10, words_per_image: int = 20,
                  attention: AttentionVariant = "code", vote: VoteMode = "activation",
                  entities: Sequence[str] | None = None, image_max: np.ndarray | None = None,
                  spec: ClassifierSpec | None = None, batch_size: int = 32, device: str | torch.device | None = None,
                  progress: bool = True) -> LaviseExplanation:
    """Describe units of a layer with words from the whole semantic space (LaViSE inference).

    For each unit: take the ``p`` probe images with the highest spatial maximum, compute the filter attention
    vector on each (skipping images where the unit is inactive), map it through the explainer head, take the
    ``s`` nearest words in the whole vocabulary (so words never trained on can appear), and vote across images,
    each image's words weighted by the unit's maximum activation there (``vote="activation"``), by its integer
    part as in the released code, which repeats a vote ``int(max)`` times and so ignores images with maximum < 1
    (``vote="truncated"``), or counted once (``vote="count"``).

    Parameters
    ----------
    model : nn.Module or Classifier
        The classifier the explainer was trained on (not modified).
    explainer : TrainedExplainer or ExplainerHead
        The trained head (a bare head needs ``layer``).
    probe : ProbeDataset or ndarray of uint8, shape (N, H, W, 3)
        Reference images.
    space : SemanticSpace
        Vocabulary to describe with (the explainer's space, or one with the same dimension).
    units : sequence of int, optional
        Units to explain (default all).
    layer : str, optional
        Target layer (default: the explainer's).
    p : int
        Top images per unit (25 in LaViSE).
    s : int
        Nearest words per image that vote (5 in LaViSE).
    n_words : int
        Voted words kept per unit (10 in LaViSE).
    words_per_image : int
        Nearest words stored per image (at least ``s``), e.g. 20 for recall@20.
    attention : {"code", "paper"}
        Filter-attention variant (see :mod:`linkviz.lavise.attention`).
    vote : {"activation", "truncated", "count"}
        Vote weight of an image's words (see above).
    entities : sequence of str, optional
        Keep only these words in the voted lists (LaViSE's entity filter, applied after ranking; words outside
        the space are ignored).
    image_max : ndarray of float, shape (N, C), optional
        Precomputed spatial maxima (e.g. ``DissectionResult.image_max``); computed when omitted.
    spec : ClassifierSpec, optional
        Input preprocessing (default: a Classifier's spec).
    batch_size : int
        Images per forward pass.
    device : str or torch.device, optional
        Where the model and head run (default: the model's device).
    progress : bool
        Show progress bars.

    Returns
    -------
    LaviseExplanation

    Raises
    ------
    LayerNotFoundError
        For an unknown layer.
    ValueError
        For units out of range, a head or space whose dimensions do not match the layer, or bad arguments.
    """
    head, layer = _head_of(explainer, layer)
    module, spec = unwrap_classifier(model, spec)
    _check_classifier(explainer, module)
    resolve_module(module, layer)
    if head.embedding_dim != space.dim:
        raise ValueError(f"the explainer predicts {head.embedding_dim}-d vectors, but space {space.name!r} is "
                         f"{space.dim}-d")
    if min(p, s, n_words) < 1 or words_per_image < s or words_per_image > len(space):
        raise ValueError(f"need p, s, n_words >= 1 and s <= words_per_image <= {len(space)}, got p={p}, s={s}, "
                         f"n_words={n_words}, words_per_image={words_per_image}")
    if vote not in VOTE_MODES:
        raise ValueError(f"vote must be one of {VOTE_MODES}, got {vote!r}")
    images = probe.images if isinstance(probe, ProbeDataset) else np.asarray(probe)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise ValueError(f"reference images must be uint8 (N, H, W, 3) with N > 0, got {images.dtype} {images.shape}")
    device = module_device(module) if device is None else torch.device(device)
    allowed = None
    if entities is not None:
        allowed = np.zeros(len(space), bool)
        allowed[[space.index[w] for w in entities if w in space.index]] = True
    with eval_mode(module):
        if image_max is None:
            image_max = _image_max(module, layer, images, spec=spec, device=device, batch_size=batch_size,
                                   progress=progress)
        image_max = np.asarray(image_max, dtype=np.float32)
        if image_max.ndim != 2 or len(image_max) != len(images):
            raise ValueError(f"image_max must have shape (N, C) with N = {len(images)}, got {image_max.shape}")
        n_channels = image_max.shape[1]
        if head.in_channels != n_channels:
            raise ValueError(f"the explainer head takes {head.in_channels} channels, but layer {layer!r} has "
                             f"{n_channels}")
        units = np.arange(n_channels) if units is None else np.asarray(units, dtype=np.int64).reshape(-1)
        if units.size and (units.min() < 0 or units.max() >= n_channels):
            raise ValueError(f"units must lie in [0, {n_channels}) for layer {layer!r}, got {units.tolist()}")
        ranked = top_images(image_max, units, p)
        activation = image_max[ranked, units[:, None]]
        valid = activation > 0
        predictions = _predictions(module, layer, head, images, ranked, units, valid, attention=attention,
                                   spec=spec, device=device, batch_size=batch_size, progress=progress)
    word_ids = np.zeros(ranked.shape + (words_per_image,), np.int64)
    similarity = np.full(ranked.shape + (words_per_image,), np.nan, np.float32)
    if valid.any():
        word_ids[valid], similarity[valid] = space.nearest(predictions, words_per_image, device=device)
    weights = {"activation": activation, "truncated": np.floor(activation),
               "count": np.ones_like(activation)}[vote]
    voted = [_vote(word_ids[u][valid[u], :s], weights[u][valid[u]].astype(np.float64), n_words=n_words,
                   allowed=allowed) for u in range(len(units))]
    return LaviseExplanation(layer=layer, units=units, attention=attention, s=s, top_images=ranked,
                             image_activation=activation, valid=valid, image_word_ids=word_ids,
                             image_similarity=similarity, unit_word_ids=tuple(v[0] for v in voted),
                             unit_votes=tuple(v[1] for v in voted), vocabulary=space.words)


def _predictions(module: nn.Module, layer: str, head: ExplainerHead, images: np.ndarray, ranked: np.ndarray,
                 units: np.ndarray, valid: np.ndarray, *, attention: AttentionVariant, spec: ClassifierSpec | None,
                 device: torch.device, batch_size: int, progress: bool) -> np.ndarray:
    """Head outputs [valid pairs, D] for the valid (unit, top image) pairs, in row-major order of ``valid``."""
    pair_unit, pair_slot = np.nonzero(valid)
    pair_image = ranked[pair_unit, pair_slot]
    needed = np.unique(pair_image)
    outputs = np.zeros((len(pair_image), head.embedding_dim), np.float32)
    if next(head.parameters()).device != device:
        head = copy.deepcopy(head).to(device)
    with eval_mode(head):
        for block in tqdm(list(batches(len(needed), batch_size)), desc=f"{layer}: filter attention", unit="batch",
                          disable=not progress):
            block_images = needed[block]
            maps = layer_maps(module, layer, images[block_images], spec=spec, device=device)
            pairs = np.nonzero(np.isin(pair_image, block_images))[0]
            position = np.searchsorted(block_images, pair_image[pairs])
            unit_ids = torch.from_numpy(units[pair_unit[pairs]]).to(device)
            with torch.no_grad():
                z = filter_attention(maps[torch.from_numpy(position).to(device)], unit_ids, variant=attention)
                outputs[pairs] = head(z.clone()).cpu().numpy()
    return outputs
