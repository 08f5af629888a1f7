"""The probe images on which each unit fires most: ranked by the unit's spatial maximum, ties to the lower index.

:func:`top_image_indices` ranks a finished ``(N, C)`` table of per-image maxima; :class:`TopImages` keeps the same
ranking while images stream past in order, together with each unit's activation maps on its top images, so that
a dissection report needs no second pass over the probe.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["TopImages", "top_image_indices"]


def top_image_indices(image_max: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` images with the highest spatial maximum for every unit.

    Parameters
    ----------
    image_max : ndarray of float, shape (N, C)
        Spatial maximum of each unit on each image.
    k : int
        Images per unit (at most ``N`` are returned).

    Returns
    -------
    ndarray of int64, shape (C, min(k, N))
        Image indices per unit, highest maximum first; equal maxima keep image order (the lower index first).
        NaN maxima rank last.

    Notes
    -----
    Linear in ``N * C``: each unit's ``k``-th largest value is found with a partition, and only the images at or
    above it (``k`` plus ties) are sorted.
    """
    image_max = np.asarray(image_max)
    if image_max.ndim != 2:
        raise ValueError(f"image_max must have shape (N, C), got {image_max.shape}")
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    n, n_units = image_max.shape
    k = min(k, n)
    values = np.where(np.isnan(image_max), -np.inf, image_max).T  # (C, N)
    kth = np.partition(values, n - k, axis=1)[:, n - k]  # k-th largest value per unit
    unit, image = np.nonzero(values >= kth[:, None])  # k per unit, plus ties at the k-th value
    order = np.lexsort((image, -values[unit, image], unit))
    unit, image = unit[order], image[order]
    first = np.searchsorted(unit, np.arange(n_units))
    rank = np.arange(len(unit)) - first[unit]
    keep = rank < k
    top = np.empty((n_units, k), np.int64)
    top[unit[keep], rank[keep]] = image[keep]
    return top


class TopImages:
    """Streaming top-``k`` images per unit, with the unit's activation maps on them.

    Feed batches in image order; the result equals :func:`top_image_indices` on all the batches' maxima.

    Parameters
    ----------
    k : int
        Images kept per unit.

    Attributes
    ----------
    n_images : int
        Images seen so far.
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        self.k = int(k)
        self.n_images = 0
        self._values: Tensor | None = None  # [kept, C]
        self._indices: Tensor | None = None  # [kept, C]
        self._maps: Tensor | None = None  # [kept, C, h, w]

    def update(self, activations: Tensor) -> None:
        """Merge the next images.

        Parameters
        ----------
        activations : Tensor, shape [n, C, h, w]
            The layer's maps on the next ``n`` images of the probe.
        """
        if activations.ndim != 4:
            raise ValueError(f"activations must have shape [n, C, h, w], got {tuple(activations.shape)}")
        activations = activations.detach().float()
        n = activations.shape[0]
        values = activations.flatten(2).amax(2).nan_to_num(nan=-torch.inf)  # [n, C]
        indices = torch.arange(self.n_images, self.n_images + n, device=activations.device)[:, None]
        indices = indices.expand_as(values)
        maps = activations
        if self._values is not None:  # kept images come first: all have lower indices than the new ones
            values = torch.cat([self._values, values])
            indices = torch.cat([self._indices, indices])
            maps = torch.cat([self._maps, maps])
        order = torch.sort(values, dim=0, descending=True, stable=True).indices[:self.k]  # [kept, C]
        self._values = values.gather(0, order)
        self._indices = indices.gather(0, order)
        gather = order[:, :, None, None].expand(-1, -1, *maps.shape[2:])
        self._maps = maps.gather(0, gather)
        self.n_images += n

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The top images so far.

        Returns
        -------
        indices : ndarray of int64, shape (C, kept)
            Image indices per unit, highest maximum first (``kept = min(k, n_images)``).
        maps : ndarray of float32, shape (C, kept, h, w)
            The unit's activation map on each of those images.
        """
        if self._values is None:
            raise ValueError("no images have been added")
        return self._indices.T.cpu().numpy().copy(), self._maps.transpose(0, 1).cpu().numpy().copy()
