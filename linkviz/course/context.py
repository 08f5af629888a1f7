"""The shared, disk-cached setting every lesson and checker works in: the toy world, a small link, its parts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linkviz.cache import default_cache_root
from linkviz.linking import LinkedModel, build_linked_model
from linkviz.tuning import effect_sizes

__all__ = ["Course"]


@dataclass
class Course:
    """Lazily built, per-instance results of the course setting (nothing is module state).

    Every slow part (pairs, the part segmenter, the probe set, the dissection) is cached on disk under
    ``cache_dir``, so a second :class:`Course` (e.g. the one :func:`linkviz.course.check` makes) reads them back.

    Parameters
    ----------
    cache_dir : path, optional
        Cache root; default ``default_cache_root() / "course"`` (``$LINKVIZ_CACHE`` honoured).
    samples_per_class : int
        Pairs per class of the link.
    seed : int
        Seed of the pairs, the segmenter, the probe and every exercise's examples.
    device : str or torch.device
    """

    cache_dir: str | os.PathLike[str] | None = None
    samples_per_class: int = 20
    seed: int = 0
    device: str | torch.device = "cpu"
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir) if self.cache_dir is not None else default_cache_root() / "course"

    def remember(self, name: str, make):
        """``make()``, computed once per course under ``name`` (kept on this instance only)."""
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    @property
    def world(self):
        """The toy world (:func:`linkviz.load_toy_world`)."""
        from linkviz.worlds.toy import load_toy_world

        return self.remember("world", lambda: load_toy_world(device=self.device))

    @property
    def linked(self) -> LinkedModel:
        """The ridge link r -> w fitted on ``samples_per_class`` pairs per class."""
        return self.remember("linked", lambda: build_linked_model(
            self.world, samples_per_class=self.samples_per_class, seed=self.seed, cache_dir=self.cache_dir,
            device=self.device))

    @property
    def segmenter(self):
        """The world's few-shot part segmenter, ``ws [N, num_ws, w_dim] -> part masks [N, 64, 64]``."""
        return self.remember("segmenter", lambda: self.world.part_segmenter(
            per_class=10, seed=self.seed, cache_dir=self.cache_dir / "segmenter", device=self.device))

    @property
    def probe(self):
        """The toy dissection probe set (renders with object, part, colour, texture and scene masks)."""
        return self.remember("probe", lambda: self.world.dissection_probe(20, seed=self.seed, cache_dir=self.cache_dir))

    @property
    def dissection(self):
        """Network Dissection of ``layer4`` (whose units are r) on :attr:`probe`."""
        from linkviz.dissection import dissect

        return self.remember("dissection", lambda: dissect(self.world.classifier, self.world.dissection_layer,
                                                       self.probe, cache_dir=self.cache_dir, progress=False))

    def strongest_units(self, n: int) -> list[int]:
        """The ``n`` units that move w the most over their observed range (:func:`linkviz.effect_sizes`)."""
        if n < 1:
            raise ValueError(f"n must be at least 1; got {n}")
        sizes = effect_sizes(self.linked.link, self.linked.stats)
        return [int(unit) for unit in np.argsort(-sizes, kind="stable")[:n]]

    def examples(self, class_name: str, n: int = 3) -> list[int]:
        """The first ``n`` base pairs the classifier assigns to ``class_name`` (rows of ``linked.pairs``)."""
        rows = self.linked.examples_of_class(self.linked.class_index(class_name))
        if len(rows) == 0:
            raise ValueError(f"no base pair is classified as {class_name!r}; raise samples_per_class "
                             f"(now {self.samples_per_class})")
        return [int(row) for row in rows[:n]]
