"""UnitTuner: set one unit of r to a value and see the linked images of a few base examples change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import ipywidgets as ipw

from linkviz.controllers.unit_tuning import PartsFunction, TuningView, UnitTuning, parse_seeds
from linkviz.linking.linked_model import LinkedModel
from linkviz.widgets.base import ViewWidget

__all__ = ["PartsFunction", "UnitTuner"]

_TOP_UNITS = 20
_NO_SEGMENTER = "no segmenter: pass segmenter=... (images or ws -> integer part masks) to UnitTuner"


class UnitTuner(ViewWidget):
    """Original images of a few base examples (top row) above their linked images with one unit of r set to a value.

    A thin view over :class:`linkviz.controllers.UnitTuning`: a slider release asks it for a
    :class:`~linkviz.controllers.TuningView` (one generator pass) in a latest-wins worker; errors are shown
    under the image. Two overlays, off by default, are computed in the same worker:

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
    controller : UnitTuning, optional
        An existing controller to share (its segmenter and caches); ``segmenter``, ``segment_from`` and
        ``part_labels`` are then ignored.

    Raises
    ------
    IndexError
        If ``unit`` or a seed is out of range.
    ValueError
        If ``parts=True`` without a segmenter, or ``segment_from`` is not "images" or "ws".
    """

    shown: TuningView

    def __init__(self, linked: LinkedModel, *, seeds: Sequence[int] = (0, 1, 2, 3), unit: int = 0,
                 segmenter: PartsFunction | None = None, segment_from: Literal["images", "ws"] = "images",
                 part_labels: Sequence[str] | None = None, arrows: bool = False, parts: bool = False,
                 controller: UnitTuning | None = None) -> None:
        if controller is None:
            controller = UnitTuning(linked, segmenter=segmenter, segment_from=segment_from, part_labels=part_labels)
        elif controller.linked is not linked:
            raise ValueError("controller belongs to another LinkedModel than linked")
        if parts and controller.segmenter is None:
            raise ValueError("parts=True needs a segmenter (images or ws -> integer part masks)")
        self.controller = controller
        self.linked = linked
        unit = linked.stats.check_unit(unit)
        seeds = parse_seeds(seeds, len(linked.pairs))
        self.effect, self.rank = self.controller.effect, self.controller.rank
        self._syncing = False

        self.unit = ipw.IntText(value=unit, description="unit")
        self.strongest = ipw.Dropdown(options=[(f"unit {u}: effect {self.effect[u]:.3g}", int(u))
                                               for u in self.controller.strongest_units(_TOP_UNITS)],
                                      value=None, description="strongest")
        self.value = ipw.FloatSlider(description="value", continuous_update=False, readout_format=".3g")
        self.seeds = ipw.Text(value=", ".join(map(str, seeds)), description="seeds", continuous_update=False)
        self.arrows = ipw.Checkbox(value=bool(arrows), description="flow arrows", indent=False,
                                   tooltip="motion from each original to its tuned image, after global alignment")
        self.parts = ipw.Checkbox(value=bool(parts), description="parts", indent=False, disabled=self.segmenter is None,
                                  tooltip=_NO_SEGMENTER if self.segmenter is None else "part masks of the segmenter")
        self._init_view(name="UnitTuner")
        self._set_range(unit)
        self._sync_strongest(unit)
        self.unit.observe(self._on_unit, names="value")
        self.strongest.observe(self._on_strongest, names="value")
        for control in (self.value, self.seeds, self.arrows, self.parts):
            control.observe(self._on_value, names="value")
        super().__init__([ipw.HBox([self.unit, self.strongest]), ipw.HBox([self.value, self.seeds]),
                          ipw.HBox([self.arrows, self.parts]), self.image, self.label, self.error])
        self._show(self.controller.compute(unit, float(self.value.value), seeds, arrows=self.arrows.value,
                                           parts=self.parts.value))

    @property
    def segmenter(self) -> PartsFunction | None:
        return self.controller.segmenter

    def _on_unit(self, change: dict) -> None:
        try:
            unit = self.linked.stats.check_unit(change["new"])
        except IndexError as error:
            self._show_error(error)
            return
        self._set_range(unit)
        self._sync_strongest(unit)
        self._submit()

    def _on_strongest(self, change: dict) -> None:
        if change["new"] is not None:
            self.unit.value = change["new"]

    def _on_value(self, change: dict) -> None:
        if not self._syncing:
            self._submit()

    def _submit(self) -> None:
        try:
            unit = self.linked.stats.check_unit(self.unit.value)
            seeds = parse_seeds(self.seeds.value, len(self.linked.pairs))
        except (ValueError, IndexError) as error:
            self._show_error(error)
            return
        self._request(self.controller.compute, unit, float(self.value.value), seeds, arrows=self.arrows.value,
                      parts=self.parts.value and self.segmenter is not None)

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


