"""UnitTuner: set one unit of r to a value and see the linked images of a few base examples change."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import ipywidgets as ipw
import numpy as np
import torch
from linkviz.widgets.latest_wins import LatestWinsWorker, error_html
from linkviz.widgets.snapshot import with_snapshot

from linkviz.linking.linked_model import LinkedModel
from linkviz.plotting.images import encode_image, tile_images
from linkviz.plotting.overlays import label_colors, overlay_parts, to_hex
from linkviz.tracking import MotionField, draw_motion_arrows, residual_flow
from linkviz.tuning.perturbations import effect_sizes, tuned_latents

__all__ = ["PartsFunction", "UnitTuner"]

_TOP_UNITS = 20
_TILE_PIXELS = 128
_CACHED_SEED_SETS = 8
_ARROW_QUANTILE = 0.85  # arrows for the strongest 15 % of motions
_ARROW_SCALE = 2.0  # drawn length per pixel of motion: fixed, so arrow lengths compare across slider values
_NO_SEGMENTER = "no segmenter: pass segmenter=... (images or ws -> integer part masks) to UnitTuner"

PartsFunction = Callable[[np.ndarray | torch.Tensor], np.ndarray | torch.Tensor]
"""Images uint8 [N, H, W, 3] (or ws [N, num_ws, w_dim]) -> integer part masks [N, h, w]."""


@dataclass(frozen=True, eq=False)
class _View:
    image: bytes
    label: str
    unit: int
    value: float
    seeds: tuple[int, ...]
    arrows: bool = False
    parts: bool = False
    fields: tuple[MotionField, ...] = ()
    original_parts: np.ndarray | None = None
    tuned_parts: np.ndarray | None = None


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

    Two overlays, off by default (the plain slider stays one generator pass), are computed in the same worker:

    - **flow arrows**: a third row with the motion from each original to its tuned image, after global
      alignment (:func:`linkviz.tracking.residual_flow`), drawn by :func:`linkviz.tracking.draw_motion_arrows`
      on the darkened original: the strongest 15 % of motions, at twice their length, hue = direction.
    - **parts**: the part masks of ``segmenter`` tinted and outlined over the originals and the tuned images
      (:func:`linkviz.plotting.overlays.overlay_parts`). Disabled, with a tooltip saying why, without a segmenter.

    Parameters
    ----------
    linked : LinkedModel
        The models, the link and the base pairs (seeds index ``linked.pairs``).
    seeds : sequence of int
        Base examples shown, one column each.
    unit : int
        Initial unit.
    segmenter : callable, optional
        Integer part masks ``[N, h, w]`` (ndarray or Tensor) of a batch of images, e.g.
        ``lambda images: segment_images(render_segmenter, images)``; with ``segment_from="ws"`` it gets the
        latents ``[N, num_ws, w_dim]`` on ``linked.device`` instead, e.g. a few-shot segmenter:
        ``lambda ws: predict_parts(part_segmenter, generator_features(generator, ws, resolution=R))``.
    segment_from : {"images", "ws"}
        What ``segmenter`` is called with: the rendered images (uint8 ``[N, H, W, 3]``) or their latents.
    part_labels : sequence of str, optional
        Name of each part id, for the legend (id 0 is the untinted background).
    arrows, parts : bool
        Initial state of the two overlay toggles.

    Raises
    ------
    IndexError
        If ``unit`` or a seed is out of range.
    ValueError
        If ``parts=True`` without a segmenter, or ``segment_from`` is not "images" or "ws".
    """

    def __init__(self, linked: LinkedModel, *, seeds: Sequence[int] = (0, 1, 2, 3), unit: int = 0,
                 segmenter: PartsFunction | None = None, segment_from: Literal["images", "ws"] = "images",
                 part_labels: Sequence[str] | None = None, arrows: bool = False, parts: bool = False) -> None:
        if segment_from not in ("images", "ws"):
            raise ValueError(f"segment_from must be 'images' or 'ws'; got {segment_from!r}")
        if parts and segmenter is None:
            raise ValueError("parts=True needs a segmenter (images or ws -> integer part masks)")
        self.linked = linked
        self.segmenter = segmenter
        self.segment_from = segment_from
        self.part_labels = None if part_labels is None else tuple(str(name) for name in part_labels)
        unit = linked.stats.check_unit(unit)
        seeds = parse_seeds(" ".join(str(int(seed)) for seed in seeds), len(linked.pairs))
        self.effect = effect_sizes(linked.link, linked.stats)
        self.rank = np.empty(len(self.effect), dtype=np.int64)
        self.rank[np.argsort(-self.effect, kind="stable")] = np.arange(1, len(self.effect) + 1)
        strongest = np.argsort(-self.effect, kind="stable")[:_TOP_UNITS]
        self._originals_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._original_parts_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._syncing = False

        self.unit = ipw.IntText(value=unit, description="unit")
        self.strongest = ipw.Dropdown(options=[(f"unit {u}: effect {self.effect[u]:.3g}", int(u)) for u in strongest],
                                      value=None, description="strongest")
        self.value = ipw.FloatSlider(description="value", continuous_update=False, readout_format=".3g")
        self.seeds = ipw.Text(value=", ".join(map(str, seeds)), description="seeds", continuous_update=False)
        self.arrows = ipw.Checkbox(value=bool(arrows), description="flow arrows", indent=False,
                                   tooltip="motion from each original to its tuned image, after global alignment")
        self.parts = ipw.Checkbox(value=bool(parts), description="parts", indent=False, disabled=segmenter is None,
                                  tooltip=_NO_SEGMENTER if segmenter is None else "part masks of the segmenter")
        self.image = ipw.Image(format="jpeg")
        self.label = ipw.HTML()
        self.error = ipw.HTML()
        self.worker = LatestWinsWorker(self._show, self._show_error, name="UnitTuner")
        self._set_range(unit)
        self._sync_strongest(unit)
        self.unit.observe(self._on_unit, names="value")
        self.strongest.observe(self._on_strongest, names="value")
        for control in (self.value, self.seeds, self.arrows, self.parts):
            control.observe(self._on_value, names="value")
        super().__init__([ipw.HBox([self.unit, self.strongest]), ipw.HBox([self.value, self.seeds]),
                          ipw.HBox([self.arrows, self.parts]), self.image, self.label, self.error])
        self.shown = self._compute(unit, float(self.value.value), seeds, arrows=self.arrows.value,
                                   parts=self.parts.value)
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
        self.worker.submit(partial(self._compute, unit, float(self.value.value), seeds, arrows=self.arrows.value,
                                   parts=self.parts.value and self.segmenter is not None))

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

    def _compute(self, unit: int, value: float, seeds: tuple[int, ...], *, arrows: bool = False,
                 parts: bool = False) -> _View:
        originals = self._originals(seeds)
        r_base = torch.as_tensor(self.linked.pairs.r[list(seeds)], dtype=torch.float32).to(self.linked.device)
        w = tuned_latents(self.linked.link, r_base, unit, np.array([value], dtype=np.float32))[:, 0]
        tuned = self.linked.render(w)
        zoom = max(1, _TILE_PIXELS // tuned.shape[1])
        if not (arrows or parts):
            grid = tile_images(np.concatenate([originals, tuned]), columns=len(seeds), zoom=zoom, gap=1)
            return _View(encode_image(grid, format="jpeg"), self._label(unit, value), unit, value, seeds)
        rows, original_parts, tuned_parts = [_zoomed(originals, zoom), _zoomed(tuned, zoom)], None, None
        if parts:
            original_parts = self._original_parts(seeds)
            tuned_parts = self._segment(tuned, w)
            rows = [np.stack([overlay_parts(image, mask, zoom=zoom) for image, mask in zip(images, masks)])
                    for images, masks in ((originals, original_parts), (tuned, tuned_parts))]
        fields: tuple[MotionField, ...] = ()
        if arrows:
            fields = tuple(residual_flow(original, moved) for original, moved in zip(originals, tuned))
            rows.append(_arrow_row(originals, fields, zoom=zoom))
        grid = tile_images(np.concatenate(rows), columns=len(seeds), gap=zoom)
        label = self._label(unit, value, arrows=arrows, masks=(original_parts, tuned_parts) if parts else None)
        return _View(encode_image(grid, format="jpeg"), label, unit, value, seeds, arrows=arrows, parts=parts,
                     fields=fields, original_parts=original_parts, tuned_parts=tuned_parts)

    def _original_parts(self, seeds: tuple[int, ...]) -> np.ndarray:
        if seeds not in self._original_parts_cache:
            if len(self._original_parts_cache) >= _CACHED_SEED_SETS:
                self._original_parts_cache.clear()
            self._original_parts_cache[seeds] = self._segment(self._originals(seeds),
                                                              self.linked.pairs.w[list(seeds)])
        return self._original_parts_cache[seeds]

    def _segment(self, images: np.ndarray, w: np.ndarray | torch.Tensor) -> np.ndarray:
        """Part masks of rendered ``images`` (or of their latents ``w [N, w_dim]``) from the segmenter."""
        inputs = images
        if self.segment_from == "ws":
            w = torch.as_tensor(w, dtype=torch.float32).to(self.linked.device)
            inputs = w[:, None, :].expand(-1, self.linked.generator.num_ws, -1)
        with torch.no_grad():
            masks = self.segmenter(inputs)
        masks = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
        if masks.ndim != 3 or len(masks) != len(images) or not np.issubdtype(masks.dtype, np.integer):
            raise ValueError(f"the segmenter must return integer part masks [{len(images)}, h, w]; got "
                             f"{masks.dtype} {masks.shape}")
        return masks

    def _label(self, unit: int, value: float, *, arrows: bool = False,
               masks: tuple[np.ndarray, np.ndarray] | None = None) -> str:
        stats = self.linked.stats
        text = (f"unit <b>{unit}</b>: effect size <b>{self.effect[unit]:.3g}</b> (rank {self.rank[unit]} of "
                f"{len(self.effect)}); value <b>{value:.3g}</b> (observed {stats.min[unit]:.3g} … "
                f"{stats.max[unit]:.3g}, mean {stats.mean[unit]:.3g}). Top: originals; below them: linked with "
                f"the unit set to the value.")
        if masks is not None:
            text += " Parts: " + self._legend(np.union1d(np.unique(masks[0]), np.unique(masks[1]))) + "."
        if arrows:
            text += (f" Last row: motion from original to tuned after global alignment, the strongest "
                     f"{100 * (1 - _ARROW_QUANTILE):.0f}% drawn at {_ARROW_SCALE:g}x length, hue = direction "
                     f"(red right, cyan left).")
        return text

    def _legend(self, ids: np.ndarray) -> str:
        colors = label_colors(int(ids.max(initial=0)) + 1)
        names = self.part_labels or ()
        return ", ".join(f'<span style="color:{to_hex(colors[i])}">&#9632;</span> '
                         f"{html.escape(names[i] if i < len(names) else f'part {i}')}" for i in ids if i != 0)

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


def _zoomed(images: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(images, zoom, axis=1), zoom, axis=2) if zoom > 1 else images


def _arrow_row(originals: np.ndarray, fields: Sequence[MotionField], *, zoom: int) -> np.ndarray:
    """Each original, darkened and magnified, with the arrows of its strongest motions."""
    step = max(2, round(originals.shape[1] / 12))
    return np.stack([draw_motion_arrows(original, field, quantile=_ARROW_QUANTILE, step=step, upscale=zoom,
                                        arrow_scale=_ARROW_SCALE, max_magnitude=float(step),
                                        thickness=max(1, min(3, zoom // 2)))
                     for original, field in zip(originals, fields)])
