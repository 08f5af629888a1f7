"""Unsupervised parts: k-means clustering of per-pixel generator features.

For a world without part ground truth (e.g. faces), the generator's own features already group pixels into
recurring regions (hair, skin, background, ...). Clustering the per-pixel feature vectors of a few hundred
generated images with k-means gives ``n_parts`` anonymous part labels that can be predicted for any new image
from its features. Typical use::

    features = generator_features(generator, ws, layers=[...], resolution=32)   # [N, C, R, R]
    parts = cluster_parts(features, n_parts=5, seed=0)
    masks = parts.predict(generator_features(generator, other_ws, layers=[...], resolution=32))  # [M, R, R]

The cluster ids carry no names; paint real part names with :class:`linkviz.widgets.LabelPainter` and train the
few-shot segmenter (:func:`~linkviz.segmentation.train_few_shot`) when names matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from torch import Tensor

__all__ = ["FeatureClusters", "cluster_parts"]


def _pixels(features: Tensor | np.ndarray, *, name: str = "features") -> tuple[np.ndarray, tuple[int, int, int]]:
    """Features [N, C, H, W] as float64 rows [N * H * W, C], and (N, H, W)."""
    array = features.detach().cpu().numpy() if isinstance(features, Tensor) else np.asarray(features)
    if array.ndim != 4 or min(array.shape) < 1:
        raise ValueError(f"{name} must have shape [N, C, H, W] with no empty dimension; got {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} hold NaN or infinite values")
    n, c, h, w = array.shape
    return np.moveaxis(array, 1, -1).reshape(-1, c).astype(np.float64), (n, h, w)


@dataclass(frozen=True)
class FeatureClusters:
    """A k-means clustering of standardised per-pixel features; :meth:`predict` labels new feature maps.

    Attributes
    ----------
    kmeans : sklearn.cluster.KMeans
        Fitted on standardised pixel features.
    mean, std : ndarray of float, shape (C,)
        Per-channel standardisation of the fitting features.
    n_parts : int
        Number of clusters (label ids ``0..n_parts-1``, ordered by decreasing pixel share in the fitting data).
    order : ndarray of int, shape (n_parts,)
        Part id of each k-means cluster.
    """

    kmeans: KMeans
    mean: np.ndarray
    std: np.ndarray
    n_parts: int
    order: np.ndarray

    @property
    def n_channels(self) -> int:
        return len(self.mean)

    def predict(self, features: Tensor | np.ndarray) -> np.ndarray:
        """Part label maps of features ``[N, C, H, W]`` (same C as the fit), int64 of shape ``[N, H, W]``."""
        rows, (n, h, w) = _pixels(features)
        if rows.shape[1] != self.n_channels:
            raise ValueError(f"features have {rows.shape[1]} channels; the clusters were fitted on {self.n_channels}")
        labels = self.kmeans.predict((rows - self.mean) / self.std)
        return self.order[labels].reshape(n, h, w).astype(np.int64)

    __call__ = predict


def cluster_parts(features: Tensor | np.ndarray, n_parts: int, seed: int, *, max_pixels: int = 50_000,
                  n_init: int = 4) -> FeatureClusters:
    """Cluster per-pixel feature vectors into ``n_parts`` anonymous parts with k-means.

    Parameters
    ----------
    features : Tensor or ndarray, shape [N, C, H, W]
        Per-pixel features, e.g. :func:`~linkviz.segmentation.generator_features` of a few hundred samples.
    n_parts : int
        Number of parts (clusters), at least 2.
    seed : int
        Seeds the pixel subsample and k-means; equal seeds give equal clusters.
    max_pixels : int
        At most this many pixels, drawn at random without replacement, are used for the fit.
    n_init : int
        k-means restarts.

    Returns
    -------
    FeatureClusters
        Part ids are sorted by decreasing share of the fitting pixels (0 is the most common part).

    Raises
    ------
    ValueError
        For features not of shape [N, C, H, W], with NaN, fewer pixels than parts, or bad settings.
    """
    if int(n_parts) != n_parts or n_parts < 2:
        raise ValueError(f"n_parts must be an integer of at least 2; got {n_parts}")
    if max_pixels < n_parts or n_init < 1:
        raise ValueError(f"need max_pixels >= n_parts and n_init >= 1; got {max_pixels} and {n_init}")
    rows, _ = _pixels(features)
    if len(rows) < n_parts:
        raise ValueError(f"{len(rows)} pixels cannot make {n_parts} parts")
    rng = np.random.default_rng(seed)
    if len(rows) > max_pixels:
        rows = rows[rng.choice(len(rows), size=max_pixels, replace=False)]
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    kmeans = KMeans(n_clusters=int(n_parts), n_init=n_init, random_state=seed).fit((rows - mean) / std)
    counts = np.bincount(kmeans.labels_, minlength=int(n_parts))
    order = np.empty(int(n_parts), np.int64)
    order[np.argsort(-counts, kind="stable")] = np.arange(int(n_parts))
    return FeatureClusters(kmeans=kmeans, mean=mean, std=std, n_parts=int(n_parts), order=order)

