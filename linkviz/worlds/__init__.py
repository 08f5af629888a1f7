"""Worlds: a classifier and a generator that read each other's images, as plug-ins of one shape.

Each world is a subpackage exposing a ``load_*_world`` function whose result satisfies
:class:`linkviz.world.World`. Worlds use the core; the core never imports a world, and importing
:mod:`linkviz` loads none (``linkviz.load_toy_world`` imports the toy world on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from linkviz.world import World

__all__ = ["WORLDS", "load_world"]

#: World name -> (module, loader function).
WORLDS: dict[str, tuple[str, str]] = {
    "toy": ("linkviz.worlds.toy", "load_toy_world"),
    "faces": ("linkviz.worlds.faces", "load_faces_world"),
}


def load_world(name: str, **options: Any) -> World:
    """Load a world by name.

    Parameters
    ----------
    name : {"toy", "faces"}
        Which world.
    **options
        Passed to the world's loader (e.g. ``device=``).

    Returns
    -------
    World
    """
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; available worlds: {sorted(WORLDS)}")
    module_name, loader = WORLDS[name]
    return getattr(import_module(module_name), loader)(**options)
