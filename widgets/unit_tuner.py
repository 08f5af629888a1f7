"""UnitTuner: set one unit of r to a value and see the linked images of a few base examples change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import ipywidgets as ipw
import numpy as np

from linkviz.controllers.unit_tuning import PartsFunction, TuningView, UnitTuning, parse_seeds
from linkviz.linking.linked_model import LinkedModel
from linkviz.widgets.base import ViewWidget

__all__ = ["PartsFunction", "UnitTuner"]

_TOP_UNITS = 20
_NO_SEGMENTER = "no segmenter: pass segmenter=... (images or ws -> integer part masks) to UnitTuner"


class UnitTuner(ViewWidget):
    """Linked images of a few base examples (top row) above the same with one unit of r set to a value.

    A thin view over :class:`linkviz.controllers.UnitTuning`: a slider release asks it for a
    :class:`~linkviz.controllers.TuningView` (one generator pass) in a latest-wins worker; errors are shown
    under the image. Two overlays, off by default, are computed in the same worker:

    The top row is the linked reconstruction ``G(A r + b)`` of each seed's own ``r`` (not the sampled image
    ``G(w)``), so the two rows differ only by what the unit does. It opens on the strongest unit, with seeds taken
    round-robin over the classes; the ``classes`` menu picks the classes the seeds come from.

    - **flow arrows**: a third row with the motion from each linked image to its tuned image
      (:func:`linkviz.tracking.pair_flows`: batched TV-L1, both ways), drawn by
      :func:`linkviz.tracking.draw_motion_arrows` on the darkened linked image where the flow is reliable (image
      structure, forward-backward agreement): the strongest 15 % of motions, at twice their length, hue =
      direction, with a colour wheel in the last tile's corner as the key.
    - **parts**: the part masks of ``segmenter`` tinted and outlined over the linked and the tuned images
      (:func:`linkviz.plotting.overlays.overlay_parts`). Disabled, with a tooltip saying why, without a segmenter.

    Parameters
    ----------
    linked : LinkedModel
        The models, the link and the base pairs (seeds index ``linked.pairs``).
    seeds : sequence of int, optional
        Base examples shown, one column each. Default: four examples taken round-robin over ``classes``
        (:meth:`linkviz.linking.LinkedModel.example_seeds`).
    unit : int, optional
        Initial unit; default the strongest (largest effect size).
    classes : sequence of int or str, optional
        Classes (indices or names) the default seeds come from; default all. Not with ``seeds``.
    segmenter : callable, optional
        Integer part masks ``[N, h, w]`` (ndarray or Tensor) of a batch of images, e.g.
        ``lambda images: segment_images(render_segmenter, images)``; with ``segment_from="ws"`` it gets the
        latents ``[N, num_ws, w_dim]`` on ``linked.device`` instead, e.g. a few-shot segmenter:
        ``lambda ws: predict_parts(part_segmenter, generator_features(generator, ws, resolution=R))``.
    segment_from : {"images", "ws"}
        What ``segmenter`` is called with: the rendered images (uint8 ``[N, H, W, 3]``) or their latents.
    part_labels : sequence of str, optional
        Name of each part id, for the legend (id 0 is the untinted background).
    part_iou : mapping of str to float, optional
        The segmenter's IoU per part name on generated images, shown in the legend.
    part_background : int or None
        The part id meaning "no part" (default 0); None when every id is a part (e.g. k-means clusters).
    arrows, parts : bool
        Initial state of the two overlay toggles.
    controller : UnitTuning, optional
        An existing controller to share (its segmenter and caches); ``segmenter``, ``segment_from`` and
        ``part_labels`` are then ignored.

    Raises
    ------
    IndexError
        If ``unit``, a seed or a class is out of range.
    ValueError
        If ``parts=True`` without a segmenter, ``segment_from`` is not "images" or "ws", or both ``seeds`` and
        ``classes`` are given.
    """

    shown: TuningView

    def __init__(self, linked: LinkedModel, *, seeds: Sequence[int] | None = None, unit: int | None = None,
                 classes: Sequence[int | str] | None = None, segmenter: PartsFunction | None = None,
                 segment_from: Literal["images", "ws"] = "images", part_labels: Sequence[str] | None = None,
                 part_iou: Mapping[str, float] | None = None, part_background: int | None = 0,
                 arrows: bool = False, parts: bool = False, controller: UnitTuning | None = None) -> None:
        if controller is None:
            controller = UnitTuning(linked, segmenter=segmenter, segment_from=segment_from, part_labels=part_labels,
                                    part_iou=part_iou, background=part_background)
        elif controller.linked is not linked:
            raise ValueError("controller belongs to another LinkedModel than linked")
        if parts and controller.segmenter is None:
            raise ValueError("parts=True needs a segmenter (images or ws -> integer part masks)")
        self.controller = controller
        self.linked = linked
        unit = controller.strongest_unit if unit is None else linked.stats.check_unit(unit)
        if seeds is not None and classes is not None:
            raise ValueError("give seeds or classes to choose them from, not both")
        chosen = () if classes is None else tuple(linked.class_index(c) for c in classes)
        seeds = parse_seeds(controller.default_seeds(classes=chosen or None) if seeds is None else seeds,
                            len(linked.pairs))
        self._n_seeds = len(seeds)
        self.effect, self.rank = self.controller.effect, self.controller.rank
        self._syncing = False

        self.unit = ipw.IntText(value=unit, description="unit")
        self._top_units = [int(u) for u in self.controller.strongest_units(_TOP_UNITS)]
        self.strongest = ipw.Dropdown(options=self._strongest_options(unit), value=unit, description="strongest")
        self.value = ipw.FloatSlider(description="value", continuous_update=False, readout_format=".3g")
        self.seeds = ipw.Text(value=", ".join(map(str, seeds)), description="seeds", continuous_update=False)
        counts = np.bincount(linked.pairs.predicted, minlength=len(linked.class_names))
        self.classes = ipw.SelectMultiple(
            options=[(f"{name} ({counts[i]})", i) for i, name in enumerate(linked.class_names) if counts[i]],
            value=tuple(c for c in chosen if counts[c]), description="classes",
            rows=min(5, max(1, int((counts > 0).sum()))),
            tooltip="classes the seeds are taken from, round-robin (none selected: all)")
        self.arrows = ipw.Checkbox(value=bool(arrows), description="flow arrows", indent=False,
                                   tooltip="motion from each linked image to its tuned image, where reliable")
        self.parts = ipw.Checkbox(value=bool(parts), description="parts", indent=False, disabled=self.segmenter is None,
                                  tooltip=_NO_SEGMENTER if self.segmenter is None else "part masks of the segmenter")
        self._init_view(name="UnitTuner")
        self._set_range(unit)
        self._sync_strongest(unit)
        self.unit.observe(self._on_unit, names="value")
        self.strongest.observe(self._on_strongest, names="value")
        self.classes.observe(self._on_classes, names="value")
        for control in (self.value, self.seeds, self.arrows, self.parts):
            control.observe(self._on_value, names="value")
        super().__init__([ipw.HBox([self.unit, self.strongest]), ipw.HBox([self.value, self.seeds, self.classes]),
                          ipw.HBox([self.arrows, self.parts]), self.image, self.label, self.error,
                          self._export_bar()])
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
        if change["new"] is not None and not self._syncing:
            self.unit.value = change["new"]

    def _on_classes(self, change: dict) -> None:
        """New seeds: as many as shown now (or at first), round-robin over the selected classes (none: all)."""
        try:
            count = len(parse_seeds(self.seeds.value, len(self.linked.pairs)))
        except (ValueError, IndexError):
            count = self._n_seeds
        seeds = self.controller.default_seeds(count, classes=tuple(change["new"]) or None)
        self.seeds.value = ", ".join(map(str, seeds))

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

    def _strongest_options(self, unit: int) -> list[tuple[str, int]]:
        """The strongest units, strongest first, and ``unit`` after them (with its rank) when it is not among them."""
        options = [(f"unit {u}: effect {self.effect[u]:.3g}", u) for u in self._top_units]
        if unit not in self._top_units:
            options.append((f"unit {unit}: effect {self.effect[unit]:.3g} (rank {self.rank[unit]})", unit))
        return options

    def _sync_strongest(self, unit: int) -> None:
        """Show ``unit`` selected in the strongest menu (listed after the strongest if it is not one of them)."""
        self._syncing = True
        try:
            options = self._strongest_options(unit)
            if [value for _, value in self.strongest.options] != [value for _, value in options]:
                self.strongest.options = options
            self.strongest.value = unit
        finally:
            self._syncing = False


