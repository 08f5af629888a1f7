"""Has a point of a counterfactual path left the generator's realistic range? A Mahalanobis score of its latent.

A shift of r can take the linked latent ``w = A r' + b`` far from any latent the generator's mapping network
produces; the generator then paints something it was never trained to paint (a blob), and the classifier's verdict
on it says little about the original. :func:`fit_latent_realism` fits a Gaussian to latents the generator did
produce (the base pairs' ``w``, with Ledoit-Wolf shrinkage of the covariance) and takes as threshold a high
quantile of the Mahalanobis distances of *held-out* samples (each scored by the Gaussian fitted on the other
folds), so about ``1 - quantile`` of new, realistic latents lie beyond it. A path point whose latent lies beyond
the threshold is flagged as off the generator's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.covariance import ledoit_wolf
from torch import Tensor

__all__ = ["LatentRealism", "fit_latent_realism"]


@dataclass(frozen=True, eq=False)
class LatentRealism:
    """A Gaussian model of the generator's latents and the distance beyond which a latent counts as unrealistic.

    Attributes
    ----------
    mean : ndarray of float64, shape (w_dim,)
    precision : ndarray of float64, shape (w_dim, w_dim)
        Inverse of the (shrunk) covariance.
    threshold : float
        Mahalanobis distance at the ``quantile`` of the held-out reference distances.
    quantile : float
    reference : ndarray of float64, shape (M,)
        Held-out Mahalanobis distances of the fitting latents (what "realistic" looks like).
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    quantile: float
    reference: np.ndarray

    @property
    def w_dim(self) -> int:
        return self.mean.shape[0]

    def distance(self, w: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of latents from the generator's latent distribution.

        Parameters
        ----------
        w : ndarray, shape (..., w_dim)

        Returns
        -------
        ndarray of float64, shape (...)
        """
        w = np.asarray(w, dtype=np.float64)
        if w.shape[-1:] != (self.w_dim,):
            raise ValueError(f"w must have shape (..., {self.w_dim}); got {w.shape}")
        centred = w - self.mean
        return np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", centred, self.precision, centred), 0.0))

    def distance_tensor(self, w: Tensor) -> Tensor:
        """:meth:`distance` in torch, differentiable in ``w [..., w_dim]``; shape [...], on w's device and dtype."""
        if w.shape[-1:] != (self.w_dim,):
            raise ValueError(f"w must have shape (..., {self.w_dim}); got {list(w.shape)}")
        mean = torch.as_tensor(self.mean, dtype=w.dtype, device=w.device)
        precision = torch.as_tensor(self.precision, dtype=w.dtype, device=w.device)
        centred = w - mean
        # clamped away from 0, where the square root's gradient is infinite
        return ((centred @ precision) * centred).sum(dim=-1).clamp_min(1e-12).sqrt()

    def pull_inside(self, w: Tensor, *, radius: float) -> Tensor:
        """Latents beyond ``radius`` (a Mahalanobis distance) moved onto it, toward the mean; those inside kept.

        The nearest point of the ellipsoid in the whitened space (a radial scaling about the mean).

        Parameters
        ----------
        w : Tensor, shape [..., w_dim]
        radius : float
            Positive.

        Returns
        -------
        Tensor, shape [..., w_dim]
        """
        if not radius > 0:
            raise ValueError(f"radius must be positive; got {radius}")
        mean = torch.as_tensor(self.mean, dtype=w.dtype, device=w.device)
        scale = (radius / self.distance_tensor(w)).clamp(max=1.0)
        return mean + (w - mean) * scale[..., None]

    def is_off(self, w: np.ndarray) -> np.ndarray:
        """Whether latents lie beyond :attr:`threshold`, bool of shape (...) for ``w`` of shape (..., w_dim)."""
        return self.distance(w) > self.threshold

    def percentile(self, w: np.ndarray) -> np.ndarray:
        """Percentage of the reference distances below each latent's distance, float of shape (...)."""
        distance = self.distance(w)
        return 100.0 * np.searchsorted(np.sort(self.reference), distance, side="left") / len(self.reference)


def _fit(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (w_dim,) and precision (w_dim, w_dim) of ``w`` (M, w_dim), the covariance shrunk by Ledoit-Wolf."""
    mean = w.mean(axis=0)
    covariance, _ = ledoit_wolf(w - mean, assume_centered=True)
    return mean, np.linalg.inv(covariance)


def fit_latent_realism(w: np.ndarray, *, quantile: float = 0.99, folds: int = 5, seed: int = 0) -> LatentRealism:
    """Fit the generator's latent distribution and the realism threshold to latents it produced.

    Parameters
    ----------
    w : ndarray, shape (M, w_dim)
        Latents from the generator's mapping network, e.g. ``linked.pairs.w``; at least ``folds`` of them and 3.
    quantile : float
        Held-out distances below the threshold, in ``(0, 1)``.
    folds : int
        Cross-fitting folds for the held-out distances (at least 2).
    seed : int
        Seed of the fold assignment.

    Returns
    -------
    LatentRealism
        The Gaussian fitted on all of ``w``, with the threshold from the held-out distances.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < max(folds, 3) or not np.isfinite(w).all():
        raise ValueError(f"w must be a finite (M, w_dim) array with M >= max(folds, 3); got shape {w.shape}")
    if not 0.0 < quantile < 1.0 or folds < 2:
        raise ValueError(f"quantile must lie in (0, 1) and folds be at least 2; got {quantile}, {folds}")
    fold = np.random.default_rng(seed).permutation(w.shape[0]) % folds
    reference = np.empty(w.shape[0])
    for k in range(folds):
        mean, precision = _fit(w[fold != k])
        centred = w[fold == k] - mean
        reference[fold == k] = np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", centred, precision, centred), 0.0))
    mean, precision = _fit(w)
    return LatentRealism(mean=mean, precision=precision, threshold=float(np.quantile(reference, quantile)),
                         quantile=float(quantile), reference=reference)
