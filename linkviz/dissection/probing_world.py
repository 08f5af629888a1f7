"""The ``ProbingWorld`` capability: a world that ships a Network Dissection probe set for its classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.world import World

__all__ = ["ProbingWorld"]


@runtime_checkable
class ProbingWorld(World, Protocol):
    """A world with a probe set whose per-pixel concept labels its classifier can be dissected against.

    Attributes
    ----------
    dissection_layer : str
        Dotted name of the classifier layer whose units the world's views dissect.
    """

    @property
    def dissection_layer(self) -> str: ...

    def dissection_probe(self, samples_per_class: int, *, seed: int, cache_dir: str | Path | None) -> ProbeDataset:
        """A probe set of ``samples_per_class`` images per class, with concept masks (cached under ``cache_dir``)."""
        ...
