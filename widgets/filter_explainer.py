"""FilterExplainer: a unit's LaViSE words with their votes, next to its top images and its activation maps on them."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as ipw
import numpy as np
import torch
from torch import nn

from linkviz.controllers.filter_explaining import ExplanationView, FilterExplaining
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.lavise.explain import LaviseExplanation
from linkviz.models import Classifier, ClassifierSpec
from linkviz.widgets.base import ViewWidget

__all__ = ["FilterExplainer"]


class FilterExplainer(ViewWidget):
    """The words LaViSE gives a unit, with their votes, beside its top images and the unit's maps on them.

    A thin view over :class:`linkviz.controllers.FilterExplaining`. The words and per-image nearest words come
    from ``explanation``. With ``model``, a second row shows the unit's activation map on each top image as a
    heat map (one forward pass of ``k`` images per unit change, in a :class:`LatestWinsWorker`, cached per unit).

    Parameters
    ----------
    explanation : LaviseExplanation
        From :func:`linkviz.lavise.explain_units`.
    probe : ProbeDataset or ndarray of uint8, shape (N, H, W, 3)
        The reference images the explanation was computed on.
    model : nn.Module or Classifier, optional
        The explained network, for the activation maps.
    spec : ClassifierSpec, optional
        Input preprocessing for ``model``.
    device : str or torch.device, optional
        Where ``model`` runs.
    unit : int, optional
        Initial unit (default the first explained).
    k : int
        Top images shown (the first ``k`` where the unit is active).

    Raises
    ------
    ValueError
        For an explanation without units, a bad ``k``, or images that do not match the explanation.
    KeyError
        If ``unit`` was not explained.
    """

    shown: ExplanationView

    def __init__(self, explanation: LaviseExplanation, probe: ProbeDataset | np.ndarray, *,
                 model: nn.Module | Classifier | None = None, spec: ClassifierSpec | None = None,
                 device: str | torch.device | None = None, unit: int | None = None, k: int = 5) -> None:
        self.controller = FilterExplaining(explanation, probe, model=model, spec=spec, device=device, k=k)
        unit = self.controller.units[0] if unit is None else int(unit)
        explanation.words(unit)  # KeyError for a unit that was not explained
        self.unit = ipw.Dropdown(options=[(self.controller.option(u), u) for u in self.controller.units],
                                 value=unit, description="unit")
        self._init_view(name="FilterExplainer", image_format="png")
        self.words, self.image_words = ipw.HTML(), ipw.HTML()
        self.unit.observe(self._on_unit, names="value")
        super().__init__([self.unit, ipw.HBox([self.words, ipw.VBox([self.image, self.image_words])]),
                          self.error, self._export_bar()])
        self._show(self.controller.compute(unit))

    @property
    def explanation(self) -> LaviseExplanation:
        return self.controller.explanation

    @property
    def model(self) -> nn.Module | Classifier | None:
        return self.controller.model

    def _on_unit(self, change: dict) -> None:
        self._request(self.controller.compute, int(change["new"]))

    def _show(self, view: ExplanationView) -> None:
        super()._show(view)
        if not view.images:
            self.image.value = b""
        self.words.value = view.words_html
        self.image_words.value = view.image_words_html

    def _snapshot_parts(self) -> Sequence[str]:
        """The words and the per-image words under the images."""
        return (self.words.value, self.image_words.value, self.error.value)
