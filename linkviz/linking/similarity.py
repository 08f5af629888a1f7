"""How alike are the classifier's space R and the generator's space W? (the paper's Fig. 3A)

Each repetition draws the same number of examples per class. In each space separately, k-Means with
k = number of classes is scored against the true classes with the Adjusted Rand Index (ARI). Representational
similarity analysis (RSA) correlates, between W and R, the upper triangles of the examples' similarity matrices
(Pearson correlation between examples) and of their dissimilarity matrices (Euclidean distance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.spatial.distance import pdist
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from tqdm.auto import tqdm

from linkviz.linking.fit import validate_pairs

__all__ = ["SpaceSimilarity", "space_similarity"]

# measure -> (attribute, space)
_COLUMNS = {
    "ari_w": ("ari", "W"),
    "ari_r": ("ari", "R"),
    "rsa_similarity": ("rsa_similarity", "W~R"),
    "rsa_distance": ("rsa_distance", "W~R"),
}


@dataclass(frozen=True)
class SpaceSimilarity:
    """ARI and RSA per repetition.

    Attributes
    ----------
    ari_w, ari_r : ndarray of float, shape (repetitions,)
        Adjusted Rand Index of k-Means in W and in R against the true classes.
    rsa_similarity : ndarray of float, shape (repetitions,)
        Pearson correlation between the upper triangles of the correlation matrices of the examples in W and R.
    rsa_distance : ndarray of float, shape (repetitions,)
        The same for the Euclidean distance matrices.
    classes : ndarray, shape (n_classes,)
        The distinct labels, sorted.
    per_class, n_init : int
        Examples drawn per class and k-Means initialisations.
    """

    ari_w: np.ndarray
    ari_r: np.ndarray
    rsa_similarity: np.ndarray
    rsa_distance: np.ndarray
    classes: np.ndarray
    per_class: int
    n_init: int

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per repetition and measure: ``rep, measure, space, value``.

        ``measure`` is "ari" (space "W" or "R"), "rsa_similarity" or "rsa_distance" (space "W~R").
        """
        frames = []
        for attribute, (measure, space) in _COLUMNS.items():
            values = getattr(self, attribute)
            frames.append(pd.DataFrame({"rep": np.arange(len(values)), "measure": measure, "space": space,
                                        "value": values}))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per measure and space: ``mean``, ``std`` (ddof=1), the 2.5 and 97.5 percentiles across reps, ``n``."""
        return (self.to_frame().groupby(["measure", "space"], sort=False)["value"]
                .agg(mean="mean", std="std", ci_low=lambda v: np.nanpercentile(v, 2.5),
                     ci_high=lambda v: np.nanpercentile(v, 97.5), n="count")
                .reset_index())


def _pearson_of_triangles(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two condensed triangles, over entries finite in both (NaN if < 2 remain)."""
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 2 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def _upper_correlations(x: np.ndarray) -> np.ndarray:
    """Upper triangle (k=1) of the example-by-example correlation matrix; NaN for constant examples."""
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = np.corrcoef(x)
    return matrix[np.triu_indices(len(x), k=1)]


def _draw(labels: np.ndarray, classes: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes])


def _check_labels(labels: np.ndarray, n: int, per_class: int) -> np.ndarray:
    labels = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match w and r, got {labels.shape}")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes to cluster, got {len(classes)}")
    short = {c.item(): int(k) for c, k in zip(classes, counts) if k < per_class}
    if short:
        raise ValueError(f"per_class={per_class} examples are drawn per class without replacement, but some "
                         f"classes have fewer (class: count): {short}")
    return labels


def space_similarity(
    w: np.ndarray | torch.Tensor,
    r: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    repetitions: int = 100,
    per_class: int = 100,
    n_init: int = 20,
    seed: int = 0,
    progress: bool = True,
) -> SpaceSimilarity:
    """Compare W and R by clustering (ARI against the classes) and by RSA, over repeated class-balanced draws.

    Parameters
    ----------
    w : ndarray or Tensor, shape (N, w_dim)
        Latents.
    r : ndarray or Tensor, shape (N, D)
        Classifier activations of the same N images.
    labels : ndarray or Tensor, shape (N,)
        True class of each image; k-Means uses k = number of distinct labels.
    repetitions : int
        Independent draws.
    per_class : int
        Examples per class in each draw, without replacement within a draw.
    n_init : int
        k-Means initialisations (the best inertia is kept).
    seed : int
        Seeds the draws and k-Means.
    progress : bool
        Show a tqdm progress bar over repetitions.

    Returns
    -------
    SpaceSimilarity
        Per-repetition ARI in W and R and the two RSA correlations; see ``to_frame`` and ``summary``.

    Raises
    ------
    ValueError
        For mismatched or non-finite inputs, fewer than 2 classes, a class with fewer than ``per_class``
        examples (the counts are given), or non-positive ``repetitions``, ``per_class`` or ``n_init``.
    """
    r, w = validate_pairs(r, w)
    for name, value in (("repetitions", repetitions), ("per_class", per_class), ("n_init", n_init)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    labels = _check_labels(labels, len(w), per_class)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    results = {name: np.empty(repetitions) for name in _COLUMNS}
    for rep in tqdm(range(repetitions), desc="space similarity", disable=not progress):
        rows = _draw(labels, classes, per_class, rng)
        kmeans_seed = int(rng.integers(2**31 - 1))
        truth = labels[rows]
        for name, space in (("ari_w", w[rows]), ("ari_r", r[rows])):
            kmeans = KMeans(n_clusters=len(classes), n_init=n_init, random_state=kmeans_seed)
            results[name][rep] = adjusted_rand_score(truth, kmeans.fit_predict(space.astype(np.float64)))
        w_rows, r_rows = w[rows].astype(np.float64), r[rows].astype(np.float64)
        results["rsa_similarity"][rep] = _pearson_of_triangles(_upper_correlations(w_rows),
                                                               _upper_correlations(r_rows))
        results["rsa_distance"][rep] = _pearson_of_triangles(pdist(w_rows), pdist(r_rows))
    return SpaceSimilarity(**results, classes=classes, per_class=per_class, n_init=n_init)
