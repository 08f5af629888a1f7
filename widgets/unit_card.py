"""UnitCard: one unit of the last conv layer three ways: its dissection label, its LaViSE words, its tuning effect.

The units of the last convolutional layer map 1:1 onto the penultimate features ``r`` through global pooling, so
unit ``u`` of a dissection of that layer is unit ``u`` of the Linking-in-Style link.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import ipywidgets as ipw
import numpy as np
import pandas as pd
from linkviz.widgets.snapshot import with_snapshot
from linkviz.widgets.unit_tuner import UnitTuner

from linkviz.dissection.broden import ProbeDataset
from linkviz.dissection.dissect import DissectionResult
from linkviz.dissection.report import display_label, unit_images
from linkviz.lavise.explain import LaviseExplanation
from linkviz.linking.linked_model import LinkedModel
from linkviz.plotting.images import encode_image, tile_images
from linkviz.tuning.perturbations import effect_sizes

__all__ = ["UnitCard", "unit_frame"]

_TILE_PIXELS = 80
_TOP_UNITS = 20
_WORDS_SHOWN = 5


def unit_frame(dissection: DissectionResult, linked: LinkedModel,
               explanation: LaviseExplanation | None = None) -> pd.DataFrame:
    """One row per unit with what the three methods say about it.

    Parameters
    ----------
    dissection : DissectionResult
        Dissection of the last conv layer, whose ``C`` units are the penultimate units of ``linked``.
    linked : LinkedModel
        The link whose ``r`` has the same ``C`` units.
    explanation : LaviseExplanation, optional
        LaViSE words of some units of the same layer.

    Returns
    -------
    DataFrame
        ``unit, label, category, iou, is_detector`` (from :meth:`DissectionResult.to_frame`), ``words`` (the voted
        words joined by ", "; "" for units not explained), ``effect`` (:func:`linkviz.tuning.effect_sizes`) and
        ``effect_rank`` (1 = strongest).

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
    frame = dissection.to_frame()
    words = {} if explanation is None else {int(u): ", ".join(explanation.words(int(u))) for u in explanation.units}
    frame["words"] = [words.get(unit, "") for unit in frame.unit]
    effect = effect_sizes(linked.link, linked.stats)
    rank = np.empty(n_units, np.int64)
    rank[np.argsort(-effect, kind="stable")] = np.arange(1, n_units + 1)
    frame["effect"] = effect
    frame["effect_rank"] = rank
    return frame


class UnitCard(ipw.VBox):
    """One penultimate unit seen three ways: Network Dissection, LaViSE and Linking in Style.

    Shows the unit's dissection label, category and IoU with its top probe images and masks, its LaViSE words
    with votes, its effect size on the generator's latent, and (optionally) an embedded :class:`UnitTuner` that
    sets the unit and shows the linked images change. Everything except the tuner is precomputed; the tuner
    renders in its own worker.

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
    unit : int, optional
        Initial unit (default: the one with the strongest tuning effect).
    k : int
        Top images shown.
    seeds : sequence of int
        Base examples of the embedded tuner.
    tuner : bool
        Embed a :class:`UnitTuner` (one generator pass per slider release).

    Raises
    ------
    ValueError
        If the units, layers or ``k`` do not fit, or the dissection kept no top images.
    IndexError
        If ``unit`` is out of range.
    """

    def __init__(self, dissection: DissectionResult, probe: ProbeDataset, linked: LinkedModel, *,
                 explanation: LaviseExplanation | None = None, unit: int | None = None, k: int = 5,
                 seeds: Sequence[int] = (0, 1, 2, 3), tuner: bool = True) -> None:
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if dissection.top_images is None:
            raise ValueError("the dissection kept no top images; run dissect(..., top_k=10)")
        self.table = unit_frame(dissection, linked, explanation)
        self.dissection, self.probe, self.linked, self.explanation, self.k = dissection, probe, linked, explanation, k
        unit = int(np.argmin(self.table.effect_rank)) if unit is None else linked.stats.check_unit(unit)
        strongest = self.table.sort_values("effect_rank").head(_TOP_UNITS)
        self.unit = ipw.BoundedIntText(value=unit, min=0, max=len(self.table) - 1, description="unit")
        self.strongest = ipw.Dropdown(options=[(self._option(row), int(row.unit)) for row in
                                               strongest.itertuples(index=False)], value=None,
                                      description="strongest")
        self.image = ipw.Image(format="png")
        self.dissection_html, self.lavise_html, self.linking_html = ipw.HTML(), ipw.HTML(), ipw.HTML()
        self.tuner = UnitTuner(linked, seeds=seeds, unit=unit) if tuner else None
        self.unit.observe(self._on_unit, names="value")
        self.strongest.observe(self._on_strongest, names="value")
        sections = ipw.HBox([self.dissection_html, self.lavise_html, self.linking_html],
                            layout=ipw.Layout(justify_content="space-between"))
        children = [ipw.HBox([self.unit, self.strongest]), sections, self.image]
        if self.tuner is not None:
            self.tuner.unit.observe(self._on_tuner_unit, names="value")
            children.append(self.tuner)
        super().__init__(children)
        self._show(unit)

    def _option(self, row) -> str:
        label = "none" if row.label == "none" else display_label(str(row.label))
        return f"unit {row.unit}: {label}; effect {row.effect:.3g}"

    # --- controls ---

    def _on_unit(self, change: dict) -> None:
        unit = int(change["new"])
        self._show(unit)
        if self.tuner is not None:
            self.tuner.unit.value = unit

    def _on_strongest(self, change: dict) -> None:
        if change["new"] is not None:
            self.unit.value = change["new"]

    def _on_tuner_unit(self, change: dict) -> None:
        if 0 <= int(change["new"]) < len(self.table):
            self.unit.value = int(change["new"])

    # --- state -> traits ---

    def _show(self, unit: int) -> None:
        row = self.table.iloc[unit]
        self.shown_unit = unit
        listed = [value for _, value in self.strongest.options]
        self.strongest.value = unit if unit in listed else None
        shown = unit_images(self.dissection, self.probe, unit, k=self.k).overlays()
        zoom = max(1, _TILE_PIXELS // shown.shape[1])
        self.image.value = encode_image(tile_images(shown, columns=len(shown), zoom=zoom, gap=1), format="png")
        self.dissection_html.value = self._dissection_section(row)
        self.lavise_html.value = self._lavise_section(unit)
        self.linking_html.value = self._linking_section(row)

    def _dissection_section(self, row) -> str:
        label = "none" if row.label == "none" else display_label(str(row.label))
        verdict = "detector" if row.is_detector else f"not a detector (IoU ≤ {self.dissection.detector_threshold:g})"
        return (f"<b>Network Dissection</b> ({html.escape(self.dissection.layer)})<br>unit {row.unit}: "
                f"<b>{html.escape(label)}</b> ({html.escape(str(row.category))}), IoU {row.iou:.3f}, {verdict}. "
                f"Below: its top {self.k} probe images, masked where it fires.")

    def _lavise_section(self, unit: int) -> str:
        if self.explanation is None:
            return "<b>LaViSE</b><br><i>no explanation given</i>"
        if unit not in set(self.explanation.units.tolist()):
            return "<b>LaViSE</b><br><i>unit not explained</i>"
        frame = self.explanation.to_frame()
        frame = frame[frame.unit == unit].head(_WORDS_SHOWN)
        if frame.empty:
            return "<b>LaViSE</b><br><i>no words: inactive on its top images</i>"
        words = ", ".join(f"<b>{html.escape(r.word)}</b> ({r.votes:.3g})" for r in frame.itertuples(index=False))
        return f"<b>LaViSE</b> words (votes)<br>{words}"

    def _linking_section(self, row) -> str:
        stats = self.linked.stats
        unit = int(row.unit)
        return (f"<b>Linking in Style</b><br>effect size <b>{row.effect:.3g}</b> (rank {row.effect_rank} of "
                f"{len(self.table)}); r observed {stats.min[unit]:.3g} … {stats.max[unit]:.3g}, mean "
                f"{stats.mean[unit]:.3g}")

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot: top images, the three sections and the tuner's images."""
        parts = [self.dissection_html.value, self.lavise_html.value, self.linking_html.value]
        if self.tuner is not None:
            encoded = base64.b64encode(self.tuner.image.value).decode("ascii")
            parts += [f'<img src="data:image/{self.tuner.image.format};base64,{encoded}"/>', self.tuner.label.value]
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.image, *parts)
