"""Per-unit statistics of penultimate activations r over a base set (the ranges of tuning sliders)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from linkviz.models.edits import as_unit

__all__ = ["UnitStats"]


@dataclass(frozen=True, eq=False)
class UnitStats:
    """Per-unit statistics of r over a base set.

    Attributes
    ----------
    min, max, mean, std : ndarray of float32, shape (D,)
        Observed minimum, maximum, mean and (population) standard deviation of each unit.
    n_samples : int
        Number of base examples the statistics were computed on.
    """

    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n_samples: int

    def __post_init__(self) -> None:
        arrays = [np.asarray(getattr(self, name), dtype=np.float32) for name in ("min", "max", "mean", "std")]
        if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
            raise ValueError(f"min, max, mean and std must share one shape (D,); got {[a.shape for a in arrays]}")
        for name, array in zip(("min", "max", "mean", "std"), arrays):
            object.__setattr__(self, name, array)

    @property
    def n_units(self) -> int:
        """D, the number of units."""
        return self.min.shape[0]

    @classmethod
    def from_activations(cls, r: Tensor | np.ndarray) -> UnitStats:
        """Statistics of activations ``r``.

        Parameters
        ----------
        r : Tensor or ndarray, shape [N, D]
            Penultimate activations of the base set, N >= 1.

        Returns
        -------
        UnitStats

        Raises
        ------
        ValueError
            If ``r`` is not 2-d and non-empty, or holds NaN or infinite values (the message gives their count).
        """
        r = r.detach().cpu().numpy() if isinstance(r, Tensor) else np.asarray(r)
        if r.ndim != 2 or r.shape[0] == 0 or r.shape[1] == 0:
            raise ValueError(f"r must have shape [N >= 1, D >= 1]; got {list(r.shape)}")
        r = r.astype(np.float64)
        n_bad = int((~np.isfinite(r)).sum())
        if n_bad:
            raise ValueError(f"r holds {n_bad} NaN or infinite values out of {r.size}; clean the activations first")
        return cls(min=r.min(axis=0), max=r.max(axis=0), mean=r.mean(axis=0), std=r.std(axis=0),
                   n_samples=r.shape[0])

    def check_unit(self, unit: int) -> int:
        """Return ``unit`` as int; ValueError if it is not an integer, IndexError if it is not in ``[0, D)``."""
        unit = as_unit(unit)
        if not 0 <= unit < self.n_units:
            raise IndexError(f"unit {unit} out of range for r with D={self.n_units} units "
                             f"(valid: 0..{self.n_units - 1})")
        return unit
