"""UnitTuner: set one unit of r to a value and see the linked images of a few base examples change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import ipywidgets as ipw
import numpy as np
import torch
from linkviz.widgets.latest_wins import LatestWinsWorker, error_html
from linkviz.widgets.snapshot import with_snapshot

from linkviz.linking.linked_model import LinkedModel
from linkviz.plotting.images import encode_image, tile_images
from linkviz.tuning.perturbations import effect_sizes, tuned_latents

__all__ = ["UnitTuner"]

_TOP_UNITS = 20
_TILE_PIXELS = 128
_CACHED_SEED_SETS = 8


@dataclass(frozen=True)
class _View:
    image: bytes
    label: str
    unit: int
    value: float
    seeds: tuple[int, ...]


def parse_seeds(text: str, n_examples: int) -> tuple[int, ...]:
    """``"0, 1, 2"`` -> ``(0, 1, 2)``; ValueError / IndexError for text that is not indices of base examples."""
    try:
        seeds = tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"seeds must be comma-separated example indices, got {text!r}") from None
    if not seeds:
        raise ValueError("name at least one seed (an index of a base example)")
    bad = [seed for seed in seeds if not 0 <= seed < n_examples]
    if bad:
        raise IndexError(f"seeds {bad} out of range for {n_examples} base examples (valid: 0..{n_examples - 1})")
    return seeds


class UnitTuner(ipw.VBox):
    """Original images of a few base examples (top row) above their linked images with one unit of r set to a value.

    A slider release costs one generator pass: the tuned latents come from
    :func:`linkviz.tuning.tuned_latents` (linearity of the link), the originals are cached per set of seeds.
    The work runs in a :class:`LatestWinsWorker`; errors are shown under the image.

    Parameters
    ----------
    linked : LinkedModel
        The models, the link and the base pairs (seeds index ``linked.pairs``).
    seeds : sequence of int
        Base examples shown, one column each.
    unit : int
        Initial unit.

    Raises
    ------
    IndexError
        If ``unit`` or a seed is out of range.
    """

    def __init__(self, linked: LinkedModel, *, seeds: Sequence[int] = (0, 1, 2, 3), unit: int = 0) -> None:
        self.linked = linked
        unit = linked.stats.check_unit(unit)
        seeds = parse_seeds(" ".join(str(int(seed)) for seed in seeds), len(linked.pairs))
        self.effect = effect_sizes(linked.link, linked.stats)
        self.rank = np.empty(len(self.effect), dtype=np.int64)
        self.rank[np.argsort(-self.effect, kind="stable")] = np.arange(1, len(self.effect) + 1)
        strongest = np.argsort(-self.effect, kind="stable")[:_TOP_UNITS]
        self._originals_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._syncing = False

        self.unit = ipw.IntText(value=unit, description="unit")
        self.strongest = ipw.Dropdown(options=[(f"unit {u}: effect {self.effect[u]:.3g}", int(u)) for u in strongest],
                                      value=None, description="strongest")
        self.value = ipw.FloatSlider(description="value", continuous_update=False, readout_format=".3g")
        self.seeds = ipw.Text(value=", ".join(map(str, seeds)), description="seeds", continuous_update=False)
        self.image = ipw.Image(format="jpeg")
        self.label = ipw.HTML()
        self.error = ipw.HTML()
        self.worker = LatestWinsWorker(self._show, self._show_error, name="UnitTuner")
        self._set_range(unit)
        self._sync_strongest(unit)
        self.unit.observe(self._on_unit, names="value")
        self.strongest.observe(self._on_strongest, names="value")
        self.value.observe(self._on_value, names="value")
        self.seeds.observe(self._on_value, names="value")
        super().__init__([ipw.HBox([self.unit, self.strongest]), ipw.HBox([self.value, self.seeds]), self.image,
                          self.label, self.error])
        self.shown = self._compute(unit, float(self.value.value), seeds)
        self._show(self.shown)

    # --- controls -> requests (main thread) ---

    def _on_unit(self, change: dict) -> None:
        try:
            unit = self.linked.stats.check_unit(change["new"])
        except IndexError as error:
            self._show_error(error)
            return
        self._set_range(unit)
        self._sync_strongest(unit)
        self._request()

    def _on_strongest(self, change: dict) -> None:
        if change["new"] is not None:
            self.unit.value = change["new"]

    def _on_value(self, change: dict) -> None:
        if not self._syncing:
            self._request()

    def _request(self) -> None:
        try:
            unit = self.linked.stats.check_unit(self.unit.value)
            seeds = parse_seeds(self.seeds.value, len(self.linked.pairs))
        except (ValueError, IndexError) as error:
            self._show_error(error)
            return
        self.worker.submit(partial(self._compute, unit, float(self.value.value), seeds))

    def _set_range(self, unit: int) -> None:
        """Slider from the unit's observed min to max, at its mean, without triggering a render."""
        stats = self.linked.stats
        low, high, mean = float(stats.min[unit]), float(stats.max[unit]), float(stats.mean[unit])
        self._syncing = True
        try:
            if low > self.value.max:
                self.value.max, self.value.min = high, low
            else:
                self.value.min, self.value.max = low, high
            self.value.step = (high - low) / 100 if high > low else 0.01
            self.value.value = mean
        finally:
            self._syncing = False

    def _sync_strongest(self, unit: int) -> None:
        listed = [value for _, value in self.strongest.options]
        self.strongest.value = unit if unit in listed else None

    # --- compute (worker thread) ---

    def _originals(self, seeds: tuple[int, ...]) -> np.ndarray:
        if seeds not in self._originals_cache:
            if len(self._originals_cache) >= _CACHED_SEED_SETS:
                self._originals_cache.clear()
            self._originals_cache[seeds] = self.linked.render(self.linked.pairs.w[list(seeds)])
        return self._originals_cache[seeds]

    def _compute(self, unit: int, value: float, seeds: tuple[int, ...]) -> _View:
        originals = self._originals(seeds)
        r_base = torch.as_tensor(self.linked.pairs.r[list(seeds)], dtype=torch.float32).to(self.linked.device)
        w = tuned_latents(self.linked.link, r_base, unit, np.array([value], dtype=np.float32))[:, 0]
        tuned = self.linked.render(w)
        zoom = max(1, _TILE_PIXELS // tuned.shape[1])
        grid = tile_images(np.concatenate([originals, tuned]), columns=len(seeds), zoom=zoom, gap=1)
        return _View(encode_image(grid, format="jpeg"), self._label(unit, value), unit, value, seeds)

    def _label(self, unit: int, value: float) -> str:
        stats = self.linked.stats
        return (f"unit <b>{unit}</b>: effect size <b>{self.effect[unit]:.3g}</b> (rank {self.rank[unit]} of "
                f"{len(self.effect)}); value <b>{value:.3g}</b> (observed {stats.min[unit]:.3g} … "
                f"{stats.max[unit]:.3g}, mean {stats.mean[unit]:.3g}). Top: originals; bottom: linked with the "
                f"unit set to the value.")

    # --- results -> traits ---

    def _show(self, view: _View) -> None:
        self.shown = view
        self.image.value = view.image
        self.label.value = view.label
        self.error.value = ""

    def _show_error(self, error: Exception) -> None:
        self.error.value = error_html(error)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot (image and label), for executed, exported notebooks."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.image, self.label.value,
                             self.error.value)
