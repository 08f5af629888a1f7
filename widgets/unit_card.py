"""UnitCard: one unit of the last conv layer three ways: its dissection label, its LaViSE words, its tuning effect.

The units of the last convolutional layer map 1:1 onto the penultimate features ``r`` through global pooling, so
unit ``u`` of a dissection of that layer is unit ``u`` of the Linking-in-Style link.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as ipw
import pandas as pd

from linkviz.controllers.unit_describing import UnitCardView, UnitDescribing
from linkviz.dissection.dissect import DissectionResult
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.lavise.explain import LaviseExplanation
from linkviz.linking.linked_model import LinkedModel
from linkviz.widgets.base import ViewWidget
from linkviz.widgets.snapshot import snapshot_html
from linkviz.widgets.unit_tuner import UnitTuner

__all__ = ["UnitCard"]

_TOP_UNITS = 20


class UnitCard(ViewWidget):
    """One penultimate unit seen three ways: Network Dissection, LaViSE and Linking in Style.

    A thin view over :class:`linkviz.controllers.UnitDescribing`: shows the unit's dissection label, category
    and IoU with its top probe images and masks, its LaViSE words with votes, its effect size on the generator's
    latent, and (optionally) an embedded :class:`UnitTuner` that sets the unit and shows the linked images
    change, with the causal score of its label when given. Everything except the tuner is precomputed; the tuner
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
    seeds : sequence of int, optional
        Base examples of the embedded tuner (default: spread over the classes, ``linked.example_seeds()``).
    tuner : bool
        Embed a :class:`UnitTuner` (one generator pass per slider release).
    causal_scores : DataFrame, optional
        Causal scores of unit labels (:func:`linkviz.labels.causal_scores`); the Linking-in-Style section shows
        the unit's label score with its interval over seeds.

    Raises
    ------
    ValueError
        If the units, layers or ``k`` do not fit, or the dissection kept no top images.
    IndexError
        If ``unit`` is out of range.
    """

    shown: UnitCardView

    def __init__(self, dissection: DissectionResult, probe: ProbeDataset, linked: LinkedModel, *,
                 explanation: LaviseExplanation | None = None, unit: int | None = None, k: int = 5,
                 seeds: Sequence[int] | None = None, tuner: bool = True,
                 causal_scores: pd.DataFrame | None = None) -> None:
        self.controller = UnitDescribing(dissection, probe, linked, explanation=explanation, k=k,
                                         causal_scores=causal_scores)
        unit = self.controller.strongest_unit if unit is None else linked.stats.check_unit(unit)
        self.unit = ipw.BoundedIntText(value=unit, min=0, max=len(self.table) - 1, description="unit")
        self.strongest = ipw.Dropdown(options=self.controller.strongest_options(_TOP_UNITS), value=None,
                                      description="strongest")
        self._init_view(name="UnitCard", image_format="png")
        self.dissection_html, self.lavise_html, self.linking_html = ipw.HTML(), ipw.HTML(), ipw.HTML()
        self.tuner = UnitTuner(linked, seeds=seeds, unit=unit, controller=self.controller.tuning) if tuner else None
        self.unit.observe(self._on_unit, names="value")
        self.strongest.observe(self._on_strongest, names="value")
        for section in (self.dissection_html, self.lavise_html, self.linking_html):
            # equal shares of the width, text wrapped inside; below three times 16em the sections wrap to new lines
            section.layout = ipw.Layout(flex="1 1 0%", min_width="16em", margin="0 1em 0.5em 0")
        sections = ipw.HBox([self.dissection_html, self.lavise_html, self.linking_html],
                            layout=ipw.Layout(flex_flow="row wrap", align_items="flex-start", width="100%"))
        children = [ipw.HBox([self.unit, self.strongest]), sections, self.image, self.error, self._export_bar()]
        if self.tuner is not None:
            self.tuner.unit.observe(self._on_tuner_unit, names="value")
            children.append(self.tuner)
        super().__init__(children)
        self._show(self.controller.compute(unit))

    @property
    def table(self) -> pd.DataFrame:
        """One row per unit with what the three methods say (:func:`linkviz.controllers.unit_frame`)."""
        return self.controller.table

    @property
    def shown_unit(self) -> int:
        """The unit on the card."""
        return self.shown.unit

    # --- controls ---

    def _on_unit(self, change: dict) -> None:
        unit = int(change["new"])
        try:
            self._show(self.controller.compute(unit))
        except IndexError as error:
            self._show_error(error)
            return
        if self.tuner is not None:
            self.tuner.unit.value = unit

    def _on_strongest(self, change: dict) -> None:
        if change["new"] is not None:
            self.unit.value = change["new"]

    def _on_tuner_unit(self, change: dict) -> None:
        if 0 <= int(change["new"]) < len(self.table):
            self.unit.value = int(change["new"])

    # --- state -> traits ---

    def _show(self, view: UnitCardView) -> None:
        super()._show(view)
        listed = [value for _, value in self.strongest.options]
        self.strongest.value = view.unit if view.unit in listed else None
        self.dissection_html.value = view.dissection_html
        self.lavise_html.value = view.lavise_html
        self.linking_html.value = view.linking_html

    def _snapshot_parts(self) -> Sequence[str]:
        """The three sections under the top images, then the tuner's images and caption."""
        parts = [self.dissection_html.value, self.lavise_html.value, self.linking_html.value]
        if self.tuner is not None:
            parts.append(snapshot_html(self.tuner.image, self.tuner.label.value))
        return parts
