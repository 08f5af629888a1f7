"""Counterfactuals in R: shifts of the penultimate activations that change the generated image's class, the paths
along them, and whether a path's latents stay within the generator's realistic range."""

from linkviz.counterfactual.minimal import find_minimal_counterfactuals
from linkviz.counterfactual.optimise import counterfactual_loss, find_counterfactuals
from linkviz.counterfactual.realism import LatentRealism, fit_latent_realism
from linkviz.counterfactual.result import CounterfactualResult
from linkviz.counterfactual.through_refined import render_through_refined_link
from linkviz.counterfactual.trajectory import (
    Trajectory,
    counterfactual_trajectory,
    path_pca,
    refined_trajectory,
    top_shifted_units,
    unit_frequency,
)

__all__ = [
    "CounterfactualResult",
    "LatentRealism",
    "Trajectory",
    "counterfactual_loss",
    "counterfactual_trajectory",
    "find_counterfactuals",
    "find_minimal_counterfactuals",
    "fit_latent_realism",
    "path_pca",
    "refined_trajectory",
    "render_through_refined_link",
    "top_shifted_units",
    "unit_frequency",
]
