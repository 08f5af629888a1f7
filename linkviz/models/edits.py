"""Edits of a layer's output, the one edit vocabulary of linkviz.

:class:`UnitEdit` sets, shifts or scales some channels; :class:`FunctionEdit` applies any function to them.
:func:`linkviz.models.hooks` and :func:`linkviz.models.run_with_cache` apply them during a forward pass; on their
own, their ``apply`` works on any ``[N, C, ...]`` tensor, e.g. penultimate activations ``r [N, D]``
(the tuning perturbations of :mod:`linkviz.tuning` are made of them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import torch
from torch import Tensor

__all__ = ["Edit", "EditMode", "FunctionEdit", "UnitEdit", "as_unit", "as_units"]

EditMode = Literal["replace", "add", "scale"]
_EDIT_MODES: tuple[str, ...] = ("replace", "add", "scale")


def as_unit(unit: int) -> int:
    """Return a unit number as a Python int.

    Parameters
    ----------
    unit : int or numpy integer
        A channel index. Floats (also integral ones such as ``3.0``), bools, strings and tensors are refused
        rather than truncated, so ``12.7`` never silently means unit 12.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``unit`` is not an integer.
    """
    if isinstance(unit, (bool, np.bool_)) or not isinstance(unit, (int, np.integer)):
        # a ValueError, as for any other bad unit number: 12.7 is the wrong value, not a wrong kind of argument
        raise ValueError(f"unit numbers must be integers (int or numpy integer); got {unit!r} "  # noqa: TRY004
                         f"({type(unit).__name__})")
    return int(unit)


def as_units(units: int | Iterable[int]) -> tuple[int, ...]:
    """Return unit numbers as a tuple of Python ints; a bare integer is one unit.

    Parameters
    ----------
    units : int or iterable of int
        Channel indices (int or numpy integer each).

    Returns
    -------
    tuple of int, length k
        In the given order; duplicates, range and emptiness are left to the caller.

    Raises
    ------
    ValueError
        If any unit is not an integer (see :func:`as_unit`).
    """
    if isinstance(units, Iterable) and not isinstance(units, (str, bytes, Tensor)):
        return tuple(as_unit(unit) for unit in units)
    return (as_unit(units),)


def _check_units(units: int | Iterable[int] | None, layer: str) -> tuple[int, ...] | None:
    """``units`` as distinct ints (None stays None); ValueError for non-integers or duplicates."""
    if units is None:
        return None
    units = as_units(units)
    if len(set(units)) != len(units):
        raise ValueError(f"units {units} for layer {layer!r} contain duplicates")
    return units


def _edit_units(output: Tensor, units: tuple[int, ...] | None, layer: str,
                edit: Callable[[Tensor], Tensor]) -> Tensor:
    """Copy of ``output [N, C, ...]`` whose channels ``units`` (all if None) are ``edit(output[:, units])``."""
    if output.ndim < 2:
        raise ValueError(f"cannot edit units of layer {layer!r}: output shape {tuple(output.shape)} "
                         "has no channel dimension 1")
    n_channels = output.shape[1]
    units = tuple(range(n_channels)) if units is None else units
    bad = [u for u in units if not 0 <= u < n_channels]
    if bad:
        raise IndexError(f"units {bad} out of range for layer {layer!r}, which has {n_channels} "
                         f"channels (valid units are 0..{n_channels - 1})")
    index = torch.as_tensor(units, dtype=torch.long, device=output.device)
    edited = edit(output.index_select(1, index))
    return output.index_copy(1, index, edited.to(output.dtype))


def _check_finite_value(value: float | Sequence[float] | Tensor, layer: str) -> None:
    """TypeError for a value that is not numbers; ValueError, with the count, for NaN or inf in it."""
    if isinstance(value, Tensor):
        values = value.detach()
    else:
        try:
            values = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"edit value for layer {layer!r} must be a number, a sequence of numbers or a tensor; "
                            f"got {value!r}") from None
    if values.is_floating_point() or values.is_complex():
        n_bad = int((~torch.isfinite(values)).sum())
        if n_bad:
            raise ValueError(f"edit value for layer {layer!r} has {n_bad} non-finite entries (NaN or inf) out of "
                             f"{values.numel()}: {value!r}; an edit must set, add or scale by finite numbers")


@dataclass(frozen=True)
class UnitEdit:
    """An edit of some channels of one layer's output.

    The edit acts on dimension 1 of the output, so it works for convolutional ``[N, C, H, W]`` and dense
    ``[N, C]`` outputs alike.

    Parameters
    ----------
    layer : str
        Dotted module name whose output is edited.
    units : int, tuple of int or None
        Channel indices to edit (a bare int is one unit; numpy integers are accepted, floats refused);
        ``None`` edits every channel.
    mode : {"replace", "add", "scale"}
        ``replace`` sets the units to ``value``, ``add`` adds ``value``, ``scale`` multiplies by ``value``.
    value : float, sequence of float or Tensor
        A scalar, or values broadcastable to ``[N, len(units)]``: ``[k]`` (one per unit) or ``[N, k]``
        (per example and unit); constant over the spatial dimensions.

    Raises
    ------
    ValueError
        For an unknown mode, a non-integer unit, duplicate units, or NaN or inf in ``value``.
    TypeError
        For a ``value`` that is not numbers.
    """

    layer: str
    units: tuple[int, ...] | None
    mode: EditMode
    value: float | Sequence[float] | Tensor

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _check_units(self.units, self.layer))
        _check_mode(self.mode)
        _check_finite_value(self.value, self.layer)

    def apply(self, output: Tensor) -> Tensor:
        """Return an edited copy of a layer output.

        Parameters
        ----------
        output : Tensor, shape [N, C, ...]
            The layer's output.

        Returns
        -------
        Tensor, shape [N, C, ...]
            The output with the selected units edited; ``output`` itself is not modified.

        Raises
        ------
        IndexError
            If a unit is outside ``[0, C)``.
        ValueError
            If the mode is unknown or ``value`` does not broadcast to ``[N, len(units)]``.
        """
        _check_mode(self.mode)

        def edit(selected: Tensor) -> Tensor:
            value = self._value_like(output, n_units=selected.shape[1])
            if self.mode == "replace":
                return value.expand_as(selected)
            if self.mode == "add":
                return selected + value
            return selected * value

        return _edit_units(output, self.units, self.layer, edit)

    def _value_like(self, output: Tensor, *, n_units: int) -> Tensor:
        """Return ``value`` as a tensor of shape [1 or N, 1 or k, 1, ...] matching ``output``'s dims."""
        value = torch.as_tensor(self.value, dtype=output.dtype, device=output.device)
        target = (output.shape[0], n_units)
        try:
            if value.ndim > 2 or torch.broadcast_shapes(value.shape, target) != target:
                raise RuntimeError
        except RuntimeError:
            raise ValueError(f"edit value for layer {self.layer!r} has shape {tuple(value.shape)}, which does not "
                             f"broadcast to [N, len(units)] = {list(target)}") from None
        value = value.reshape((1,) * (2 - value.ndim) + tuple(value.shape))  # [k] is one value per unit
        return value.reshape(tuple(value.shape) + (1,) * (output.ndim - 2))


@dataclass(frozen=True)
class FunctionEdit:
    """An edit of one layer's output by a function, in the spirit of TransformerLens hook functions.

    Parameters
    ----------
    layer : str
        Dotted module name whose output is edited.
    fn : callable
        ``fn(selected) -> edited``. With ``units=None`` it gets the whole output ``[N, C, ...]``; otherwise the
        selected channels ``[N, k, ...]`` (in the order of ``units``), and the result is written back into them.
        It must return a tensor of the shape it was given and must not modify its argument in place.
    units : int, tuple of int or None
        Channel indices passed to ``fn`` (a bare int is one unit); ``None`` passes the whole output.

    Raises
    ------
    TypeError
        For a non-callable ``fn``.
    ValueError
        For a non-integer unit or duplicate units.
    """

    layer: str
    fn: Callable[[Tensor], Tensor]
    units: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"fn of the edit of layer {self.layer!r} must be callable; got {self.fn!r}")
        object.__setattr__(self, "units", _check_units(self.units, self.layer))

    def apply(self, output: Tensor) -> Tensor:
        """Return ``output`` with ``fn`` applied to the selected units.

        Parameters
        ----------
        output : Tensor, shape [N, C, ...]
            The layer's output.

        Returns
        -------
        Tensor, shape [N, C, ...]
            ``fn(output)`` for ``units=None``; otherwise a copy of ``output`` whose channels ``units`` are
            ``fn(output[:, units])``. In ``output``'s dtype.

        Raises
        ------
        IndexError
            If a unit is outside ``[0, C)``.
        ValueError
            If ``fn`` does not return a tensor of the shape it was given.
        """
        if self.units is None:
            return self._call(output).to(output.dtype)
        return _edit_units(output, self.units, self.layer, self._call)

    def _call(self, selected: Tensor) -> Tensor:
        edited = self.fn(selected)
        if not isinstance(edited, Tensor) or edited.shape != selected.shape:
            shape = list(edited.shape) if isinstance(edited, Tensor) else type(edited).__name__
            raise ValueError(f"the function editing layer {self.layer!r} must return a tensor of the shape it was "
                             f"given, {list(selected.shape)}; got {shape}")
        return edited


#: What :func:`hooks` and :func:`run_with_cache` accept as an edit.
Edit: TypeAlias = UnitEdit | FunctionEdit


def _check_mode(mode: str) -> None:
    if mode not in _EDIT_MODES:
        raise ValueError(f"unknown edit mode {mode!r}; expected one of {_EDIT_MODES}")
