"""UnitTuning: one unit of r set to a value, the linked images of a few base examples, with flow and parts."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from linkviz.controllers.view import GridView
from linkviz.images import tile_images
from linkviz.linking.linked_model import LinkedModel
from linkviz.models.edits import as_unit
from linkviz.plotting.overlays import label_colors, overlay_parts, to_hex
from linkviz.tracking import MotionField, draw_motion_arrows, residual_flow
from linkviz.tuning.perturbations import effect_sizes, tuned_latents

__all__ = ["PartsFunction", "TuningView", "UnitTuning", "parse_seeds"]

TILE_PIXELS = 128
_CACHED_SEED_SETS = 8
ARROW_QUANTILE = 0.85  # arrows for the strongest 15 % of motions
ARROW_SCALE = 2.0  # drawn length per pixel of motion: fixed, so arrow lengths compare across slider values

PartsFunction = Callable[[np.ndarray | torch.Tensor], np.ndarray | torch.Tensor]
"""Images uint8 [N, H, W, 3] (or ws [N, num_ws, w_dim]) -> integer part masks [N, h, w]."""


@dataclass(frozen=True, eq=False, kw_only=True)
class TuningView(GridView):
    """Originals above their linked images with one unit set to a value (and, optionally, arrows and parts).

    Attributes
    ----------
    unit : int
    value : float
    seeds : tuple of int
        Base examples, one column each.
    original_images, tuned_images : ndarray of uint8, shape (S, H, W, 3)
        The linked reconstructions of the seeds and the same with the unit set to the value.
    arrows, parts : bool
        Which overlays were computed.
    fields : tuple of MotionField
        Flow from each original to its tuned image (empty without arrows).
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
        """One row per seed (and part, with parts): unit, value, mean flow magnitude, part pixel counts."""
        rows = []
        for column, seed in enumerate(self.seeds):
            row = {"unit": self.unit, "value": self.value, "seed": seed}
            if self.fields:
                row["mean_flow_magnitude"] = float(np.hypot(*self.fields[column].flow).mean())
            if self.original_parts is None or self.tuned_parts is None:
                rows.append(row)
                continue
            ids = np.union1d(np.unique(self.original_parts[column]), np.unique(self.tuned_parts[column]))
            rows.extend({**row, "part": int(part), "original_pixels": int((self.original_parts[column] == part).sum()),
                         "tuned_pixels": int((self.tuned_parts[column] == part).sum())} for part in ids)
        return pd.DataFrame(rows)


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

    A view costs one generator pass: the tuned latents come from :func:`linkviz.tuning.tuned_latents`
    (linearity of the link); the originals (and their parts) are cached per set of seeds.

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
        Name of each part id, for the legend (id 0 is the untinted background).
    """

    def __init__(self, linked: LinkedModel, *, segmenter: PartsFunction | None = None,
                 segment_from: Literal["images", "ws"] = "images", part_labels: Sequence[str] | None = None) -> None:
        if segment_from not in ("images", "ws"):
            raise ValueError(f"segment_from must be 'images' or 'ws'; got {segment_from!r}")
        self.linked = linked
        self.segmenter = segmenter
        self.segment_from = segment_from
        self.part_labels = None if part_labels is None else tuple(str(name) for name in part_labels)
        self.effect = effect_sizes(linked.link, linked.stats)
        self.rank = np.empty(len(self.effect), dtype=np.int64)
        self.rank[np.argsort(-self.effect, kind="stable")] = np.arange(1, len(self.effect) + 1)
        self._originals_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._original_parts_cache: dict[tuple[int, ...], np.ndarray] = {}

    def strongest_units(self, count: int) -> np.ndarray:
        """The ``count`` units with the largest effect size, strongest first."""
        return np.argsort(-self.effect, kind="stable")[:count]

    def compute(self, unit: int, value: float, seeds: Sequence[int], *, arrows: bool = False,
                parts: bool = False) -> TuningView:
        """The view of ``unit`` set to ``value`` for the base examples ``seeds``.

        Raises
        ------
        IndexError
            If the unit or a seed is out of range.
        ValueError
            If ``parts`` is asked for without a segmenter, or the segmenter returns malformed masks.
        """
        unit = self.linked.stats.check_unit(unit)
        seeds = parse_seeds(seeds, len(self.linked.pairs))
        if parts and self.segmenter is None:
            raise ValueError("parts=True needs a segmenter (images or ws -> integer part masks)")
        originals = self._originals(seeds)
        r_base = torch.as_tensor(self.linked.pairs.r[list(seeds)], dtype=torch.float32).to(self.linked.device)
        w = tuned_latents(self.linked.link, r_base, unit, np.array([value], dtype=np.float32))[:, 0]
        tuned = self.linked.render(w)
        zoom = max(1, TILE_PIXELS // tuned.shape[1])
        common = {"columns": len(seeds), "unit": unit, "value": value, "seeds": seeds,
                  "title": f"unit {unit} = {value:.3g}", "column_labels": tuple(f"seed {seed}" for seed in seeds),
                  "original_images": originals, "tuned_images": tuned}
        if not (arrows or parts):
            grid = tile_images(np.concatenate([originals, tuned]), columns=len(seeds), zoom=zoom, gap=1)
            return TuningView(grid=grid, rows=2, row_labels=("original", "tuned"),
                              caption_html=self._label(unit, value), **common)
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
        return TuningView(grid=grid, rows=len(rows), row_labels=("original", "tuned", "flow")[:len(rows)],
                          caption_html=label, arrows=arrows, parts=parts, fields=fields,
                          original_parts=original_parts, tuned_parts=tuned_parts, **common)

    def _originals(self, seeds: tuple[int, ...]) -> np.ndarray:
        if seeds not in self._originals_cache:
            if len(self._originals_cache) >= _CACHED_SEED_SETS:
                self._originals_cache.clear()
            self._originals_cache[seeds] = self.linked.render(self.linked.pairs.w[list(seeds)])
        return self._originals_cache[seeds]

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
                     f"{100 * (1 - ARROW_QUANTILE):.0f}% drawn at {ARROW_SCALE:g}x length, hue = direction "
                     f"(red right, cyan left).")
        return text

    def _legend(self, ids: np.ndarray) -> str:
        colors = label_colors(int(ids.max(initial=0)) + 1)
        names = self.part_labels or ()
        return ", ".join(f'<span style="color:{to_hex(colors[i])}">&#9632;</span> '
                         f"{html.escape(names[i] if i < len(names) else f'part {i}')}" for i in ids if i != 0)


def _zoomed(images: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(images, zoom, axis=1), zoom, axis=2) if zoom > 1 else images


def _arrow_row(originals: np.ndarray, fields: Sequence[MotionField], *, zoom: int) -> np.ndarray:
    """Each original, darkened and magnified, with the arrows of its strongest motions."""
    step = max(2, round(originals.shape[1] / 12))
    return np.stack([draw_motion_arrows(original, field, quantile=ARROW_QUANTILE, step=step, upscale=zoom,
                                        arrow_scale=ARROW_SCALE, max_magnitude=float(step),
                                        thickness=max(1, min(3, zoom // 2)))
                     for original, field in zip(originals, fields)])
