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

__all__ = ["TopQuantile", "all_finite", "lite_level", "merge_top_values", "top_candidates", "unit_quantiles"]


def lite_level(quantile: float) -> float:
    """The quantile level NetDissect-Lite actually reads for a top fraction ``quantile``.

    Lite reads column ``int(1000 * (1 - quantile) - 1)`` of 1000 evenly spaced levels over [0, 1], i.e. level
    994/999 = 0.994995 for ``quantile = 0.005`` rather than 0.995.
    """
    return int(1000 * (1 - quantile) - 1) / 999


def all_finite(values: Tensor) -> bool:
    """Whether every entry is finite (one min-max pass: NaN and infinities reach the minimum or maximum)."""
    if not values.numel():
        return True
    low, high = torch.aminmax(values)
    return bool(torch.isfinite(low) & torch.isfinite(high))


def top_candidates(values: Tensor, bound: Tensor | None) -> Tensor:
    """Each unit's values that may enter a top-k whose ``k``-th largest value so far is ``bound``.

    Parameters
    ----------
    values : Tensor of float32, shape [n, C, m]
        ``m`` values per unit on each of ``n`` images.
    bound : Tensor of float32, shape [C], or None
        A value at or below the ``k``-th largest value of each unit so far; None keeps every value.

    Returns
    -------
    Tensor of float32, shape [C, width]
        Each unit's values strictly above its bound (a value equal to the bound cannot change the multiset of
        the ``k`` largest), padded with ``-inf``; all ``n * m`` values per unit when ``bound`` is None. Found
        with one comparison and ``nonzero`` instead of a ``topk`` over every value.
    """
    n_units = values.shape[1]
    if bound is None:
        return values.transpose(0, 1).reshape(n_units, -1)
    image, unit = torch.nonzero(values.amax(2) > bound[None, :], as_tuple=True)  # (image, unit) maps above it
    if not unit.numel():
        return values.new_empty((n_units, 0))
    maps = values[image, unit]  # [pairs, m]
    pair, position = torch.nonzero(maps > bound[unit, None], as_tuple=True)
    order = torch.argsort(unit[pair], stable=True)
    pair, position = pair[order], position[order]
    unit, selected = unit[pair], maps[pair, position]
    counts = torch.bincount(unit, minlength=n_units)
    column = torch.arange(len(unit), device=values.device) - (torch.cumsum(counts, 0) - counts)[unit]
    candidates = values.new_full((n_units, int(counts.max())), -torch.inf)
    candidates[unit, column] = selected
    return candidates


def merge_top_values(buffer: Tensor | None, values: Tensor, k: int, bound: Tensor | None = None, *,
                     seen: int = 0) -> Tensor:
    """The ``k`` largest values of each unit in ``buffer`` and ``values`` together (fewer if there are fewer).

    Once the buffer holds ``k`` values its smallest is a bound below which no new value can enter, so only the
    few values above it are gathered (:func:`top_candidates`); before that, just enough images to fill the
    buffer go through ``torch.topk``. Images are taken in steps that double the images seen, so the bound
    tightens as it goes and each step gathers about ``k`` values per unit instead of a fixed fraction of all.

    Parameters
    ----------
    buffer : Tensor of float32, shape [C, b], or None
        The top values so far (``-inf`` pads allowed).
    values : Tensor of float32, shape [n, C, m]
    k : int
    bound : Tensor of float32, shape [C], optional
        A known lower bound of the final ``k``-th largest values (e.g. from other chunks); values below it are
        dropped.
    seen : int
        Images already merged into ``buffer`` (sets the step sizes only; the result does not depend on it).

    Returns
    -------
    Tensor of float32, shape [C, <= k]
    """
    per_image = max(1, values.shape[2])
    while values.shape[0]:
        full = buffer is not None and buffer.shape[1] == k
        limit = buffer.amin(1) if full else None
        if bound is not None:
            limit = bound if limit is None else torch.maximum(limit, bound)
        width = 0 if buffer is None else buffer.shape[1]
        take = max(1, seen) if full or bound is not None else max(1, math.ceil((k - width) / per_image))
        candidates = top_candidates(values[:take], limit)
        values, seen = values[take:], seen + take
        buffer = candidates if buffer is None else torch.cat([buffer, candidates], dim=1)
        if buffer.shape[1] > k:
            buffer = torch.topk(buffer, k, dim=1, sorted=False).values
    return values.new_empty((values.shape[1], 0)) if buffer is None else buffer


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
        values = values.detach().to(self.device, torch.float32).reshape(values.shape[0], values.shape[1], -1)
        if not all_finite(values):
            raise ValueError("activations contain NaN or infinite values")
        if self._buffer is not None and self._buffer.shape[0] != values.shape[1]:
            raise ValueError(f"got {values.shape[1]} units, earlier batches had {self._buffer.shape[0]}")
        self._seen += values.shape[0] * values.shape[2]
        if self._seen > self.n_values:
            raise ValueError(f"received {self._seen} values per unit, more than n_values={self.n_values}")
        earlier_images = (self._seen - values.shape[0] * values.shape[2]) // max(1, values.shape[2])
        self._buffer = merge_top_values(self._buffer, values, self.k, seen=earlier_images)

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
