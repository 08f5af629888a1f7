"""PCA loadings of a concept's activations (seed slides): one unit, or a combination of units?

For a concept ``c``, collect the layer's activation vectors (one per pixel at the segmentation resolution, maps
upsampled as in the dissection) at the pixels labelled ``c``, standardise each unit with its mean and standard
deviation over *all* probe pixels, and take the principal directions of these vectors (right singular vectors,
no re-centering by default, as in the slides). If the first direction's loading is concentrated on one unit
(its loading near 1, i.e. the direction is nearly the unit vector ``e_u``), that unit carries the concept by
itself; if it is spread over many units, the concept lives in a combination.

Only per-concept second moments (``C x C``) are accumulated, never the pixels themselves.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..models.classifier import Classifier, ClassifierSpec
from .activations import iter_layer_activations
from .probe_dataset import ProbeDataset
from .tally import upsample

__all__ = ["ConceptPCA", "concept_pca"]

_MAX_UPSAMPLED = 2**24  # values upsampled at a time


@dataclass(frozen=True)
class ConceptPCA:
    """Principal directions of each concept's standardised activation vectors.

    Attributes
    ----------
    layer : str
    concepts : tuple of str, length K
    n_pixels : ndarray of int64, shape (K,)
        Pixels (at the segmentation resolution) that entered each concept's PCA.
    loadings : ndarray of float64, shape (K, n_components, C)
        Unit-norm principal directions, strongest first; each signed so that its largest entry is positive.
        NaN for a concept without pixels.
    eigenvalues : ndarray of float64, shape (K, n_components)
        Mean squared projection of the concept's standardised vectors on each direction.
    explained_variance_ratio : ndarray of float64, shape (K, n_components)
        Each eigenvalue over the sum of all ``C``.
    unit_mean, unit_std : ndarray of float64, shape (C,)
        Per-unit mean and standard deviation over all probe pixels (the standardisation).
    center : {"global", "concept"}
    """

    layer: str
    concepts: tuple[str, ...]
    n_pixels: np.ndarray
    loadings: np.ndarray
    eigenvalues: np.ndarray
    explained_variance_ratio: np.ndarray
    unit_mean: np.ndarray
    unit_std: np.ndarray
    center: str

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (concept, component, unit): ``concept, component, unit, loading,
        explained_variance_ratio``."""
        n_concepts, n_components, n_units = self.loadings.shape
        return pd.DataFrame({
            "concept": np.repeat(np.array(self.concepts, dtype=object), n_components * n_units),
            "component": np.tile(np.repeat(np.arange(n_components), n_units), n_concepts),
            "unit": np.tile(np.arange(n_units), n_concepts * n_components),
            "loading": self.loadings.reshape(-1),
            "explained_variance_ratio": np.repeat(self.explained_variance_ratio.reshape(-1), n_units),
        })

    def summary(self) -> pd.DataFrame:
        """One row per concept, about its first principal direction ``v``.

        Returns
        -------
        DataFrame
            ``concept, n_pixels, explained_variance_ratio, top_unit, top_loading, top_share, effective_units``:
            the unit with the largest ``|v_u|`` (= cosine between ``v`` and that unit's axis), its share
            ``v_u**2`` of the direction, and the participation ratio ``1 / sum(v**4)`` (1 for a single unit,
            ``C`` for a direction spread evenly over all units).
        """
        first = self.loadings[:, 0, :]
        valid = ~np.isnan(first).any(1)
        filled = np.where(valid[:, None], first, 0.0)
        top = np.abs(filled).argmax(1)
        top_loading = np.where(valid, filled[np.arange(len(first)), top], np.nan)
        with np.errstate(divide="ignore"):
            effective = np.where(valid, 1.0 / (filled**4).sum(1), np.nan)
        return pd.DataFrame({"concept": list(self.concepts), "n_pixels": self.n_pixels,
                             "explained_variance_ratio": self.explained_variance_ratio[:, 0],
                             "top_unit": np.where(valid, top, -1), "top_loading": top_loading,
                             "top_share": top_loading**2, "effective_units": effective})


def _label_numbers(probe: ProbeDataset, concepts: Sequence[str | int]) -> tuple[np.ndarray, tuple[str, ...]]:
    numbers = []
    for concept in concepts:
        if isinstance(concept, (int, np.integer)):
            if not 0 < concept < probe.n_labels:
                raise ValueError(f"label number {concept} is out of range [1, {probe.n_labels - 1}]")
            numbers.append(int(concept))
        elif concept in probe.label_names[1:]:
            numbers.append(probe.label_names.index(concept, 1))
        else:
            close = difflib.get_close_matches(str(concept), probe.label_names[1:], n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"the probe has no concept {concept!r}{hint}")
    numbers = np.array(numbers, dtype=np.int64)
    return numbers, tuple(probe.label_names[n] for n in numbers)


def _concept_masks(pixel: np.ndarray | None, image: np.ndarray | None, numbers: np.ndarray, n: int,
                   pixels: int) -> np.ndarray:
    """Whether each pixel carries each concept: shape (K, n * pixels) bool."""
    masks = np.zeros((len(numbers), n, pixels), bool)
    if pixel is not None:
        flat = pixel.reshape(n, pixel.shape[1], pixels)
        masks |= (flat[None] == numbers[:, None, None, None]).any(2)
    if image is not None:
        masks |= (image[None] == numbers[:, None, None]).any(2)[:, :, None]
    return masks.reshape(len(numbers), n * pixels)


def concept_pca(model: nn.Module | Classifier, layer: str, probe: ProbeDataset, concepts: Sequence[str | int], *,
                n_components: int = 3, center: Literal["global", "concept"] = "global",
                pixels_per_image: int | None = None, seed: int = 0, categories: Sequence[str] | None = None,
                spec: ClassifierSpec | None = None, batch_size: int = 32, device: str | torch.device | None = None,
                progress: bool = True) -> ConceptPCA:
    """Principal directions of the layer's activations inside each concept's pixels.

    Parameters
    ----------
    model : nn.Module or Classifier
    layer : str
        Dotted module name.
    probe : ProbeDataset
    concepts : sequence of str or int
        Label names (e.g. ``"door"``) or numbers.
    n_components : int
        Directions kept per concept.
    center : {"global", "concept"}
        ``"global"`` (the slides): standardise with all-pixel statistics and take singular vectors without
        re-centering, so the first direction points to where the concept's activations lie. ``"concept"``:
        also subtract the concept's own mean (directions of variation *within* the concept).
    pixels_per_image : int, optional
        Use at most this many random pixels of each concept per image (default all).
    seed : int
        Seed of that pixel sampling.
    categories : sequence of str, optional
        Label categories to read (default all).
    spec, batch_size, device
        As in :func:`~linkviz.dissection.dissect`.
    progress : bool

    Returns
    -------
    ConceptPCA
    """
    if center not in ("global", "concept"):
        raise ValueError(f"center must be 'global' or 'concept', got {center!r}")
    numbers, names = _label_numbers(probe, concepts)
    rng = np.random.default_rng(seed)
    size = probe.segmentation_shape
    pixels = size[0] * size[1]
    moments = second = total = count = None
    n_pixels = np.zeros(len(numbers), np.int64)
    batches = iter_layer_activations(model, layer, probe.images, spec=spec, batch_size=batch_size, device=device)
    with tqdm(total=len(probe), desc=f"{layer}: concept PCA", unit="img", disable=not progress) as bar:
        for indices, output in batches:
            n_units = output.shape[1]
            if moments is None:
                moments = np.zeros((len(numbers), n_units))
                second = np.zeros((len(numbers), n_units, n_units))
                total, count = np.zeros((2, n_units)), 0
            pixel, image = probe.label_batch(indices, categories=categories)
            masks = _concept_masks(pixel, image, numbers, len(indices), pixels)
            step = max(1, _MAX_UPSAMPLED // (n_units * pixels))
            for start in range(0, len(indices), step):
                rows = upsample(output[start:start + step].cpu(), size).permute(0, 2, 3, 1).reshape(-1, n_units)
                rows = rows.double().numpy()
                total += np.stack([rows.sum(0), (rows**2).sum(0)])
                count += len(rows)
                span = slice(start * pixels, start * pixels + len(rows))
                for k, mask in enumerate(masks[:, span]):
                    chosen = _sample(np.flatnonzero(mask), pixels, pixels_per_image, rng)
                    x = rows[chosen]
                    moments[k] += x.sum(0)
                    second[k] += x.T @ x
                    n_pixels[k] += len(x)
            bar.update(len(indices))
    mean = total[0] / count
    std = np.sqrt(np.maximum(total[1] / count - mean**2, 0.0))
    std = np.where(std > 0, std, 1.0)
    loadings, eigenvalues, ratio = _principal_directions(second, moments, n_pixels, mean, std,
                                                         n_components=n_components, center=center)
    return ConceptPCA(layer=layer, concepts=names, n_pixels=n_pixels, loadings=loadings, eigenvalues=eigenvalues,
                      explained_variance_ratio=ratio, unit_mean=mean, unit_std=std, center=center)


def _sample(candidates: np.ndarray, pixels: int, per_image: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``per_image`` of the candidate rows of every image (rows of image ``i`` are ``i*pixels ...``)."""
    if per_image is None or not len(candidates):
        return candidates
    image = candidates // pixels
    order = rng.permutation(len(candidates))
    order = order[np.argsort(image[order], kind="stable")]  # random order within each image
    first = np.searchsorted(image[order], image[order], side="left")
    keep = np.arange(len(order)) - first < per_image
    return np.sort(candidates[order[keep]])


def _principal_directions(second: np.ndarray, moments: np.ndarray, n_pixels: np.ndarray, mean: np.ndarray,
                          std: np.ndarray, *, n_components: int, center: str
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top eigenvectors of each concept's standardised second-moment matrix ``Z^T Z / m`` (``Z = (X - mean)
    / std``), from the raw sums ``X^T X`` and ``X^T 1``."""
    n_concepts, n_units = moments.shape
    n_components = min(int(n_components), n_units)
    loadings = np.full((n_concepts, n_components, n_units), np.nan)
    eigenvalues = np.full((n_concepts, n_components), np.nan)
    ratio = np.full((n_concepts, n_components), np.nan)
    for k in range(n_concepts):
        m = n_pixels[k]
        if not m:
            continue
        cross = np.outer(mean, moments[k])
        matrix = (second[k] - cross - cross.T + m * np.outer(mean, mean)) / m
        matrix = matrix / np.outer(std, std)
        if center == "concept":
            offset = (moments[k] / m - mean) / std
            matrix = matrix - np.outer(offset, offset)
        values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
        values, vectors = values[::-1][:n_components], vectors[:, ::-1][:, :n_components].T
        signs = np.sign(vectors[np.arange(n_components), np.abs(vectors).argmax(1)])
        loadings[k] = vectors * signs[:, None]
        eigenvalues[k] = np.maximum(values, 0.0)
        ratio[k] = eigenvalues[k] / max(np.trace(matrix), np.finfo(float).tiny)
    return loadings, eigenvalues, ratio
