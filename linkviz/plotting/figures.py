"""Paper-style matplotlib figures (matplotlib is imported inside each function; each returns its figure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_probability_paths(alphas: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], *,
                           highlight: Sequence[int] = (), ax: Axes | None = None) -> Figure:
    """Class probabilities along counterfactual paths: mean over examples with the 10-90 % band.

    Parameters
    ----------
    alphas : ndarray, shape (A,)
        Path positions.
    probabilities : ndarray, shape (N, A, K)
        Class probabilities of the image at each position.
    class_names : sequence of str, length K
    highlight : sequence of int
        Classes drawn thick (e.g. origin and target).
    ax : matplotlib Axes, optional
        Where to draw; without one, a new pyplot figure (for scripts). A figure with a layout engine (e.g. the
        constrained layout of :mod:`linkviz.figures`) keeps it; others are tightened.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 3.0))
    for k, name in enumerate(class_names):
        low, mean, high = (np.percentile(probabilities[:, :, k], 10, axis=0), probabilities[:, :, k].mean(0),
                           np.percentile(probabilities[:, :, k], 90, axis=0))
        width = 2.5 if k in highlight else 1.0
        (line,) = ax.plot(alphas, mean, lw=width, label=name)
        ax.fill_between(alphas, low, high, color=line.get_color(), alpha=0.15, lw=0)
    ax.set(xlabel="alpha (position along r - alpha s)", ylabel="class probability", ylim=(0, 1))
    ax.legend(fontsize=7, frameon=False)
    if ax.figure.get_layout_engine() is None and hasattr(ax.figure, "tight_layout"):
        ax.figure.tight_layout()
    return ax.figure
