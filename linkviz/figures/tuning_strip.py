"""Unit tuning strips (the paper's Fig. 4): originals above their images with one unit set to a range of values,
with the motion as direction-coloured arrows and part overlays where the views have them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import reduce
from typing import TYPE_CHECKING, Any

import numpy as np

from linkviz.figures._common import ImageGrid, direction_wheel, draw_grid, grid_aspect, tile_gap
from linkviz.plotting.overlays import label_colors, overlay_parts
from linkviz.plotting.paper_style import DOUBLE_COLUMN, paper_figure, paper_style
from linkviz.tracking.arrows import darkened_rgb, direction_colors, strongest_motions

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ARROW_QUANTILE", "ARROW_SCALE", "tuning_strip_figure"]

ARROW_QUANTILE = 0.85
"""Arrows for the strongest 15 % of motions (as in the UnitTuner widget)."""
ARROW_SCALE = 2.0
"""Drawn arrow length per pixel of motion, the same in every panel so that lengths compare."""
_MIN_TILE_PIXELS = 64  # tiles are magnified to at least this, so part outlines stay thin
_MAX_TILE_INCHES = 1.0  # printed size of a tile at most


def _magnify(images: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(images, zoom, axis=-3), zoom, axis=-2) if zoom > 1 else images


def _with_parts(images: np.ndarray, masks: np.ndarray | None, zoom: int) -> np.ndarray:
    if masks is None:
        return _magnify(images, zoom)
    return np.stack([overlay_parts(image, mask, zoom=zoom) for image, mask in zip(images, masks)])


def _step(height: int) -> int:
    return max(2, round(height / 12))


def _group_by_unit(views: Iterable[Any]) -> dict[int, list[Any]]:
    """Views grouped by unit (in order of first appearance), each group sorted by value; one seed set per unit."""
    groups: dict[int, list[Any]] = {}
    for view in views:
        groups.setdefault(int(view.unit), []).append(view)
    if not groups:
        raise ValueError("give at least one tuning view")
    for unit, group in groups.items():
        group.sort(key=lambda view: float(view.value))
        seeds = {tuple(view.seeds) for view in group}
        if len(seeds) > 1:
            raise ValueError(f"the views of unit {unit} show different seeds {sorted(seeds)}; a strip shows one set")
    return groups


def _panel(group: Sequence[Any]) -> tuple[ImageGrid, list[tuple[int, Any]], int]:
    """The image grid of one unit (originals, then per value the tuned row and, with arrows, a flow row), the
    flow rows (grid row, view), and the magnification."""
    first = group[0]
    originals = np.asarray(first.original_images)
    zoom = max(1, -(-_MIN_TILE_PIXELS // originals.shape[1]))
    rows = [_with_parts(originals, first.original_parts, zoom)]
    labels = ["linked"]
    flows: list[tuple[int, Any]] = []
    single = len(group) == 1
    for view in group:
        rows.append(_with_parts(np.asarray(view.tuned_images), view.tuned_parts, zoom))
        labels.append("tuned" if single else f"value {float(view.value):.3g}")
        if view.fields:
            flows.append((len(rows), view))
            rows.append(_magnify(np.stack([darkened_rgb(image, field.shape, brightness=0.4, value_range=(0.0, 1.0))
                                           for image, field in zip(originals, view.fields)]), zoom))
            labels.append("flow" if single else f"flow {float(view.value):.3g}")
    columns = tuple(getattr(first, "column_labels", ()) or (f"seed {seed}" for seed in first.seeds))
    grid = ImageGrid.from_stack(np.stack(rows), row_labels=labels, column_labels=columns)
    return grid, flows, zoom


def _draw_arrows(ax: Axes, flows: list[tuple[int, Any]], zoom: int) -> None:
    """Quivers of the strongest motions on the flow rows (one per tile that moved)."""
    for row, view in flows:
        for column, field in enumerate(view.fields):
            height, width = field.shape
            tile_height, tile_width = height * zoom, width * zoom
            gap = tile_gap(height) * zoom
            step = _step(height)
            arrows = strongest_motions(field, quantile=ARROW_QUANTILE, step=step)
            if not len(arrows):
                continue
            top, left = row * (tile_height + gap), column * (tile_width + gap)
            colours = direction_colors(arrows.angle, arrows.magnitude, max_magnitude=float(step))
            x = left + (arrows.positions[:, 1] + 0.5) * zoom - 0.5
            y = top + (arrows.positions[:, 0] + 0.5) * zoom - 0.5
            ax.quiver(x, y, arrows.vectors[:, 1], arrows.vectors[:, 0], color=colours, angles="xy",
                      scale_units="xy", scale=1.0 / (ARROW_SCALE * zoom), width=0.004, headwidth=4, headlength=4)


def _part_handles(groups: dict[int, list[Any]], part_labels: Sequence[str] | None) -> list:
    from matplotlib.patches import Patch

    masks = [np.unique(m) for group in groups.values() for view in group
             for m in (view.original_parts, view.tuned_parts) if m is not None]
    if not masks:
        return []
    ids = reduce(np.union1d, masks)
    colours = label_colors(int(ids.max(initial=0)) + 1)
    names = tuple(part_labels or ())
    return [Patch(color=colours[i] / 255.0, label=names[i] if i < len(names) else f"part {i}")
            for i in ids if i != 0]


def tuning_strip_figure(views: Any | Iterable[Any], *, part_labels: Sequence[str] | None = None, title: str = "",
                        width: float = DOUBLE_COLUMN) -> Figure:
    """Tuning strips of one or more units: the originals, and for each value the images with the unit at it.

    One panel per unit, one column per seed. Rows: the originals, then per value (ascending) the tuned images
    and, when the view has motion fields, a flow row: the darkened original with arrows for the strongest 15 %
    of motions (:func:`linkviz.tracking.strongest_motions`), all at :data:`ARROW_SCALE` times their length,
    coloured by direction as :func:`linkviz.tracking.direction_colors` (the wheel beside the strips is the key).
    Part masks, when present, are tinted over the images, with a legend.

    Parameters
    ----------
    views : TuningView or iterable of TuningView
        Results of :meth:`linkviz.controllers.UnitTuning.compute` or anything with their fields: ``unit``,
        ``value``, ``seeds``, ``original_images`` and ``tuned_images`` (uint8, shape (S, H, W, 3)), ``fields``
        (S :class:`~linkviz.tracking.MotionField` or empty), ``original_parts`` and ``tuned_parts`` (int, shape
        (S, h, w), or None). The views of one unit must show the same seeds; they become one strip.
    part_labels : sequence of str, optional
        Name of each part id for the legend (id 0, the background, is not listed).
    title : str
        Figure title (without one, each panel names its unit).
    width : float
        Largest figure width in inches (tiles are printed at most 1 in wide, so few seeds make it narrower).

    Returns
    -------
    matplotlib.figure.Figure
        Axes: one image panel per unit (``axes[0]`` the first unit: y tick labels name the rows, x tick labels
        the seeds), then the direction wheel if any arrows were drawn. Parts give a figure legend.
    """
    views = [views] if hasattr(views, "unit") else list(views)
    groups = _group_by_unit(views)
    panels = {unit: _panel(group) for unit, group in groups.items()}
    any_flow = any(flows for _, flows, _ in panels.values())
    handles = _part_handles(groups, part_labels)
    strip_width = width - (1.0 if any_flow else 0.0)
    columns = max(grid.columns for grid, _, _ in panels.values())
    image_width = min(strip_width - 0.6, _MAX_TILE_INCHES * columns)  # 0.6 in for the row labels
    height = sum(grid_aspect(grid) * image_width + 0.4 for grid, _, _ in panels.values())
    width = min(width, image_width + 0.7 + (width - strip_width))
    with paper_style():
        figure = paper_figure(width, height + 0.35 * bool(handles) + 0.3 * bool(title))
        layout = figure.add_gridspec(len(panels), 2 if any_flow else 1,
                                     width_ratios=(width - 1.0, 1.0) if any_flow else None,
                                     height_ratios=[grid_aspect(grid) for grid, _, _ in panels.values()])
        for k, (unit, (grid, flows, zoom)) in enumerate(panels.items()):
            ax = draw_grid(figure.add_subplot(layout[k, 0]), grid)
            group = groups[unit]
            if len(panels) > 1 or not title:
                ax.set_title(f"unit {unit}" + (f" = {float(group[0].value):.3g}" if len(group) == 1 else ""),
                             loc="left", pad=12)
            _draw_arrows(ax, flows, zoom)
        if any_flow:
            direction_wheel(figure.add_subplot(layout[0, 1])).set_anchor("N")
        if handles:
            figure.legend(handles=handles, title="parts", loc="outside lower center", ncols=min(len(handles), 6))
        if title:
            figure.suptitle(title)
    return figure
