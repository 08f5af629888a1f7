"""Network Dissection figures (matplotlib is imported inside each function; each returns its figure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..dissection.dissect import DissectionResult
from ..dissection.report import display_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_axis_alignment", "plot_concept_loadings", "plot_detectors_per_concept", "plot_robustness"]


def plot_detectors_per_concept(result: DissectionResult | pd.DataFrame, *, ax: Axes | None = None,
                               max_concepts: int | None = None) -> Figure:
    """Bar graph of detector units per concept, grouped and coloured by category (NetDissect's bar graph).

    Parameters
    ----------
    result : DissectionResult or DataFrame
        A result, or its :meth:`~linkviz.dissection.DissectionResult.detectors_per_concept` table
        (columns ``label, category, units``, already in display order).
    ax : matplotlib Axes, optional
    max_concepts : int, optional
        Show only the first this many bars.

    Returns
    -------
    Figure
    """
    from matplotlib import colormaps
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    table = result.detectors_per_concept() if isinstance(result, DissectionResult) else result
    if max_concepts is not None:
        table = table.iloc[:max_concepts]
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(max(3.0, 0.28 * len(table) + 1.2), 2.8))
    categories = list(dict.fromkeys(table["category"]))
    colours = {c: colormaps["tab10"](i % 10) for i, c in enumerate(categories)}
    positions = np.arange(len(table))
    ax.bar(positions, table["units"], color=[colours[c] for c in table["category"]], width=0.8)
    ax.set_xticks(positions, [display_label(name) for name in table["label"]], rotation=90, fontsize=7)
    ax.set_xlim(-0.6, max(len(table), 1) - 0.4)
    ax.set_ylabel("detector units")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if categories:
        handles = [Patch(color=colours[c], label=c) for c in categories]
        ax.legend(handles=handles, fontsize=7, frameon=False, ncols=min(len(categories), 6), loc="upper right")
    else:
        ax.text(0.5, 0.5, "no detectors", transform=ax.transAxes, ha="center", va="center")
    ax.spines[["top", "right"]].set_visible(False)
    if ax.figure.get_layout_engine() is None and hasattr(ax.figure, "tight_layout"):
        ax.figure.tight_layout()  # a figure with a layout engine (constrained, in linkviz.figures) keeps it
    return ax.figure


def plot_robustness(summary: pd.DataFrame, *, y: str = "unique_detectors", ax: Axes | None = None) -> Figure:
    """A dissection statistic against perturbation strength, one line per perturbation kind.

    Parameters
    ----------
    summary : DataFrame
        :meth:`~linkviz.dissection.robustness.RobustnessResult.summary` (columns ``perturbation, strength``
        and ``y``; the unperturbed row has perturbation ``"none"`` and strength 0).
    y : str
        Column to plot, e.g. ``"unique_detectors"``, ``"detectors"`` or ``"mean_detector_iou"``.
    ax : matplotlib Axes, optional
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.0))
    baseline = summary[summary.perturbation == "none"]
    for kind, rows in summary[summary.perturbation != "none"].groupby("perturbation", sort=False):
        rows = pd.concat([baseline, rows]).sort_values("strength")
        ax.plot(np.arange(len(rows)), rows[y], marker="o", label=kind)
        for x, (strength, value) in enumerate(zip(rows.strength, rows[y])):
            ax.annotate(f"{strength:g}", (x, value), textcoords="offset points", xytext=(0, 4), fontsize=6,
                        ha="center")
    ax.set(xlabel="perturbation step (strength annotated)", ylabel=y.replace("_", " "))
    if y != "mean_detector_iou":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


def plot_axis_alignment(frame: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Unique detectors against the rotation fraction ``alpha`` (mean and range over random rotations).

    Parameters
    ----------
    frame : DataFrame
        :meth:`~linkviz.dissection.axis_alignment.AxisAlignmentResult.to_frame` (columns ``alpha, seed,
        unique_detectors``).
    ax : matplotlib Axes, optional
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(4.0, 3.0))
    stats = frame.groupby("alpha")["unique_detectors"].agg(["mean", "std", "min", "max"]).reset_index()
    ax.fill_between(stats["alpha"], stats["min"], stats["max"], alpha=0.2, lw=0)
    ax.errorbar(stats["alpha"], stats["mean"], yerr=stats["std"].fillna(0.0), marker="o", capsize=3)
    ax.set(xlabel="rotation fraction alpha (0 = unit basis, 1 = random rotation)", ylabel="unique detectors")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.figure.tight_layout()
    return ax.figure


def plot_concept_loadings(loadings: pd.DataFrame, concept: str, *, component: int = 0, ax: Axes | None = None
                          ) -> Figure:
    """Loadings of every unit on a concept's principal direction (one bar per unit).

    Parameters
    ----------
    loadings : DataFrame
        :meth:`~linkviz.dissection.concept_pca.ConceptPCA.to_frame` (columns ``concept, component, unit,
        loading``).
    concept : str
    component : int
        0 for the first principal direction.
    ax : matplotlib Axes, optional
    """
    import matplotlib.pyplot as plt

    rows = loadings[(loadings.concept == concept) & (loadings.component == component)].sort_values("unit")
    if rows.empty:
        raise ValueError(f"no loadings for concept {concept!r}, component {component}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 2.6))
    ax.bar(rows["unit"], rows["loading"], width=1.0)
    top = rows.loc[rows["loading"].abs().idxmax()]
    ax.annotate(f"unit {int(top.unit)}", (top.unit, top.loading), textcoords="offset points", xytext=(0, 3),
                ha="center", fontsize=7)
    ax.set(xlabel="unit", ylabel="loading", title=f"{display_label(concept)}: PC{component + 1}")
    ax.figure.tight_layout()
    return ax.figure
