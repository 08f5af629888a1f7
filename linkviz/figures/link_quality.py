"""Link quality and space similarity (the paper's Fig. 3): originals above their cycled images, the held-out
cycle-consistency metrics, and how alike the spaces W and R are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.figures._common import GridLike, ImageGrid, draw_grid, grid_aspect
from linkviz.linking.evaluate import LinkEvaluation
from linkviz.linking.similarity import SpaceSimilarity
from linkviz.plotting.paper_style import DOUBLE_COLUMN, paper_figure, paper_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["link_quality_figure"]

METRICS = {"w_mse": "latent MSE (w, w~)", "w_cosine": "latent cosine (w, w~)",
           "perceptual_distance": "perceptual distance", "pixel_l1": "pixel L1 (I, I~)"}
_SIMILARITY = (("ari_w", "ARI\nW"), ("ari_r", "ARI\nR"), ("rsa_similarity", "RSA\ncorr."),
               ("rsa_distance", "RSA\ndist."))


def _per_example(evaluation: LinkEvaluation | pd.DataFrame) -> pd.DataFrame:
    """One row per example with the metrics and ``class_agreement`` / ``label_agreement`` where known."""
    if isinstance(evaluation, LinkEvaluation):
        return evaluation.per_example_frame()
    frame = pd.DataFrame(evaluation).copy()
    if "class_agreement" not in frame and {"original", "cycled"} <= set(frame):
        frame["class_agreement"] = frame["original"] == frame["cycled"]
    if "label_agreement" not in frame and {"label", "cycled"} <= set(frame):
        frame["label_agreement"] = frame["label"] == frame["cycled"]
    return frame


def _images(originals: np.ndarray | None, cycled: np.ndarray | None, images: GridLike | None,
            examples: Sequence[int] | None) -> GridLike | None:
    if images is not None:
        if originals is not None or cycled is not None:
            raise ValueError("give either images (a tiled grid) or originals and cycled, not both")
        return images
    if originals is None and cycled is None:
        return None
    if originals is None or cycled is None or np.shape(originals) != np.shape(cycled):
        raise ValueError(f"originals and cycled must both be given, of the same shape (S, H, W, 3); got "
                         f"{np.shape(originals)} and {np.shape(cycled)}")
    names = [f"example {i}" for i in (examples if examples is not None else range(len(originals)))]
    return ImageGrid.from_stack(np.stack([originals, cycled]), row_labels=("original", "cycled"),
                                column_labels=names)


def _metric_panel(ax: Axes, values: np.ndarray, metric: str) -> list:
    """Histogram of one metric over the examples with its mean; returns the two artists for the legend."""
    values = values[np.isfinite(values)]
    _, _, patches = ax.hist(values, bins=min(20, max(len(values), 1)), color="#4c72b0", alpha=0.8)
    mean = float(values.mean()) if len(values) else float("nan")
    line = ax.axvline(mean, color="#c44e52", linewidth=1.0)
    ax.set(xlabel=METRICS[metric], ylabel="examples")
    ax.set_title(f"mean {mean:.3g}", loc="left")
    return [patches[0] if len(patches) else line, line]


def _agreement_panel(ax: Axes, frame: pd.DataFrame) -> None:
    names = [name for name in ("class_agreement", "label_agreement") if name in frame]
    shares = [float(frame[name].astype(float).mean()) for name in names]
    bars = ax.bar(range(len(names)), shares, color=["#55a868", "#8172b2"][:len(names)], width=0.6)
    ax.bar_label(bars, labels=[f"{share:.0%}" for share in shares], fontsize=6, padding=1)
    ax.set_xticks(range(len(names)), labels=[name.removesuffix("_agreement") for name in names])
    ax.set(ylim=(0, 1.15), ylabel="share of examples", xlim=(-0.7, len(names) - 0.3))
    ax.set_title("prediction of I~ agrees", loc="left")
    if "class_agreement" in names:  # the chance levels the class agreement must beat, where known
        for baseline, style, label in (("majority_agreement", "--", "majority class"),
                                       ("shuffled_agreement", ":", "shuffled r")):
            if baseline in frame:
                ax.hlines(float(frame[baseline].astype(float).mean()), -0.35, 0.35, colors="0.2",
                          linestyles=style, linewidth=1.0, label=label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper right")


def _similarity_panel(ax: Axes, similarity: SpaceSimilarity) -> None:
    rng = np.random.default_rng(0)  # jitter only: fixed, so the figure is the same every time
    for k, (attribute, _) in enumerate(_SIMILARITY):
        values = np.asarray(getattr(similarity, attribute), dtype=np.float64)
        values = values[np.isfinite(values)]
        ax.scatter(k + rng.uniform(-0.15, 0.15, len(values)), values, s=4, color="0.6", linewidths=0,
                   label="repetitions" if k == 0 else None)
        if len(values):
            low, high = np.percentile(values, [2.5, 97.5])
            mean = float(values.mean())
            ax.errorbar([k], [mean], yerr=[[mean - low], [high - mean]], fmt="o", color="#c44e52", markersize=3,
                        capsize=2, label="mean, 95 % interval" if k == 0 else None)
    ax.set_xticks(range(len(_SIMILARITY)), labels=[label for _, label in _SIMILARITY])
    ax.axhline(0.0, color="0.7", linewidth=0.6)
    ax.set(ylabel="ARI / correlation", xlim=(-0.6, len(_SIMILARITY) - 0.4))
    ax.set_title("W and R alike", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0),
              title=f"{len(similarity.ari_w)} draws,\n{similarity.per_class} per class")


def link_quality_figure(evaluation: LinkEvaluation | pd.DataFrame, similarity: SpaceSimilarity | None = None, *,
                        originals: np.ndarray | None = None, cycled: np.ndarray | None = None,
                        images: GridLike | None = None, examples: Sequence[int] | None = None, title: str = "",
                        width: float = DOUBLE_COLUMN) -> Figure:
    """How well the link inverts the classifier (held-out cycle consistency), and how alike W and R are.

    Parameters
    ----------
    evaluation : LinkEvaluation or DataFrame
        :func:`linkviz.linking.evaluate_link` on held-out pairs (N examples), or a per-example table with some
        of the metric columns ``w_mse, w_cosine, perceptual_distance, pixel_l1`` and the agreement columns
        ``class_agreement, label_agreement`` or the class names ``label, original, cycled`` (as
        :attr:`linkviz.controllers.LinkPageView.table`).
    similarity : SpaceSimilarity, optional
        :func:`linkviz.linking.space_similarity`: a panel of ARI in W and R and the two RSA correlations.
    originals, cycled : ndarray of uint8, shape (S, H, W, 3), optional
        Images ``G(w)`` and ``G(w~)`` of S examples, drawn as two labelled rows.
    images : GridLike, optional
        Instead of ``originals`` and ``cycled``: an already tiled grid with its labels (e.g. a
        :class:`~linkviz.controllers.LinkPageView`).
    examples : sequence of int, optional
        Indices of the S examples, for the column labels (default 0 .. S - 1).
    title : str
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Axes: the image grid (if images are given; y tick labels "original", "cycled"), one histogram per
        metric (titled with its mean; one legend for the row), the agreement bars, then the similarity panel
        (if given, with a legend).
    """
    frame = _per_example(evaluation)
    metrics = [metric for metric in METRICS if metric in frame]
    grid = _images(originals, cycled, images, examples)
    agreement = any(name in frame for name in ("class_agreement", "label_agreement"))
    summaries = agreement + (similarity is not None)
    if not (metrics or summaries) and grid is None:
        raise ValueError(f"nothing to draw: no metric columns in {list(frame.columns)} and no images")
    heights = [min(grid_aspect(grid) * (width - 0.8), 3.5) + 0.4 if grid is not None else 0.0,
               1.8 if metrics else 0.0, 1.8 if summaries else 0.0]
    with paper_style():
        figure = paper_figure(width, sum(heights) + 0.3 * bool(title))
        used = [height for height in heights if height]
        rows = iter(figure.subfigures(len(used), 1, height_ratios=used) if len(used) > 1 else [figure])
        if grid is not None:
            draw_grid(next(rows).add_subplot(), grid)
        if metrics:
            row = next(rows)
            handles = [_metric_panel(ax, frame[metric].to_numpy(dtype=np.float64), metric)
                       for ax, metric in zip(np.atleast_1d(row.subplots(1, len(metrics))), metrics)]
            row.legend(handles=handles[0], labels=["examples", "mean"], loc="outside right upper")
        if summaries:
            row = next(rows)
            axes = np.atleast_1d(row.subplots(1, summaries, width_ratios=[1.0] * agreement + [2.2] * (
                similarity is not None)))
            if agreement:
                _agreement_panel(axes[0], frame)
            if similarity is not None:
                _similarity_panel(axes[-1], similarity)
        if title:
            figure.suptitle(title)
    return figure
