"""UnitTuning: one unit of r set to a value, the linked images of a few base examples, with flow and parts."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch

from linkviz.controllers.view import GridView
from linkviz.figures.tuning_strip import tuning_strip_figure
from linkviz.images import tile_images
from linkviz.linking.linked_model import DEFAULT_EXAMPLES, LinkedModel
from linkviz.models.edits import as_unit
from linkviz.plotting.overlays import label_colors, overlay_parts, to_hex
from linkviz.tracking import MotionField, direction_legend, draw_motion_arrows, pair_flows
from linkviz.tracking.alignment import AlignMethod
from linkviz.tuning.perturbations import effect_sizes, tuned_latents

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PartsFunction", "TuningView", "UnitTuning", "parse_seeds"]

TILE_PIXELS = 128
_CACHED_SEED_SETS = 8
ARROW_QUANTILE = 0.85  # arrows for the strongest 15 % of motions
ARROW_SCALE = 2.0  # drawn length per pixel of motion: fixed, so arrow lengths compare across slider values
FLOW_WARPS, FLOW_ITERATIONS = 2, 5  # TV-L1 warps and fixed-point steps per pyramid level (skimage: 5, 10)
LEGEND_FRACTION = 4  # the direction wheel spans this fraction of the last flow tile
ROW_LABELS = ("linked G(Ar+b)", "tuned", "flow")

PartsFunction = Callable[[np.ndarray | torch.Tensor], np.ndarray | torch.Tensor]
"""Images uint8 [N, H, W, 3] (or ws [N, num_ws, w_dim]) -> integer part masks [N, h, w]."""


@dataclass(frozen=True, eq=False, kw_only=True)
class TuningView(GridView):
    """Linked images above the same with one unit set to a value (and, optionally, arrows and parts).

    Attributes
    ----------
    unit : int
    value : float
    seeds : tuple of int
        Base examples, one column each.
    original_images, tuned_images : ndarray of uint8, shape (S, H, W, 3)
        The linked reconstructions ``G(A r + b)`` of the seeds' own ``r`` and the same with the unit set to the
        value (identical where the value is the seed's own).
    arrows, parts : bool
        Which overlays were computed.
    fields : tuple of MotionField
        Flow from each linked image to its tuned image (empty without arrows), with ``reliable`` set: the pixels
        where arrows may be drawn.
    original_parts, tuned_parts : ndarray of int, shape (S, h, w), or None
        Part masks (None without parts).
    """

    unit: int
    value: float
    seeds: tuple[int, ...]
    original_images: np.ndarray
    tuned_images: np.ndarray
    arrows: bool = False
    parts: bool = False
    fields: tuple[MotionField, ...] = ()
    original_parts: np.ndarray | None = None
    tuned_parts: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per seed (and part, with parts): unit, value, flow magnitude and reliable fraction, part pixels."""
        rows = []
        for column, seed in enumerate(self.seeds):
            row = {"unit": self.unit, "value": self.value, "seed": seed}
            if self.fields:
                field = self.fields[column]
                row["mean_flow_magnitude"] = float(np.hypot(*field.flow).mean())
                row["reliable_fraction"] = float(field.trusted.mean())
            if self.original_parts is None or self.tuned_parts is None:
                rows.append(row)
                continue
            ids = np.union1d(np.unique(self.original_parts[column]), np.unique(self.tuned_parts[column]))
            rows.extend({**row, "part": int(part), "original_pixels": int((self.original_parts[column] == part).sum()),
                         "tuned_pixels": int((self.tuned_parts[column] == part).sum())} for part in ids)
        return pd.DataFrame(rows)

    def figure(self, *, width_inches: float = 7.0) -> Figure:
        """The paper's tuning strip of this view (:func:`linkviz.figures.tuning_strip_figure`): originals above
        the tuned images, the flow row with direction-coloured arrows and their colour wheel, and the part
        overlays with their legend, when they were computed."""
        return tuning_strip_figure(self, title=self.title, width=width_inches)


def parse_seeds(seeds: str | int | Sequence[int], n_examples: int) -> tuple[int, ...]:
    """Base-example indices from ``"0, 1, 2"``, ``(0, 1, 2)`` or ``0``.

    Raises
    ------
    ValueError
        If the text is not comma-separated integers, a seed is not an integer (1.9 is refused, not truncated),
        or no seed is named.
    IndexError
        If a seed is not an index of the ``n_examples`` base examples.
    """
    if isinstance(seeds, str):
        try:
            seeds = tuple(int(part) for part in seeds.replace(",", " ").split())
        except ValueError:
            raise ValueError(f"seeds must be comma-separated example indices, got {seeds!r}") from None
    seeds = tuple(as_unit(seed) for seed in (seeds if isinstance(seeds, Sequence) else (seeds,)))
    if not seeds:
        raise ValueError("name at least one seed (an index of a base example)")
    bad = [seed for seed in seeds if not 0 <= seed < n_examples]
    if bad:
        raise IndexError(f"seeds {bad} out of range for {n_examples} base examples (valid: 0..{n_examples - 1})")
    return seeds


class UnitTuning:
    """The state behind :class:`linkviz.widgets.UnitTuner`: which unit, value and seeds, and what they look like.

    Both rows are linked images: the top row the linked reconstruction ``G(A r + b)`` of each seed's own ``r``, the
    row below the same with one unit of ``r`` set to the value, so that any difference between them is the unit's
    doing (at the seed's own value the two are identical). A view costs one generator pass: the tuned latents
    come from :func:`linkviz.tuning.tuned_latents` (linearity of the link); the reconstructions (and their parts
    and image structure) are cached per set of seeds. The flow arrows come from one batched TV-L1 solve of all
    seeds, forward and backward (:func:`linkviz.tracking.pair_flows`), drawn only where the flow is reliable.

    Parameters
    ----------
    linked : LinkedModel
        The models, the link and the base pairs (seeds index ``linked.pairs``).
    segmenter : callable, optional
        Integer part masks ``[N, h, w]`` of a batch of images (uint8 ``[N, H, W, 3]``), or of latents
        ``[N, num_ws, w_dim]`` on ``linked.device`` with ``segment_from="ws"``.
    segment_from : {"images", "ws"}
        What ``segmenter`` is called with.
    part_labels : sequence of str, optional
        Name of each part id, for the legend (id ``background`` is left untinted).
    part_iou : mapping of str to float, optional
        The segmenter's measured IoU per part name on generated images (e.g. from
        :func:`linkviz.segmentation.class_part_iou`), shown next to each part in the legend so that a viewer can
        tell segmenter errors from what the unit does.
    background : int or None
        The part id that means "no part" (default 0); None for segmenters whose every id is a part, such as
        k-means clusters of generator features, so that id 0 is tinted and listed like the others.
    align_method : {"none", "phase", "features", "auto"}
        Global alignment removed before the flow (:func:`linkviz.tracking.align_images`). Default "none": both
        images come from one generator and are registered already, so the arrows show all the motion the unit
        causes, a shift of the whole object included.
    """

    def __init__(self, linked: LinkedModel, *, segmenter: PartsFunction | None = None,
                 segment_from: Literal["images", "ws"] = "images", part_labels: Sequence[str] | None = None,
                 part_iou: Mapping[str, float] | None = None, background: int | None = 0,
                 align_method: AlignMethod = "none") -> None:
        if segment_from not in ("images", "ws"):
            raise ValueError(f"segment_from must be 'images' or 'ws'; got {segment_from!r}")
        if align_method not in ("none", "phase", "features", "auto"):
            raise ValueError(f"align_method must be 'none', 'phase', 'features' or 'auto'; got {align_method!r}")
        self.linked = linked
        self.segmenter = segmenter
        self.segment_from = segment_from
        self.background = background
        self.part_iou = {} if part_iou is None else {str(name): float(iou) for name, iou in part_iou.items()}
        self.align_method = align_method
        self.part_labels = None if part_labels is None else tuple(str(name) for name in part_labels)
        self.effect = effect_sizes(linked.link, linked.stats)
        self.rank = np.empty(len(self.effect), dtype=np.int64)
        self.rank[np.argsort(-self.effect, kind="stable")] = np.arange(1, len(self.effect) + 1)
        self._cache: dict[tuple[int, ...], _SeedSet] = {}

    def strongest_units(self, count: int) -> np.ndarray:
        """The ``count`` units with the largest effect size, strongest first."""
        return np.argsort(-self.effect, kind="stable")[:count]

    @property
    def strongest_unit(self) -> int:
        """The unit with the largest effect size (rank 1), where the views open."""
        return int(self.strongest_units(1)[0])

    def default_seeds(self, n: int = DEFAULT_EXAMPLES, classes: Sequence[int | str] | None = None) -> tuple[int, ...]:
        """``n`` base examples taken round-robin over ``classes`` (default all): :meth:`LinkedModel.example_seeds`."""
        return self.linked.example_seeds(n, classes)

    def compute(self, unit: int, value: float, seeds: Sequence[int] | str | None = None, *,
                classes: Sequence[int | str] | None = None, arrows: bool = False, parts: bool = False) -> TuningView:
        """The view of ``unit`` set to ``value`` for the base examples ``seeds``.

        Parameters
        ----------
        unit : int
        value : float
        seeds : sequence of int or str, optional
            Base examples (rows of ``linked.pairs``), one column each. Default: :meth:`default_seeds`, four
            examples taken round-robin over ``classes``.
        classes : sequence of int or str, optional
            Classes (indices or names) the default seeds are taken from; only without ``seeds``.
        arrows, parts : bool
            Add the flow row / the part overlays.

        Raises
        ------
        IndexError
            If the unit, a seed or a class is out of range.
        ValueError
            If ``value`` is not a finite number (NaN and inf are refused), the unit or a seed is not an integer,
            ``parts`` is asked for without a segmenter, the segmenter returns malformed masks, or both ``seeds``
            and ``classes`` are given.
        """
        unit = self.linked.stats.check_unit(unit)
        value = self._check_value(unit, value)
        if seeds is None:
            seeds = self.default_seeds(classes=classes)
        elif classes is not None:
            raise ValueError("give seeds or classes to choose them from, not both")
        seeds = parse_seeds(seeds, len(self.linked.pairs))
        if parts and self.segmenter is None:
            raise ValueError("parts=True needs a segmenter (images or ws -> integer part masks)")
        base = self._seed_set(seeds)
        r_base = torch.as_tensor(self.linked.pairs.r[list(seeds)], dtype=torch.float32).to(self.linked.device)
        w = tuned_latents(self.linked.link, r_base, unit, np.array([value], dtype=np.float32))[:, 0]
        tuned = self.linked.render(w)
        originals = base.images
        zoom = max(1, TILE_PIXELS // tuned.shape[1])
        common = {"columns": len(seeds), "unit": unit, "value": value, "seeds": seeds,
                  "title": f"unit {unit} = {value:.3g}", "column_labels": tuple(f"seed {seed}" for seed in seeds),
                  "original_images": originals, "tuned_images": tuned}
        if not (arrows or parts):
            grid = tile_images(np.concatenate([originals, tuned]), columns=len(seeds), zoom=zoom, gap=1)
            return TuningView(grid=grid, rows=2, row_labels=ROW_LABELS[:2],
                              caption_html=self._label(unit, value, seeds), **common)
        rows, original_parts, tuned_parts = [_zoomed(originals, zoom), _zoomed(tuned, zoom)], None, None
        if parts:
            original_parts, original_row = self._original_parts(base, zoom)
            tuned_parts = self._segment(tuned, w)
            rows = [original_row, np.stack([overlay_parts(image, mask, zoom=zoom, background=self.background)
                                            for image, mask in zip(tuned, tuned_parts)])]
        fields: tuple[MotionField, ...] = ()
        if arrows:
            fields = pair_flows(originals, tuned, align_method=self.align_method, num_warp=FLOW_WARPS,
                                num_iter=FLOW_ITERATIONS)
            rows.append(_arrow_row(originals, fields, zoom=zoom))
        grid = tile_images(np.concatenate(rows), columns=len(seeds), gap=zoom)
        label = self._label(unit, value, seeds, arrows=arrows,
                            masks=(original_parts, tuned_parts) if parts else None)
        return TuningView(grid=grid, rows=len(rows), row_labels=ROW_LABELS[:len(rows)], caption_html=label,
                          arrows=arrows, parts=parts, fields=fields, original_parts=original_parts,
                          tuned_parts=tuned_parts, **common)

    def _check_value(self, unit: int, value: float) -> float:
        """``value`` as a float; TypeError for a non-number, ValueError for NaN or inf, naming the unit's range."""
        stats = self.linked.stats
        observed = f"observed {float(stats.min[unit]):.3g} … {float(stats.max[unit]):.3g}"
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"value must be a number to set unit {unit} to; got {value!r} ({type(value).__name__})"
                             f"; pick one in the unit's range ({observed})")
        if not np.isfinite(value):
            raise ValueError(f"value must be a finite number; got {value!r} for unit {unit}, which would render "
                             f"black tiles; pick one in the unit's range ({observed})")
        return float(value)

    def _seed_set(self, seeds: tuple[int, ...]) -> _SeedSet:
        """The linked latents and reconstructions of ``seeds`` (cached, at most 8 seed sets)."""
        if seeds not in self._cache:
            if len(self._cache) >= _CACHED_SEED_SETS:
                self._cache.clear()
            r = torch.as_tensor(self.linked.pairs.r[list(seeds)], dtype=torch.float32).to(self.linked.device)
            with torch.no_grad():
                w = self.linked.link.to_w(r)
            self._cache[seeds] = _SeedSet(w=w, images=self.linked.render(w))
        return self._cache[seeds]

    def _original_parts(self, base: _SeedSet, zoom: int) -> tuple[np.ndarray, np.ndarray]:
        """Part masks of the linked images and the images with the parts overlaid (both cached with the seeds)."""
        if base.parts is None:
            base.parts = self._segment(base.images, base.w)
            base.parts_row = np.stack([overlay_parts(image, mask, zoom=zoom, background=self.background)
                                       for image, mask in zip(base.images, base.parts)])
        return base.parts, base.parts_row

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

    def _label(self, unit: int, value: float, seeds: tuple[int, ...], *, arrows: bool = False,
               masks: tuple[np.ndarray, np.ndarray] | None = None) -> str:
        stats = self.linked.stats
        names = self.linked.class_names
        predicted = self.linked.pairs.predicted
        classes = ", ".join(f"{seed} {html.escape(names[predicted[seed]]) if predicted[seed] < len(names) else '?'}"
                            for seed in seeds)
        text = (f"unit <b>{unit}</b>: effect size <b>{self.effect[unit]:.3g}</b> (rank {self.rank[unit]} of "
                f"{len(self.effect)}); value <b>{value:.3g}</b> (observed {stats.min[unit]:.3g} … "
                f"{stats.max[unit]:.3g}, mean {stats.mean[unit]:.3g}). Top: linked G(A r + b), each seed's own r "
                f"through the link; below them: linked with the unit set to the value. Seeds (class): {classes}.")
        if masks is not None:
            text += " Parts: " + self._legend(np.union1d(np.unique(masks[0]), np.unique(masks[1]))) + "."
        if arrows:
            aligned = "" if self.align_method == "none" else " after global alignment"
            text += (f" Last row: motion from linked to tuned{aligned}, only where the image has structure and "
                     f"the flows both ways agree; the strongest {100 * (1 - ARROW_QUANTILE):.0f}% drawn at "
                     f"{ARROW_SCALE:g}x length; hue = direction as on the colour wheel in the last tile's corner "
                     f"(red right, yellow-green up, cyan left, violet down), paler = shorter.")
        return text

    def _legend(self, ids: np.ndarray) -> str:
        colors = label_colors(int(ids.max(initial=0)) + 1)
        names = self.part_labels or ()
        entries = []
        for i in ids:
            if i == self.background:
                continue
            name = names[i] if i < len(names) else f"part {i}"
            quality = f" (segmenter IoU {self.part_iou[name]:.2f})" if name in self.part_iou else ""
            entries.append(f'<span style="color:{to_hex(colors[i])}">&#9632;</span> {html.escape(name)}{quality}')
        return ", ".join(entries)


@dataclass(eq=False)
class _SeedSet:
    """What a view needs of its seeds before the unit is set: linked latents [S, w_dim], images [S, H, W, 3], part
    masks [S, h, w] and the images with their parts overlaid (zoomed)."""

    w: torch.Tensor
    images: np.ndarray
    parts: np.ndarray | None = None
    parts_row: np.ndarray | None = None


def _zoomed(images: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(images, zoom, axis=1), zoom, axis=2) if zoom > 1 else images


def _arrow_row(originals: np.ndarray, fields: Sequence[MotionField], *, zoom: int) -> np.ndarray:
    """Each linked image, darkened and magnified, with the arrows of its strongest reliable motions; the last tile
    carries the direction colour wheel in its bottom-right corner."""
    step = max(2, round(originals.shape[1] / 12))
    row = np.stack([draw_motion_arrows(original, field, quantile=ARROW_QUANTILE, step=step, upscale=zoom,
                                       arrow_scale=ARROW_SCALE, max_magnitude=float(step),
                                       thickness=max(1, min(3, zoom // 2)))
                    for original, field in zip(originals, fields)])
    size = max(8, row.shape[1] // LEGEND_FRACTION)
    row[-1, -size:, -size:] = direction_legend(size)
    return row
