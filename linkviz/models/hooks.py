"""Feature extraction and unit edits through forward hooks.

Layers are addressed by the dotted names of ``model.named_modules()``. The user's model is never subclassed or
modified: hooks are registered for the duration of a ``with`` block and removed in ``finally``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

from linkviz.models.edits import Edit, FunctionEdit, UnitEdit, as_unit, as_units

__all__ = [
    "ActivationCache",
    "Edit",
    "FunctionEdit",
    "LayerCalledTwiceError",
    "LayerNotFoundError",
    "UnitEdit",
    "as_unit",
    "as_units",
    "check_called_once",
    "counted_hooks",
    "hooks",
    "resolve_module",
    "run_with_cache",
]


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


class LayerCalledTwiceError(ValueError):
    """A hooked layer that ran more than once in one forward pass, so "its output" is ambiguous.

    Parameters
    ----------
    name : str
        The layer's dotted name.
    n_calls : int
        How many times it ran in the forward pass.
    """

    def __init__(self, name: str, n_calls: int) -> None:
        super().__init__(name, n_calls)
        self.name = name
        self.n_calls = n_calls

    def __str__(self) -> str:
        parent = self.name.rpartition(".")[0]
        hint = f" such as its parent {parent!r}" if parent else ""
        return (f"layer {self.name!r} was called {self.n_calls} times per forward pass (the module object is reused, "
                "like the ReLU of a torchvision ResNet BasicBlock), so its output is ambiguous and an edit would "
                f"apply to every call; hook a module that is called once{hint}, or give each use its own module")


def check_called_once(calls: Mapping[str, int], names: Iterable[str]) -> None:
    """Raise :class:`LayerCalledTwiceError` for the first of ``names`` that ran more than once.

    Parameters
    ----------
    calls : mapping of str to int
        Calls per layer during one forward pass, as counted by :func:`counted_hooks`.
    names : iterable of str
        The layers that must have run at most once.
    """
    for name in names:
        if calls.get(name, 0) > 1:
            raise LayerCalledTwiceError(name, calls[name])


def _make_hook(name: str, edits: tuple[Edit, ...], store: dict[str, Tensor] | None, calls: dict[str, int], *,
               detach: bool):
    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
        calls[name] = calls.get(name, 0) + 1
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
def counted_hooks(
    model: nn.Module,
    *,
    capture: Iterable[str] = (),
    edits: Iterable[Edit] = (),
    detach: bool = False,
) -> Iterator[tuple[dict[str, Tensor], dict[str, int]]]:
    """:func:`hooks` that also yields how many times each hooked layer ran, ``{layer: n_calls}``.

    The counts add up over every forward pass in the block; reset them (``calls.clear()``) between passes and
    check them with :func:`check_called_once`.
    """
    capture = tuple(dict.fromkeys(capture))
    edits = tuple(edits)
    for edit in edits:
        if not isinstance(edit, (UnitEdit, FunctionEdit)):
            raise TypeError(f"edits must be UnitEdit or FunctionEdit objects; got {type(edit).__name__}")
    names = tuple(dict.fromkeys(capture + tuple(edit.layer for edit in edits)))
    modules = {name: resolve_module(model, name) for name in names}
    store: dict[str, Tensor] = {}
    calls: dict[str, int] = {}
    handles = []
    try:
        for name, module in modules.items():
            layer_edits = tuple(edit for edit in edits if edit.layer == name)
            hook = _make_hook(name, layer_edits, store if name in capture else None, calls, detach=detach)
            handles.append(module.register_forward_hook(hook))
        yield store, calls
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def hooks(
    model: nn.Module,
    *,
    capture: Iterable[str] = (),
    edits: Iterable[Edit] = (),
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
    edits : iterable of UnitEdit or FunctionEdit
        Edits applied, in order, to layer outputs; the edited output is what is passed on and captured.
    detach : bool
        Store detached activations.

    Yields
    ------
    dict of str to Tensor
        Filled with ``{layer: output}`` by each forward pass; for tuple outputs, the first tensor element.

    Notes
    -----
    A module object that runs several times in one pass (a reused ReLU) is edited on every call and its last
    output is stored; :func:`run_with_cache` refuses such layers, and :func:`counted_hooks` lets a caller check.
    """
    with counted_hooks(model, capture=capture, edits=edits, detach=detach) as (store, _):
        yield store


def run_with_cache(
    model: nn.Module,
    x: Tensor,
    layers: str | Iterable[str],
    *,
    edits: Iterable[Edit] = (),
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
    edits : iterable of UnitEdit or FunctionEdit
        Edits applied, in order, during the forward pass.
    detach : bool
        Store detached activations (the returned output keeps its graph either way).

    Returns
    -------
    output : Tensor, shape [N, ...]
        The model output, e.g. logits [N, K].
    cache : ActivationCache
        ``{layer: activation}`` for each requested layer.

    Raises
    ------
    LayerCalledTwiceError
        A ``ValueError``: a captured or edited layer ran more than once in the forward pass (a reused module,
        such as ``layer1.0.relu`` of a torchvision ResNet); hook a module that runs once instead.
    RuntimeError
        A requested layer exists but did not run.
    """
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    edits = tuple(edits)
    with counted_hooks(model, capture=layers, edits=edits, detach=detach) as (store, calls):
        output = model(x)
    check_called_once(calls, (*layers, *(edit.layer for edit in edits)))
    missing = [name for name in layers if name not in store]
    if missing:
        raise RuntimeError(f"layers {missing} exist but were not called during the forward pass")
    return output, ActivationCache({name: store[name] for name in layers})
