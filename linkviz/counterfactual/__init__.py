"""Counterfactuals in R: shifts of the penultimate activations that change the generated image's class."""

from linkviz.counterfactual.optimise import CounterfactualResult, counterfactual_loss, find_counterfactuals
from linkviz.counterfactual.trajectory import (
    Trajectory,
    counterfactual_trajectory,
    path_pca,
    top_shifted_units,
    unit_frequency,
)

__all__ = [
    "CounterfactualResult",
    "Trajectory",
    "counterfactual_loss",
    "counterfactual_trajectory",
    "find_counterfactuals",
    "path_pca",
    "top_shifted_units",
    "unit_frequency",
]
