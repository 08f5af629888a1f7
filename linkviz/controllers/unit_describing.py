"""UnitDescribing: one unit of the last conv layer three ways: its dissection label, LaViSE words, tuning effect.

The units of the last convolutional layer map 1:1 onto the penultimate features ``r`` through global pooling, so
unit ``u`` of a dissection of that layer is unit ``u`` of the Linking-in-Style link.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.controllers.unit_tuning import UnitTuning
from linkviz.controllers.view import GridView
from linkviz.dissection.dissect import DissectionResult
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.dissection.report import display_label, unit_images, with_causal_scores
from linkviz.figures.dissection import unit_card_figure
from linkviz.images import tile_images
from linkviz.lavise.explain import LaviseExplanation
from linkviz.linking.linked_model import LinkedModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["UnitCardView", "UnitDescribing", "causal_text", "unit_frame"]

TILE_PIXELS = 80
WORDS_SHOWN = 5
_CAUSAL_SHOWN = ["unit", "label", "score", "ci_low", "ci_high"]


def causal_text(score: float, ci_low: float, ci_high: float) -> str:
    """``"+0.12 [+0.08, +0.16]"``: a causal score with its interval (``"not scored"`` for NaN)."""
    if not np.isfinite(score):
        return "not scored"
    return f"{score:+.3g} [{ci_low:+.3g}, {ci_high:+.3g}]"


def _causal_section(row, scored: pd.DataFrame) -> str:
    """The card's causal-score lines: the dissection label's score, then any other label scored for the unit."""
    if not len(scored) and not np.isfinite(row.causal_score):
        return ""
    lines = [(f"<br>causal score of <b>{html.escape(display_label(str(row.label)))}</b>: "
             f"<b>{causal_text(row.causal_score, row.causal_ci_low, row.causal_ci_high)}</b> (change of the "
             "concept's share of regenerated images from the unit's low to its high value; interval over seeds)")]
    others = scored[scored.label.astype(str) != str(row.label)]
    lines += [f"<br>causal score of <b>{html.escape(display_label(str(r.label)))}</b>: "
              f"{causal_text(r.score, r.ci_low, r.ci_high)}" for r in others.itertuples(index=False)]
    return "".join(lines)


def unit_frame(dissection: DissectionResult, linked: LinkedModel, explanation: LaviseExplanation | None = None,
               *, tuning: UnitTuning | None = None, causal_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per unit with what the three methods say about it.

    Parameters
    ----------
    dissection : DissectionResult
        Dissection of the last conv layer, whose ``C`` units are the penultimate units of ``linked``.
    linked : LinkedModel
        The link whose ``r`` has the same ``C`` units.
    explanation : LaviseExplanation, optional
        LaViSE words of some units of the same layer.
    tuning : UnitTuning, optional
        The tuning state of ``linked`` whose effect sizes to use (default: a new one).
    causal_scores : DataFrame, optional
        Causal scores of unit labels (:func:`linkviz.labels.causal_scores`: ``unit, label, score, ci_low,
        ci_high``).

    Returns
    -------
    DataFrame
        ``unit, label, category, iou, is_detector`` (from :meth:`DissectionResult.to_frame`), ``words`` (the voted
        words joined by ", "; "" for units not explained), ``effect`` (:func:`linkviz.tuning.effect_sizes`),
        ``effect_rank`` (1 = strongest) and ``causal_score, causal_ci_low, causal_ci_high`` of the dissection
        label (NaN where not scored).

    Raises
    ------
    ValueError
        If the unit counts or layers do not match.
    """
    n_units = len(dissection.thresholds)
    if n_units != linked.stats.n_units:
        raise ValueError(f"the dissection of {dissection.layer!r} has {n_units} units but the link's r has "
                         f"{linked.stats.n_units}; dissect the last conv layer, whose units are pooled into r")
    if explanation is not None and explanation.layer != dissection.layer:
        raise ValueError(f"the explanation is of layer {explanation.layer!r}, the dissection of "
                         f"{dissection.layer!r}")
    tuning = UnitTuning(linked) if tuning is None else tuning
    frame = dissection.to_frame()
    words = {} if explanation is None else {int(u): ", ".join(explanation.words(int(u))) for u in explanation.units}
    frame["words"] = [words.get(unit, "") for unit in frame.unit]
    frame["effect"] = tuning.effect
    frame["effect_rank"] = tuning.rank
    return with_causal_scores(frame, causal_scores)


@dataclass(frozen=True, eq=False, kw_only=True)
class UnitCardView(GridView):
    """One unit's top probe images (masked where it fires, one row) with what the three methods say about it.

    Attributes
    ----------
    unit : int
    layer : str
        The dissected (and explained) layer.
    label, category : str
        The unit's dissection label ("none" below every concept) and its category.
    iou : float
    is_detector : bool
    explained : bool or None
        Whether LaViSE explained the unit (None without an explanation).
    words : DataFrame
        Its LaViSE words: ``rank, word, votes`` (at most 5; empty if none).
    effect : float
        Its effect size on the generator's latent (:func:`linkviz.tuning.effect_sizes`).
    effect_rank : int
        1 = strongest of ``n_units``.
    causal_score, causal_ci_low, causal_ci_high : float
        Causal score of the dissection label and its interval over seeds (:func:`linkviz.labels.causal_scores`:
        how much the labelled concept grows in regenerated images as the unit rises); NaN when not scored.
    causal_scores : DataFrame
        Every causal score given for the unit (its label, LaViSE words, ...): ``label, score, ci_low, ci_high``.
    n_units : int
    images : ndarray of int64, shape (k,)
        Probe indices of the top images, one column each.
    maxima : ndarray of float32, shape (k,)
        The unit's spatial maximum on each.
    dissection_html, lavise_html, linking_html : str
        The three sections of the card.
    """

    unit: int
    layer: str
    label: str
    category: str
    iou: float
    is_detector: bool
    explained: bool | None
    words: pd.DataFrame
    effect: float
    effect_rank: int
    causal_score: float
    causal_ci_low: float
    causal_ci_high: float
    causal_scores: pd.DataFrame
    n_units: int
    images: np.ndarray
    maxima: np.ndarray
    dissection_html: str
    lavise_html: str
    linking_html: str

    def to_frame(self) -> pd.DataFrame:
        """One row per top image: ``unit, label, category, iou, is_detector, words, effect, effect_rank,
        causal_score, causal_ci_low, causal_ci_high, rank, image, maximum`` (``words`` joined by ", ")."""
        common = {"unit": self.unit, "label": self.label, "category": self.category, "iou": self.iou,
                  "is_detector": self.is_detector, "words": ", ".join(self.words["word"]), "effect": self.effect,
                  "effect_rank": self.effect_rank, "causal_score": self.causal_score,
                  "causal_ci_low": self.causal_ci_low, "causal_ci_high": self.causal_ci_high}
        return pd.DataFrame([{**common, "rank": rank, "image": int(image), "maximum": float(maximum)}
                             for rank, (image, maximum) in enumerate(zip(self.images, self.maxima))],
                            columns=[*common, "rank", "image", "maximum"])

    def figure(self, *, width_inches: float = 7.0) -> Figure:
        """The paper's unit card (:func:`linkviz.figures.unit_card_figure`): the masked top images above the
        IoU, the LaViSE words and the effect size."""
        return unit_card_figure(self, unit=self.unit, label=self.label, category=self.category, iou=self.iou,
                                is_detector=self.is_detector, words=None if self.explained is None else self.words,
                                effect=self.effect, effect_rank=self.effect_rank, n_units=self.n_units,
                                layer=self.layer, title=self.title, width=width_inches)


class UnitDescribing:
    """The state behind :class:`linkviz.widgets.UnitCard`: one penultimate unit seen three ways.

    Network Dissection gives the unit's label, category, IoU and top probe images with masks; LaViSE its words
    with votes; Linking in Style its effect size on the generator's latent, from a
    :class:`~linkviz.controllers.UnitTuning` of ``linked`` (:attr:`tuning`, which also renders the unit's
    tuned images). Everything is precomputed from the results except the top-image strips (a few upsamplings).

    Parameters
    ----------
    dissection : DissectionResult
        Dissection of the last conv layer (with top images).
    probe : ProbeDataset
        The probe the dissection was computed on.
    linked : LinkedModel
        Models and link; ``linked.stats.n_units`` must equal the dissection's units.
    explanation : LaviseExplanation, optional
        LaViSE words of units of the same layer.
    k : int
        Top images shown.
    causal_scores : DataFrame, optional
        Causal scores of unit labels, ``unit, label, score, ci_low, ci_high`` (from
        :func:`linkviz.labels.causal_scores`, computed once for the units of interest); the card shows the score
        of the unit's dissection label and of any other label scored for it, with their intervals.

    Raises
    ------
    ValueError
        If the units, layers or ``k`` do not fit, or the dissection kept no top images.
    """

    def __init__(self, dissection: DissectionResult, probe: ProbeDataset, linked: LinkedModel, *,
                 explanation: LaviseExplanation | None = None, k: int = 5,
                 causal_scores: pd.DataFrame | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if dissection.top_images is None:
            raise ValueError("the dissection kept no top images; run dissect(..., top_k=10)")
        self.tuning = UnitTuning(linked)
        self.table = unit_frame(dissection, linked, explanation, tuning=self.tuning, causal_scores=causal_scores)
        self.causal_scores = (pd.DataFrame(columns=_CAUSAL_SHOWN) if causal_scores is None
                              else causal_scores[_CAUSAL_SHOWN].reset_index(drop=True))
        self.dissection, self.probe, self.linked, self.explanation, self.k = dissection, probe, linked, explanation, k
        self._words = None if explanation is None else explanation.to_frame()

    @property
    def strongest_unit(self) -> int:
        """The unit with the largest tuning effect."""
        return int(self.tuning.strongest_units(1)[0])

    def strongest_options(self, count: int) -> list[tuple[str, int]]:
        """``("unit 3: sky; effect 0.52", 3)`` for the ``count`` units with the largest effect, strongest first."""
        rows = self.table.iloc[self.tuning.strongest_units(count)]
        return [(f"unit {row.unit}: {display_label(str(row.label))}; effect {row.effect:.3g}", int(row.unit))
                for row in rows.itertuples(index=False)]

    def compute(self, unit: int) -> UnitCardView:
        """The card of ``unit``; IndexError if it is out of range."""
        unit = self.linked.stats.check_unit(unit)
        row = self.table.iloc[unit]
        shown = unit_images(self.dissection, self.probe, unit, k=self.k)
        strip = shown.overlays()
        zoom = max(1, TILE_PIXELS // strip.shape[1])
        grid = tile_images(strip, columns=len(strip), zoom=zoom, gap=1)
        explained = None if self.explanation is None else unit in set(self.explanation.units.tolist())
        words = (self._words[self._words.unit == unit].head(WORDS_SHOWN)[["rank", "word", "votes"]]
                 .reset_index(drop=True) if explained else pd.DataFrame(columns=["rank", "word", "votes"]))
        scored = self.causal_scores[self.causal_scores.unit == unit][_CAUSAL_SHOWN[1:]].reset_index(drop=True)
        sections = (self._dissection_section(row), self._lavise_section(explained, words),
                    self._linking_section(row) + _causal_section(row, scored))
        label = display_label(str(row.label))
        return UnitCardView(
            grid=grid, rows=1, columns=len(strip), row_labels=(f"unit {unit}",),
            column_labels=tuple(f"image {i}" for i in shown.indices), title=f"unit {unit}: {label}",
            caption_html="<br>".join(sections), unit=unit, layer=self.dissection.layer, label=str(row.label),
            category=str(row.category), iou=float(row.iou), is_detector=bool(row.is_detector), explained=explained,
            words=words, effect=float(row.effect), effect_rank=int(row.effect_rank), n_units=len(self.table),
            causal_score=float(row.causal_score), causal_ci_low=float(row.causal_ci_low),
            causal_ci_high=float(row.causal_ci_high), causal_scores=scored,
            images=shown.indices.astype(np.int64), maxima=shown.maxima.astype(np.float32),
            dissection_html=sections[0], lavise_html=sections[1], linking_html=sections[2])

    def _dissection_section(self, row) -> str:
        verdict = "detector" if row.is_detector else f"not a detector (IoU ≤ {self.dissection.detector_threshold:g})"
        return (f"<b>Network Dissection</b> ({html.escape(self.dissection.layer)})<br>unit {row.unit}: "
                f"<b>{html.escape(display_label(str(row.label)))}</b> ({html.escape(str(row.category))}), "
                f"IoU {row.iou:.3f}, {verdict}. Below: its top {self.k} probe images, masked where it fires.")

    @staticmethod
    def _lavise_section(explained: bool | None, words: pd.DataFrame) -> str:
        if explained is None:
            return "<b>LaViSE</b><br><i>no explanation given</i>"
        if not explained:
            return "<b>LaViSE</b><br><i>unit not explained</i>"
        if words.empty:
            return "<b>LaViSE</b><br><i>no words: inactive on its top images</i>"
        listed = ", ".join(f"<b>{html.escape(r.word)}</b> ({r.votes:.3g})" for r in words.itertuples(index=False))
        return f"<b>LaViSE</b> words (votes)<br>{listed}"

    def _linking_section(self, row) -> str:
        stats, unit = self.linked.stats, int(row.unit)
        return (f"<b>Linking in Style</b><br>effect size <b>{row.effect:.3g}</b> (rank {row.effect_rank} of "
                f"{len(self.table)}); r observed {stats.min[unit]:.3g} … {stats.max[unit]:.3g}, mean "
                f"{stats.mean[unit]:.3g}")
