"""Edits of the penultimate activations r, and the values a unit is tuned through.

Perturbations are small frozen objects that speak the model layer's edit vocabulary: ``as_edit(layer)`` is the
perturbation as a :class:`~linkviz.models.UnitEdit` (replace, add ``k * std``, scale), usable in any forward pass
through :func:`~linkviz.models.run_with_cache`, and ``apply(r) -> r'`` applies that edit to activations
``r [N, D]`` directly. They never modify their input.
Because the link is linear (``w = A r + b``), moving unit ``i`` from ``v0`` to ``v`` moves w by
``(v - v0) * A[:, i]`` for every image: :func:`tuned_latents` uses this to get every step of a sweep from one
linked base latent per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from linkviz.linking.link import LinearLink
from linkviz.linking.unit_stats import UnitStats
from linkviz.models.edits import UnitEdit, as_unit, as_units

__all__ = [
    "AddStd",
    "ScaleUnits",
    "SetUnits",
    "UnitStats",
    "ValueMode",
    "effect_sizes",
    "tuned_latents",
    "unit_values",
]

ValueMode = Literal["range", "std", "reference"]
_VALUE_MODES: tuple[str, ...] = ("range", "std", "reference")
_DEFAULT_STEPS = {"range": 5, "std": 5, "reference": 3}
_R = "r"  # the layer name edits applied straight to r carry (it only appears in messages)


def _units_tuple(units: int | Sequence[int]) -> tuple[int, ...]:
    """Normalise ``units`` to a non-empty tuple of distinct non-negative ints; ValueError for non-integers."""
    units = as_units(units)
    if not units:
        raise ValueError("units must name at least one unit")
    if len(set(units)) != len(units):
        raise ValueError(f"units {units} contain duplicates")
    if min(units) < 0:
        raise IndexError(f"unit indices must be non-negative; got {units}")
    return units


def _check_r(r: Tensor, units: tuple[int, ...]) -> None:
    if not isinstance(r, Tensor) or r.ndim != 2:
        shape = list(r.shape) if isinstance(r, Tensor) else type(r).__name__
        raise ValueError(f"r must be a tensor of shape [N, D]; got {shape}")
    n_units = r.shape[1]
    bad = [u for u in units if u >= n_units]
    if bad:
        raise IndexError(f"units {bad} out of range for r with D={n_units} units (valid: 0..{n_units - 1})")


def _per_unit(value: float | Sequence[float], units: tuple[int, ...], name: str) -> float | tuple[float, ...]:
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value}")
        return value
    values = tuple(float(v) for v in value)
    if len(values) != len(units):
        raise ValueError(f"{name} needs one value per unit ({len(units)}); got {len(values)}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite; got {values}")
    return values


class _UnitPerturbation:
    """What SetUnits, AddStd and ScaleUnits share: distinct ``units`` and one amount (the field ``_amount``) for
    all of them or one per unit, applied as a :class:`~linkviz.models.UnitEdit` of mode ``_mode``."""

    _amount: str
    _mode: str
    units: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _units_tuple(self.units))
        object.__setattr__(self, self._amount, _per_unit(getattr(self, self._amount), self.units, self._amount))

    def as_edit(self, layer: str) -> UnitEdit:
        """This perturbation as an edit of the output of ``layer`` (e.g. the penultimate layer)."""
        return UnitEdit(layer, self.units, self._mode, getattr(self, self._amount))

    def apply(self, r: Tensor) -> Tensor:
        """Return an edited copy of ``r [N, D]`` (differentiable); IndexError if a unit is not in ``[0, D)``."""
        _check_r(r, self.units)
        return self._edit_of(r).apply(r)

    def _edit_of(self, r: Tensor) -> UnitEdit:
        """The edit :meth:`apply` applies to ``r``."""
        return self.as_edit(_R)


@dataclass(frozen=True)
class SetUnits(_UnitPerturbation):
    """Set units to a value: ``r'[:, u] = value``; :meth:`as_edit` is a ``replace`` edit.

    Parameters
    ----------
    units : int or sequence of int
        Units to edit (ints or numpy integers; a float such as 3.7 is refused, not truncated).
    value : float or sequence of float
        One value for all units, or one per unit.
    """

    _amount = "value"
    _mode = "replace"
    units: tuple[int, ...]
    value: float | tuple[float, ...]


@dataclass(frozen=True)
class AddStd(_UnitPerturbation):
    """Shift units by ``k`` of their standard deviations over the base set: ``r'[:, u] = r[:, u] + k * std[u]``.

    Parameters
    ----------
    units : int or sequence of int
        Units to edit (ints or numpy integers; a float such as 3.7 is refused, not truncated).
    k : float or sequence of float
        Number of standard deviations, for all units or one per unit.
    stats : UnitStats
        Statistics of the base set; ``stats.n_units`` must equal r's D.
    """

    _amount = "k"
    _mode = "add"
    units: tuple[int, ...]
    k: float | tuple[float, ...]
    stats: UnitStats

    def __post_init__(self) -> None:
        super().__post_init__()
        for unit in self.units:
            self.stats.check_unit(unit)

    def as_edit(self, layer: str, *, dtype: torch.dtype = torch.float32) -> UnitEdit:
        """This perturbation as an ``add`` edit of the output of ``layer``, adding ``k * std [len(units)]``.

        Parameters
        ----------
        layer : str
            Dotted module name whose output the statistics describe (e.g. the penultimate layer).
        dtype : torch.dtype
            Precision ``k * std`` is computed in: that of the activations it is added to.
        """
        std = torch.as_tensor(self.stats.std[list(self.units)], dtype=dtype)
        return UnitEdit(layer, self.units, self._mode, torch.as_tensor(self.k, dtype=dtype) * std)

    def _edit_of(self, r: Tensor) -> UnitEdit:
        if r.shape[1] != self.stats.n_units:
            raise ValueError(f"stats describe D={self.stats.n_units} units but r has D={r.shape[1]}")
        return self.as_edit(_R, dtype=r.dtype)


@dataclass(frozen=True)
class ScaleUnits(_UnitPerturbation):
    """Multiply units by a factor: ``r'[:, u] = factor * r[:, u]`` (0 ablates them); :meth:`as_edit` is a
    ``scale`` edit.

    Parameters
    ----------
    units : int or sequence of int
        Units to edit (ints or numpy integers; a float such as 3.7 is refused, not truncated).
    factor : float or sequence of float
        One factor for all units, or one per unit.
    """

    _amount = "factor"
    _mode = "scale"
    units: tuple[int, ...]
    factor: float | tuple[float, ...]


def _range_with_current(low: float, high: float, current: np.ndarray, n_steps: int) -> np.ndarray:
    """``n_steps`` points from low to high per example, the one nearest ``current`` moved onto it. [N, S]."""
    grid = np.linspace(low, high, n_steps)
    values = np.tile(grid, (current.shape[0], 1))
    scale = max(abs(low), abs(high), 1.0)
    for row, value in zip(values, current):
        distance = np.abs(grid - value)
        coincident = np.flatnonzero(distance <= 1e-6 * scale)
        # Snap onto a coinciding point; otherwise replace the nearest interior point, keeping min and max.
        slot = coincident[0] if coincident.size else 1 + int(np.argmin(distance[1:-1]))
        row[slot] = value
        row.sort()
    return values


def unit_values(
    stats: UnitStats,
    unit: int,
    *,
    current: float | np.ndarray | Tensor | None = None,
    n_steps: int | None = None,
    mode: ValueMode = "range",
    k_max: float = 2.0,
) -> np.ndarray:
    """The values a unit is tuned through.

    Parameters
    ----------
    stats : UnitStats
        Statistics of the base set.
    unit : int
        The unit, in ``[0, D)``.
    current : float or array of shape [N], optional
        The unperturbed value(s) of the unit, one per example; required for modes ``"range"`` and ``"std"``.
    n_steps : int, optional
        Number of values; default 5, or 3 for ``mode="reference"``.
    mode : {"range", "std", "reference"}
        ``"range"``: ``n_steps`` evenly spaced values from the unit's min to its max, with the grid point nearest
        the unperturbed value moved onto it (an interior point, unless the value coincides with a grid point), so
        the unperturbed value is always one of the steps and values stay sorted and distinct (if min < max);
        needs ``n_steps >= 3``.
        ``"std"``: ``current + k * std`` for ``k`` in ``linspace(-k_max, k_max, n_steps)``; the unperturbed value
        is a step when ``n_steps`` is odd.
        ``"reference"``: ``linspace(min, max, n_steps)``, the Linking in Style reference's setting (3 steps); the
        unperturbed value is generally not a step.
    k_max : float
        Largest number of standard deviations in mode ``"std"``.

    Returns
    -------
    ndarray of float32, shape [S] or [N, S]
        Sorted values; [N, S] when ``current`` is an array, [S] when it is a scalar or None.

    Raises
    ------
    IndexError
        If ``unit`` is out of range.
    ValueError
        For a non-integer ``unit``, an unknown mode, too few steps, a missing or non-finite ``current``.
    """
    if mode not in _VALUE_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {_VALUE_MODES}")
    unit = stats.check_unit(as_unit(unit))
    n_steps = _DEFAULT_STEPS[mode] if n_steps is None else int(n_steps)
    minimum_steps = 3 if mode == "range" else 1
    if n_steps < minimum_steps:
        raise ValueError(f"mode {mode!r} needs n_steps >= {minimum_steps}; got {n_steps}")
    scalar = current is None or np.ndim(current) == 0
    if current is None:
        if mode != "reference":
            raise ValueError(f"mode {mode!r} needs the unperturbed value(s): pass current=r[:, unit]")
        current_array = np.zeros(1)
    else:
        current_array = current.detach().cpu().numpy() if isinstance(current, Tensor) else np.asarray(current)
        current_array = current_array.astype(np.float64).reshape(-1)
        n_bad = int((~np.isfinite(current_array)).sum())
        if n_bad:
            raise ValueError(f"current holds {n_bad} NaN or infinite values")
    low, high = float(stats.min[unit]), float(stats.max[unit])
    if mode == "range":
        values = _range_with_current(low, high, current_array, n_steps)
    elif mode == "std":
        ks = np.linspace(-k_max, k_max, n_steps)
        values = current_array[:, None] + ks[None, :] * float(stats.std[unit])
    else:
        values = np.tile(np.linspace(low, high, n_steps), (current_array.shape[0], 1))
    values = values.astype(np.float32)
    return values[0] if scalar else values


def tuned_latents(link: LinearLink, r_base: Tensor, unit: int, values: np.ndarray | Tensor) -> Tensor:
    """Linked latents of ``r_base`` with ``unit`` set to each of ``values``, by linearity.

    Computes ``link.affine(r_base)[:, None] + (values - r_base[:, unit]) * A[:, unit]`` (then ``link.project``): one linked latent per
    example and one outer product, instead of linking every perturbed r. Equal (up to rounding) to
    ``link.to_w(SetUnits(unit, v).apply(r_base))`` for each ``v``.

    Parameters
    ----------
    link : LinearLink
        The link ``w = A r + b``.
    r_base : Tensor, shape [N, D]
        Unperturbed activations.
    unit : int
        The unit to set, in ``[0, D)``.
    values : array or Tensor, shape [S] or [N, S]
        Values shared by all examples, or per example.

    Returns
    -------
    Tensor, shape [N, S, w_dim]
        On ``r_base``'s device and dtype; differentiable with respect to ``r_base``.
    """
    units = _units_tuple(unit)
    _check_r(r_base, units)
    if r_base.shape[1] != link.r_dim:
        raise ValueError(f"r_base has D={r_base.shape[1]} units but the link expects {link.r_dim}")
    values = torch.as_tensor(values, device=r_base.device, dtype=r_base.dtype)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[0] not in (1, r_base.shape[0]):
        raise ValueError(f"values must have shape [S] or [N={r_base.shape[0]}, S]; got {list(values.shape)}")
    direction = torch.as_tensor(link.direction(units[0]), device=r_base.device, dtype=r_base.dtype)
    delta = values - r_base[:, units[0], None]
    return link.project(link.affine(r_base)[:, None, :] + delta[:, :, None] * direction)


def effect_sizes(link: LinearLink, stats: UnitStats) -> np.ndarray:
    """How far each unit moves w over its observed range: ``(max_i - min_i) * ||A[:, i]||``.

    Parameters
    ----------
    link : LinearLink
        The link ``w = A r + b``.
    stats : UnitStats
        Statistics of the base set, with ``stats.n_units == link.r_dim``.

    Returns
    -------
    ndarray of float32, shape (D,)
    """
    if stats.n_units != link.r_dim:
        raise ValueError(f"stats describe D={stats.n_units} units but the link expects {link.r_dim}")
    return ((stats.max - stats.min) * np.linalg.norm(link.weight, axis=0)).astype(np.float32)
