"""Counterfactual paths: the images along ``clip(r - alpha s)`` beside the class probabilities along the path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from linkviz.counterfactual.trajectory import Trajectory
from linkviz.figures._common import ImageGrid, draw_grid, grid_aspect
from linkviz.plotting.figures import plot_probability_paths
from linkviz.plotting.paper_style import DOUBLE_COLUMN, paper_figure, paper_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["counterfactual_figure"]

_PLOT_INCHES = 2.4


def _indices(chosen: Sequence[int] | None, count: int, name: str) -> list[int]:
    indices = list(range(count)) if chosen is None else [int(i) for i in chosen]
    bad = [i for i in indices if not 0 <= i < count]
    if not indices or bad:
        raise IndexError(f"{name} {bad or indices} out of range for {count} {name}")
    return indices


def counterfactual_figure(trajectory: Trajectory, *, examples: Sequence[int] | None = None,
                          steps: Sequence[int] | None = None, origin: int | None = None, target: int | None = None,
                          row_labels: Sequence[str] | None = None, column_labels: Sequence[str] | None = None,
                          title: str = "", width: float = DOUBLE_COLUMN, examples_as: str = "rows") -> Figure:
    """Images along counterfactual paths (one row per example) and the class probabilities along them.

    Parameters
    ----------
    trajectory : Trajectory
        From :func:`linkviz.counterfactual.counterfactual_trajectory`: ``alphas`` (A,), ``images`` uint8
        (N, A, H, W, 3), ``probabilities`` (N, A, K), ``class_names``.
    examples : sequence of int, optional
        The paths shown (default all N), one image row each; the probability panel shows their mean and
        10-90 % band.
    steps : sequence of int, optional
        The points of the path shown as image columns (default all A); they are marked in the probability panel.
    origin, target : int, optional
        Classes drawn thick and named in the legend; default the prediction at the first and the last point
        of the first example.
    row_labels, column_labels : sequence of str, optional
        Labels of the examples and of the steps (default ``"example n"`` and ``"alpha = 0.25"``); with
        ``examples_as="columns"`` the examples' labels head the columns and the steps' label the rows.
    title : str
    width : float
        Figure width in inches.
    examples_as : {"rows", "columns"}
        One image row per example with the probability panel beside the images, or one column per example (a
        row per step, e.g. a "before" and an "after" row of many examples) with the panel below them.

    Returns
    -------
    matplotlib.figure.Figure
        ``axes[0]``: the images (rows and columns labelled); ``axes[1]``: probability against alpha, with a
        legend of the classes.

    Raises
    ------
    IndexError
        For an example or step that is not in the trajectory.
    ValueError
        For an ``examples_as`` other than "rows" or "columns".
    """
    if examples_as not in ("rows", "columns"):
        raise ValueError(f'examples_as must be "rows" or "columns"; got {examples_as!r}')
    images, alphas = np.asarray(trajectory.images), np.asarray(trajectory.alphas, dtype=np.float64)
    probabilities = np.asarray(trajectory.probabilities, dtype=np.float64)
    examples = _indices(examples, images.shape[0], "examples")
    steps = _indices(steps, len(alphas), "steps")
    n_classes = probabilities.shape[-1]
    names = list(trajectory.class_names or [str(k) for k in range(n_classes)])
    predicted = probabilities[examples[0]].argmax(axis=-1)
    origin = int(predicted[0]) if origin is None else int(origin)
    target = int(predicted[-1]) if target is None else int(target)
    legend_names = [name + (" (origin)" if k == origin else " (target)" if k == target else "")
                    for k, name in enumerate(names)]
    example_labels = list(row_labels or [f"example {n}" for n in examples])
    step_labels = list(column_labels or [f"alpha = {alphas[s]:.2f}" for s in steps])
    shown = images[np.ix_(examples, steps)]
    by_column = examples_as == "columns"
    grid = (ImageGrid.from_stack(shown.swapaxes(0, 1), row_labels=step_labels, column_labels=example_labels)
            if by_column else ImageGrid.from_stack(shown, row_labels=example_labels, column_labels=step_labels))
    image_width = width if by_column else width - _PLOT_INCHES
    height = max(grid_aspect(grid) * image_width + 0.5, 1.9)
    with paper_style():
        figure = paper_figure(width, height + by_column * _PLOT_INCHES + 0.3 * bool(title))
        left, right = (figure.add_gridspec(2, 1, height_ratios=(height, _PLOT_INCHES)) if by_column
                       else figure.add_gridspec(1, 2, width_ratios=(image_width, _PLOT_INCHES)))
        draw_grid(figure.add_subplot(left), grid)
        ax = figure.add_subplot(right)
        plot_probability_paths(alphas, probabilities[examples], legend_names, highlight=(origin, target), ax=ax)
        for alpha in sorted({float(alphas[s]) for s in steps}) if len(steps) < len(alphas) else ():
            ax.axvline(alpha, color="0.5", linewidth=0.6, linestyle=":")
        ax.set_xlabel("alpha (position along r - alpha s)")
        ax.legend(loc="best", fontsize=6)
        if title:
            figure.suptitle(title)
    return figure
