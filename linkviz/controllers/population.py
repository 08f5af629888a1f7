"""PopulationAnalysis: label vectors, sparsity, tSNE and clusters of a population of tuned units, a concept finder,
and the agreement of dissection, LaViSE and tuning on each unit.

The plain-Python state behind :class:`linkviz.widgets.PopulationDashboard`: the math comes from
:mod:`linkviz.quantify.population`, the figures from :mod:`linkviz.plotting.population`; results are typed,
with a tidy table (``to_frame``) and a matplotlib figure (``figure``, built without pyplot).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from linkviz.figures.population import agreement_figure, population_figure
from linkviz.plotting.paper_style import paper_figure, paper_style
from linkviz.plotting.population import clustermap_figure, count, plot_concept_effects, plot_label_sparsity
from linkviz.quantify.changes import ChangeTable
from linkviz.quantify.method_agreement import DETECTOR_IOU, ConceptVocabulary, MethodAgreement, method_agreement
from linkviz.quantify.population import (
    LabelClustering,
    LabelVectors,
    Scaling,
    UnitEmbedding,
    cluster_label_vectors,
    find_selective_units,
    label_sparsity,
    label_vectors,
    parse_sign,
    tsne_embedding,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["COLOUR_BY", "ConceptRanking", "PopulationAnalysis", "PopulationView"]

#: What the tSNE map can be coloured by: each unit's strongest label, or the agreement of the three methods.
COLOUR_BY: tuple[str, ...] = ("strongest_label", "agreement")
ColourBy = Literal["strongest_label", "agreement"]

def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda x: f"{x:.3g}", border=0)


@dataclass(frozen=True, eq=False, kw_only=True)
class ConceptRanking:
    """Units selective for a concept (label, metric, direction), strongest first.

    Attributes
    ----------
    label, metric : str
    sign : int
        +1 for increases, -1 for decreases.
    table : DataFrame
        Rows of :func:`linkviz.quantify.find_selective_units` (``rank, unit, effect, ci_low, ci_high, ...``).
    """

    label: str
    metric: str
    sign: int
    table: pd.DataFrame

    @property
    def units(self) -> list[int]:
        return [int(unit) for unit in self.table["unit"]]

    @property
    def title(self) -> str:
        return f"{self.metric} of {self.label} {'increases' if self.sign > 0 else 'decreases'}"

    @property
    def html(self) -> str:
        """A header and a compact table (or a note that no unit was found): rank, unit, effect with its
        confidence interval, seeds, Cohen's d and selectivity, narrow enough to sit beside the unit list."""
        header = (f"<b>{html.escape(self.metric)}</b> of <b>{html.escape(self.label)}</b> "
                  f"{'increases' if self.sign > 0 else 'decreases'}: {count(len(self.table), 'unit')}")
        if not len(self.table):
            return header + "<br><i>no unit changes it significantly in this direction</i>"
        table = self.table
        compact = pd.DataFrame({
            "#": table["rank"], "unit": table["unit"],
            "effect [CI]": [f"{row.effect:.3g} [{row.ci_low:.3g}, {row.ci_high:.3g}]" for row in table.itertuples()],
            "n": table["n"], "d": table["cohens_d"], "selectivity": table["selectivity"]})
        return (header + '<div style="font-size:90%">' + _html_table(compact) + "</div>"
                "<small>effect: mean change with its confidence interval over seeds; d: Cohen's d; n: seeds</small>")

    def options(self) -> list[tuple[str, int]]:
        """(text, unit) for a list of the found units."""
        return [(f"#{row.rank} unit {row.unit}: effect {row.effect:.3g} [{row.ci_low:.3g}, {row.ci_high:.3g}], "
                 + f"selectivity {row.selectivity:.2f}", int(row.unit)) for row in self.table.itertuples()]

    def to_frame(self) -> pd.DataFrame:
        """The ranking, one row per unit found."""
        return self.table.reset_index(drop=True)

    def figure(self, *, width_inches: float = 3.5) -> Figure:
        """Effect of each found unit with its confidence interval (pyplot-free, in the paper style)."""
        with paper_style():
            figure = paper_figure(width_inches, 1.2 + 0.2 * max(len(self.table), 2))
            plot_concept_effects(self.table, ax=figure.add_subplot())
            figure.suptitle(f"units whose tuning: {self.title}")
        return figure


@dataclass(frozen=True, eq=False, kw_only=True)
class PopulationView:
    """The population at a glance: sparsity, tSNE, clusters, and the selected unit and concept, if any.

    Attributes
    ----------
    vectors : LabelVectors
    sparsity : DataFrame
        ``unit, metric, sparsity, index`` (:func:`linkviz.quantify.label_sparsity`).
    embedding : UnitEmbedding
    clustering : LabelClustering
    selected : int or None
        The selected unit, ringed in the tSNE.
    concept : ConceptRanking or None
        The last concept search.
    agreement : MethodAgreement or None
        Per-unit agreement of dissection, LaViSE and tuning, if given.
    colour_by : {"strongest_label", "agreement"}
        What the tSNE map is coloured by; with "agreement", :meth:`figure` is the agreement figure.
    """

    vectors: LabelVectors
    sparsity: pd.DataFrame
    embedding: UnitEmbedding
    clustering: LabelClustering
    selected: int | None = None
    concept: ConceptRanking | None = None
    agreement: MethodAgreement | None = None
    colour_by: ColourBy = "strongest_label"

    @property
    def n_clusters(self) -> int:
        return len(np.unique(self.clustering.clusters))

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: tSNE position, strongest label, cluster, sparsity per metric, concept rank and, given an
        agreement, each method's label and concept, the agreement level, the flag and the dissenter."""
        frame = self.embedding.to_frame().merge(self.clustering.to_frame(), on="unit")
        wide = self.sparsity.pivot(index="unit", columns="metric", values="sparsity")
        wide = wide.rename(columns=lambda metric: f"sparsity_{metric}").reset_index()
        frame = frame.merge(wide, on="unit", how="left")
        frame["selected"] = frame["unit"] == self.selected
        if self.concept is not None:
            rank = dict(zip(self.concept.table["unit"], self.concept.table["rank"]))
            frame["concept_rank"] = frame["unit"].map(rank)
        if self.agreement is not None:
            table = self.agreement.to_frame().assign(
                lavise_words=lambda t: [" ".join(words) for words in t["lavise_words"]])
            frame = frame.merge(table, on="unit", how="left")
            frame["agreement"] = self.agreement.levels(frame["unit"])
            frame["flagged"] = frame["flagged"].fillna(False).astype(bool)
        return frame

    def sparsity_figure(self, *, dpi: float = 100.0) -> Figure:
        """Histograms of label sparsity per metric."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(4.5, 3.6), dpi=dpi)
        plot_label_sparsity(self.sparsity, ax=figure.add_subplot())
        return figure

    def clustermap_figure(self, *, dpi: float = 100.0) -> Figure:
        """The cluster map of the label vectors with a strip of the flat clusters."""
        from matplotlib.figure import Figure

        return clustermap_figure(self.vectors, self.clustering,
                                 figure=Figure(figsize=(7.0, 6.0), dpi=dpi, layout="constrained"))

    def figure(self, *, width_inches: float = 7.0) -> Figure:
        """The paper's population figure (:func:`linkviz.figures.population_figure`): sparsity histograms and
        the tSNE map (selected unit ringed) above the cluster map (and the concept's units); coloured by agreement,
        the agreement figure (:func:`linkviz.figures.agreement_figure`) instead."""
        if self.colour_by == "agreement" and self.agreement is not None:
            return agreement_figure(self.embedding, self.agreement, selected=self.selected, width=width_inches)
        concept = None if self.concept is None else self.concept.table
        return population_figure(self.vectors, self.sparsity, self.embedding, self.clustering, selected=self.selected,
                                 concept=concept, concept_title=self.concept.title if self.concept else "",
                                 width=width_inches)


def _check_not_empty(table: ChangeTable | pd.DataFrame) -> None:
    """TypeError for anything but a change table; ValueError, saying what to do, for one without rows."""
    if not isinstance(table, (ChangeTable, pd.DataFrame)):
        raise TypeError(f"table must be a ChangeTable or a DataFrame of changes, got {type(table).__name__}")
    frame = table.frame if isinstance(table, ChangeTable) else table
    if len(frame) == 0:
        raise ValueError("the change table is empty (0 rows): the sweep it comes from measured no unit, seed and "
                         "step, so there is no population to analyse; run the sweep over at least one unit and "
                         "seed (linkviz.tuning.run_sweep), measure it (linkviz.quantify.pipeline.sweep_changes, or "
                         "linkviz.quantify.unit_changes per unit) and pass the resulting ChangeTable")


class PopulationAnalysis:
    """The population math behind :class:`linkviz.widgets.PopulationDashboard`.

    At construction: the label vectors (:func:`~linkviz.quantify.label_vectors`), their sparsity
    (:func:`~linkviz.quantify.label_sparsity`) and tSNE (:func:`~linkviz.quantify.tsne_embedding`); on request,
    the clustering into any number of clusters (:meth:`compute`) and the concept finder (:meth:`find_concept`).

    Parameters
    ----------
    table : ChangeTable or DataFrame
        Columns ``unit, seed, step, label, metric, change`` (:func:`linkviz.quantify.unit_changes`).
    step : int, optional
        Tuning step of the label vectors; default each unit's last step.
    sparsity_index : {"hoyer", "treves_rolls"}
    scaling : {"metric", "column", "none"}
        Scaling of the label vectors for tSNE and clustering.
    seed : int
        tSNE seed (and the concept finder's bootstrap seed).
    perplexity : float
    max_iter : int
        tSNE iterations.
    ci_method : {"t", "bootstrap"}
        Confidence intervals of the concept finder.
    top : int
        Units listed by the concept finder.
    agreement : MethodAgreement, optional
        Per-unit agreement of the three methods (or build it later with :meth:`compute_agreement`).

    Raises
    ------
    ValueError
        If ``table`` has no rows (an empty sweep), naming what to run to fill it.
    """

    def __init__(self, table: ChangeTable | pd.DataFrame, *, step: int | None = None,
                 sparsity_index: Literal["hoyer", "treves_rolls"] = "hoyer", scaling: Scaling = "metric",
                 seed: int = 0, perplexity: float = 30.0, max_iter: int = 1000,
                 ci_method: Literal["t", "bootstrap"] = "t", top: int = 20,
                 agreement: MethodAgreement | None = None) -> None:
        _check_not_empty(table)
        if agreement is not None and not isinstance(agreement, MethodAgreement):
            raise TypeError(f"agreement must be a MethodAgreement (linkviz.quantify.method_agreement), got "
                            f"{type(agreement).__name__}")
        self.agreement = agreement
        self.table = table
        self.scaling = scaling
        self.options = {"step": step, "method": ci_method, "top": top, "seed": seed}
        self.vectors = label_vectors(table, step=step)
        self.sparsity = label_sparsity(self.vectors, index=sparsity_index)
        self.embedding = tsne_embedding(self.vectors, seed=seed, perplexity=perplexity, max_iter=max_iter,
                                        scaling=scaling)

    @property
    def units(self) -> np.ndarray:
        """The units of the table, int of shape (U,), ascending."""
        return self.vectors.units

    def check_unit(self, unit: int) -> int:
        """``unit`` as int; ValueError if it is not in the table."""
        unit = int(unit)
        if unit not in self.vectors.units:
            raise ValueError(f"unit {unit} is not in the table (its units: {self.vectors.units.min()}.."
                             f"{self.vectors.units.max()})")
        return unit

    def clusters(self, n_clusters: int) -> LabelClustering:
        """Ward clustering of the (scaled) label vectors cut into ``n_clusters``."""
        return cluster_label_vectors(self.vectors, n_clusters=int(n_clusters), scaling=self.scaling)

    def compute(self, n_clusters: int, *, selected: int | None = None, concept: ConceptRanking | None = None,
                colour_by: ColourBy = "strongest_label") -> PopulationView:
        """The population view with ``n_clusters`` clusters, the ``selected`` unit, the last concept search and
        the map coloured by ``colour_by`` ("agreement" needs an agreement)."""
        if selected is not None:
            selected = self.check_unit(selected)
        self.check_colour_by(colour_by)
        return PopulationView(vectors=self.vectors, sparsity=self.sparsity, embedding=self.embedding,
                              clustering=self.clusters(n_clusters), selected=selected, concept=concept,
                              agreement=self.agreement, colour_by=colour_by)

    def check_colour_by(self, colour_by: str) -> str:
        """``colour_by`` if the map can be coloured by it; ValueError otherwise, saying what to pass."""
        if colour_by not in COLOUR_BY:
            raise ValueError(f"colour_by must be one of {COLOUR_BY}; got {colour_by!r}")
        if colour_by == "agreement" and self.agreement is None:
            raise ValueError("colour_by='agreement' needs the methods' agreement: pass agreement=method_agreement(...)"
                             " or call compute_agreement(vocabulary, dissection=..., lavise=...) first")
        return colour_by

    def compute_agreement(self, vocabulary: ConceptVocabulary, *, dissection: pd.DataFrame | None = None,
                          lavise: pd.DataFrame | None = None, n_words: int = 5, min_iou: float = DETECTOR_IOU,
                          causal_scores: pd.DataFrame | None = None,
                          extra: pd.DataFrame | None = None) -> MethodAgreement:
        """Agreement of dissection, LaViSE and tuning's strongest change in this table's label vectors, kept as
        :attr:`agreement` (:func:`linkviz.quantify.method_agreement.method_agreement`, with the causal scores of
        the labels, :func:`linkviz.labels.causal_scores`, and ``extra`` per-unit columns)."""
        self.agreement = method_agreement(vocabulary=vocabulary, dissection=dissection, lavise=lavise,
                                          tuning=self.vectors, n_words=n_words, min_iou=min_iou,
                                          causal_scores=causal_scores, extra=extra)
        return self.agreement

    def groups(self, colour_by: ColourBy) -> np.ndarray:
        """What each tSNE point is coloured by, str of shape (U,) in ``embedding.units`` order."""
        if self.check_colour_by(colour_by) == "agreement":
            return self.agreement.levels(self.embedding.units)
        return self.embedding.strongest_label

    def flagged_options(self) -> list[tuple[str, int]]:
        """(text, unit) for a list of the units whose methods disagree (all disagree first); empty without an
        agreement."""
        if self.agreement is None:
            return []
        return [(f"unit {row.unit}: {row.agreement}; " + ", ".join(
                    f"{method} {_shown(getattr(row, f'{method}_concept'))}" for method in ("dissection", "lavise",
                                                                                           "tuning")),
                 int(row.unit)) for row in self.agreement.flagged().itertuples()]

    def sparsity_ranking(self) -> pd.DataFrame:
        """All units, sparsest first (mean over metrics; units that change nothing last).

        Returns
        -------
        DataFrame
            ``unit, strongest_label, sparsity`` (sparsity NaN for units that change nothing).
        """
        mean = self.sparsity.groupby("unit")["sparsity"].mean().reindex(self.vectors.units)
        order = np.argsort(-mean.fillna(-1.0).to_numpy(), kind="stable")
        return pd.DataFrame({"unit": self.vectors.units[order],
                             "strongest_label": self.embedding.strongest_label[order],
                             "sparsity": mean.to_numpy()[order]})

    def sparsity_options(self) -> list[tuple[str, int]]:
        """(text, unit) for a list of all units, sparsest first."""
        return [(f"unit {row.unit}: {row.strongest_label} (sparsity {row.sparsity:.2f})", int(row.unit))
                for row in self.sparsity_ranking().itertuples()]

    def find_concept(self, label: str, metric: str, sign: int | str) -> ConceptRanking:
        """Units selective for a concept, strongest first (:func:`linkviz.quantify.find_selective_units`)."""
        found = find_selective_units(self.table, label=label, metric=metric, sign=sign, **self.options)
        return ConceptRanking(label=str(label), metric=str(metric), sign=parse_sign(sign), table=found)

    def largest_changes(self, unit: int, count: int = 5) -> pd.DataFrame:
        """The unit's ``count`` largest mean changes: ``label, metric, change`` by decreasing magnitude."""
        row = int(np.flatnonzero(self.vectors.units == self.check_unit(unit))[0])
        values = self.vectors.values[row]  # [L, M]
        order = np.argsort(-np.abs(values), axis=None, kind="stable")[:count]
        return pd.DataFrame({"label": [self.vectors.labels[i // values.shape[1]] for i in order],
                             "metric": [self.vectors.metrics[i % values.shape[1]] for i in order],
                             "change": values.flat[order]})

    def describe(self, unit: int) -> str:
        """HTML: the unit, its strongest label and its largest mean changes."""
        unit = self.check_unit(unit)
        strongest = self.embedding.strongest_label[int(np.flatnonzero(self.embedding.units == unit)[0])]
        items = [f"{html.escape(str(row.label))} {html.escape(str(row.metric))} {row.change:+.3g}"
                 for row in self.largest_changes(unit).itertuples()]
        text = (f"unit <b>{unit}</b>, strongest label <b>{html.escape(str(strongest))}</b>; largest mean "
                f"changes: {', '.join(items)}")
        if self.agreement is None or unit not in set(self.agreement.units.tolist()):
            return text
        row = self.agreement.table.set_index("unit").loc[unit]
        labels = (f"dissection {_shown(row['dissection_label'])} (IoU {float(row['dissection_iou']):.2f}) -> "
                  f"{_shown(row['dissection_concept'])}; LaViSE {_shown(' '.join(row['lavise_words']) or None)} -> "
                  f"{_shown(row['lavise_concept'])}; tuning {_shown(row['tuning_label'])} "
                  f"{_shown(row['tuning_metric'])} -> {_shown(row['tuning_concept'])}")
        return text + f"<br>methods: <b>{row['agreement']}</b> ({html.escape(labels)})"


def _shown(value: object) -> str:
    """A label as text, "-" where it is missing."""
    return "-" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
