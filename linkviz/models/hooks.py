"""Feature extraction and unit edits through forward hooks.

Layers are addressed by the dotted names of ``model.named_modules()``. The user's model is never subclassed or
modified: hooks are registered for the duration of a ``with`` block and removed in ``finally``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

__all__ = [
    "ActivationCache",
    "LayerNotFoundError",
    "UnitEdit",
    "hooks",
    "resolve_module",
    "run_with_cache",
]

EditMode = Literal["replace", "add", "scale"]
_EDIT_MODES: tuple[str, ...] = ("replace", "add", "scale")


class LayerNotFoundError(KeyError):
    """A layer name that is not among ``model.named_modules()``.

    Parameters
    ----------
    name : str
        The name that was asked for.
    suggestions : sequence of str
        The closest valid names, best first.
    n_layers : int
        How many named modules the model has.
    """

    def __init__(self, name: str, suggestions: Iterable[str], n_layers: int) -> None:
        super().__init__(name)
        self.name = name
        self.suggestions = tuple(suggestions)
        self.n_layers = n_layers

    def __str__(self) -> str:
        message = f"no layer named {self.name!r} in the model"
        if self.suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        return (
            message + f" (the model has {self.n_layers} named modules; "
            "list them with [name for name, _ in model.named_modules()])"
        )


def resolve_module(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule of ``model`` called ``name``.

    Parameters
    ----------
    model : nn.Module
        The model to search.
    name : str
        A dotted name as listed by ``model.named_modules()``; ``""`` is the model itself.

    Returns
    -------
    nn.Module
        The submodule.

    Raises
    ------
    LayerNotFoundError
        If no submodule has that name; the message lists the closest valid names.
    """
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    suggestions = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.6)
    raise LayerNotFoundError(name, suggestions, len(modules))


@dataclass(frozen=True)
class UnitEdit:
    """An edit of some channels of one layer's output.

    The edit acts on dimension 1 of the output, so it works for convolutional ``[N, C, H, W]`` and dense
    ``[N, C]`` outputs alike.

    Parameters
    ----------
    layer : str
        Dotted module name whose output is edited.
    units : tuple of int or None
        Channel indices to edit; ``None`` edits every channel.
    mode : {"replace", "add", "scale"}
        ``replace`` sets the units to ``value``, ``add`` adds ``value``, ``scale`` multiplies by ``value``.
    value : float or Tensor
        A scalar, or a tensor broadcastable to ``[N, len(units)]`` (per-example values), constant over the
        spatial dimensions.
    """

    layer: str
    units: tuple[int, ...] | None
    mode: EditMode
    value: float | Tensor

    def __post_init__(self) -> None:
        if self.units is not None:
            units = tuple(int(u) for u in self.units)
            if len(set(units)) != len(units):
                raise ValueError(f"units {units} for layer {self.layer!r} contain duplicates")
            object.__setattr__(self, "units", units)
        _check_mode(self.mode)

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
        if output.ndim < 2:
            raise ValueError(f"cannot edit units of layer {self.layer!r}: output shape {tuple(output.shape)} "
                             "has no channel dimension 1")
        n_channels = output.shape[1]
        units = tuple(range(n_channels)) if self.units is None else self.units
        bad = [u for u in units if not 0 <= u < n_channels]
        if bad:
            raise IndexError(f"units {bad} out of range for layer {self.layer!r}, which has {n_channels} "
                             f"channels (valid units are 0..{n_channels - 1})")
        index = torch.as_tensor(units, dtype=torch.long, device=output.device)
        value = self._value_like(output, n_units=len(units))
        selected = output.index_select(1, index)
        if self.mode == "replace":
            edited = value.expand_as(selected)
        elif self.mode == "add":
            edited = selected + value
        else:
            edited = selected * value
        return output.index_copy(1, index, edited.to(output.dtype))

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
        return value.reshape(tuple(value.shape) + (1,) * (output.ndim - value.ndim))


def _check_mode(mode: str) -> None:
    if mode not in _EDIT_MODES:
        raise ValueError(f"unknown edit mode {mode!r}; expected one of {_EDIT_MODES}")


class ActivationCache(Mapping[str, Tensor]):
    """Read-only mapping from layer name to captured activation.

    Parameters
    ----------
    activations : mapping of str to Tensor
        Captured outputs, in the order the layers were requested.
    """

    def __init__(self, activations: Mapping[str, Tensor]) -> None:
        self._activations = dict(activations)

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self._activations[name]
        except KeyError:
            raise KeyError(f"layer {name!r} was not captured; captured layers: {list(self._activations)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._activations)

    def __len__(self) -> int:
        return len(self._activations)

    def __repr__(self) -> str:
        if not self._activations:
            return "ActivationCache({})"
        width = max(len(repr(name)) for name in self._activations)
        lines = [f"  {name!r:<{width}}  {list(t.shape)}" for name, t in self._activations.items()]
        return "ActivationCache(\n" + "\n".join(lines) + "\n)"


def _first_tensor_index(output: Any) -> int | None:
    """Index of the first tensor in a tuple output, or None if the output is a tensor itself."""
    if isinstance(output, Tensor):
        return None
    if isinstance(output, tuple):
        for i, item in enumerate(output):
            if isinstance(item, Tensor):
                return i
    raise TypeError(f"cannot hook a module output of type {type(output).__name__}; expected a tensor or a "
                    "tuple containing a tensor")


def _make_hook(name: str, edits: tuple[UnitEdit, ...], store: dict[str, Tensor] | None, *, detach: bool):
    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
        position = _first_tensor_index(output)
        tensor = output if position is None else output[position]
        for edit in edits:
            tensor = edit.apply(tensor)
        if store is not None:
            store[name] = tensor.detach() if detach else tensor
        if not edits:
            return None
        if position is None:
            return tensor
        return output[:position] + (tensor,) + output[position + 1:]

    return hook


@contextmanager
def hooks(
    model: nn.Module,
    *,
    capture: Iterable[str] = (),
    edits: Iterable[UnitEdit] = (),
    detach: bool = False,
) -> Iterator[dict[str, Tensor]]:
    """Capture and edit layer outputs while the block runs.

    All names are resolved before any hook is registered, and every hook is removed on exit, also when the
    forward pass raises.

    Parameters
    ----------
    model : nn.Module
        The model to hook; it is not modified.
    capture : iterable of str
        Dotted names of layers whose outputs are stored.
    edits : iterable of UnitEdit
        Edits applied, in order, to layer outputs; the edited output is what is passed on and captured.
    detach : bool
        Store detached activations.

    Yields
    ------
    dict of str to Tensor
        Filled with ``{layer: output}`` by each forward pass; for tuple outputs, the first tensor element.
    """
    capture = tuple(dict.fromkeys(capture))
    edits = tuple(edits)
    names = tuple(dict.fromkeys(capture + tuple(edit.layer for edit in edits)))
    modules = {name: resolve_module(model, name) for name in names}
    store: dict[str, Tensor] = {}
    handles = []
    try:
        for name, module in modules.items():
            layer_edits = tuple(edit for edit in edits if edit.layer == name)
            hook = _make_hook(name, layer_edits, store if name in capture else None, detach=detach)
            handles.append(module.register_forward_hook(hook))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def run_with_cache(
    model: nn.Module,
    x: Tensor,
    layers: str | Iterable[str],
    *,
    edits: Iterable[UnitEdit] = (),
    detach: bool = True,
) -> tuple[Tensor, ActivationCache]:
    """Run ``model`` on ``x`` and return its output with the named layers' activations.

    Parameters
    ----------
    model : nn.Module
        The model to run.
    x : Tensor, shape [N, ...]
        Model input.
    layers : str or iterable of str
        Dotted names of the layers to capture.
    edits : iterable of UnitEdit
        Edits applied during the forward pass.
    detach : bool
        Store detached activations (the returned output keeps its graph either way).

    Returns
    -------
    output : Tensor, shape [N, ...]
        The model output, e.g. logits [N, K].
    cache : ActivationCache
        ``{layer: activation}`` for each requested layer.
    """
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    with hooks(model, capture=layers, edits=edits, detach=detach) as store:
        output = model(x)
    missing = [name for name in layers if name not in store]
    if missing:
        raise RuntimeError(f"layers {missing} exist but were not called during the forward pass")
    return output, ActivationCache({name: store[name] for name in layers})
