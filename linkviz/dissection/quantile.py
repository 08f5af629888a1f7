"""Exact per-unit quantiles of activations, streamed over batches of images.

The dissection threshold of a unit is a high quantile of all its spatial activation values over the probe set
(``N * H * W`` values). A high quantile is an order statistic near the top, so it only needs the ``k`` largest
values: each unit keeps a buffer of its top ``k`` values seen so far and merges every batch into it with
``torch.topk``. Memory is ``C * k`` values, about ``C * N * H * W * (1 - level)``, instead of all activations.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["TopQuantile", "lite_level", "unit_quantiles"]


def lite_level(quantile: float) -> float:
    """The quantile level NetDissect-Lite actually reads for a top fraction ``quantile``.

    Lite reads column ``int(1000 * (1 - quantile) - 1)`` of 1000 evenly spaced levels over [0, 1], i.e. level
    994/999 = 0.994995 for ``quantile = 0.005`` rather than 0.995.
    """
    return int(1000 * (1 - quantile) - 1) / 999


def _lerp(lower: np.ndarray, upper: np.ndarray, gamma: float) -> np.ndarray:
    """Linear interpolation the way ``np.quantile`` computes it (bit-exact in float64)."""
    diff = upper - lower
    return np.where(gamma >= 0.5, upper - diff * (1 - gamma), lower + diff * gamma)


class TopQuantile:
    """Streaming exact quantile of each unit's values.

    Gives what ``np.quantile(values_of_unit, level)`` (linear interpolation) gives on all values at once.

    Parameters
    ----------
    n_values : int
        Total number of values per unit that will be fed (``N * H * W``).
    level : float
        Quantile level in (0, 1), e.g. 0.995 for the top 0.5 %.
    device : str or torch.device
        Where the buffers live.

    Notes
    -----
    With ``M = n_values`` the level sits at position ``p = (M - 1) * level`` of the ascending order; the buffer
    keeps the ``M - floor(p)`` largest values, whose two smallest are the order statistics at ``floor(p)`` and
    ``floor(p) + 1``.
    """

    def __init__(self, n_values: int, *, level: float, device: str | torch.device = "cpu") -> None:
        if not 0.0 < level < 1.0:
            raise ValueError(f"quantile level must lie in (0, 1), got {level}")
        if n_values < 1:
            raise ValueError(f"n_values must be positive, got {n_values}")
        self.n_values = int(n_values)
        self.level = float(level)
        self.device = torch.device(device)
        self._position = (self.n_values - 1) * self.level
        self._below = math.floor(self._position)
        self.k = self.n_values - self._below
        self._buffer: Tensor | None = None
        self._seen = 0

    def update(self, values: Tensor) -> None:
        """Add a batch of values.

        Parameters
        ----------
        values : Tensor, shape [n, C, ...]
            Activations of ``n`` images; every entry after dimension 1 counts as one value of its unit.

        Raises
        ------
        ValueError
            If the values are not finite, the unit count changes, or more than ``n_values`` values arrive.
        """
        if values.ndim < 2:
            raise ValueError(f"values must have shape [n, C, ...], got {tuple(values.shape)}")
        per_unit = values.detach().to(self.device, torch.float32).transpose(0, 1).reshape(values.shape[1], -1)
        if not torch.isfinite(per_unit).all():
            raise ValueError("activations contain NaN or infinite values")
        if self._buffer is not None and self._buffer.shape[0] != per_unit.shape[0]:
            raise ValueError(f"got {per_unit.shape[0]} units, earlier batches had {self._buffer.shape[0]}")
        self._seen += per_unit.shape[1]
        if self._seen > self.n_values:
            raise ValueError(f"received {self._seen} values per unit, more than n_values={self.n_values}")
        merged = per_unit if self._buffer is None else torch.cat([self._buffer, per_unit], dim=1)
        if merged.shape[1] > self.k:
            merged = torch.topk(merged, self.k, dim=1, sorted=False).values
        self._buffer = merged

    def result(self) -> np.ndarray:
        """The quantile of each unit.

        Returns
        -------
        ndarray of float64, shape (C,)

        Raises
        ------
        RuntimeError
            If fewer than ``n_values`` values per unit were fed.
        """
        if self._buffer is None or self._seen != self.n_values:
            raise RuntimeError(f"received {self._seen} values per unit, expected n_values={self.n_values}")
        gamma = self._position - self._below
        smallest = torch.topk(self._buffer, min(2, self.k), dim=1, largest=False, sorted=True).values
        lower = smallest[:, 0].double().cpu().numpy()
        upper = smallest[:, 1].double().cpu().numpy() if self.k > 1 else lower
        return _lerp(lower, upper, gamma)


def unit_quantiles(activations: Tensor, *, level: float) -> np.ndarray:
    """Exact per-unit quantile of all values of a tensor (``np.quantile`` per unit, linear interpolation).

    Parameters
    ----------
    activations : Tensor, shape [N, C, ...]
        Values; dimension 1 indexes units.
    level : float
        Quantile level in (0, 1).

    Returns
    -------
    ndarray of float64, shape (C,)
    """
    n_values = activations.shape[0] * math.prod(activations.shape[2:])
    accumulator = TopQuantile(n_values, level=level, device=activations.device)
    accumulator.update(activations)
    return accumulator.result()
