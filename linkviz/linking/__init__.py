"""Linking in Style: the link r -> w, its fitting and its evaluation."""

from linkviz.linking.cycle import fit_cycle_link
from linkviz.linking.evaluate import LinkEvaluation, evaluate_link
from linkviz.linking.fit import LinkFit, fit_linear_link
from linkviz.linking.link import LinearLink
from linkviz.linking.linked_model import LinkedModel, balanced_seeds, build_linked_model
from linkviz.linking.mlp import MLPLink, fit_mlp_link
from linkviz.linking.refine import RefinedLink
from linkviz.linking.similarity import SpaceSimilarity, space_similarity
from linkviz.linking.unit_stats import UnitStats

__all__ = [
    "LinearLink",
    "LinkEvaluation",
    "LinkFit",
    "LinkedModel",
    "MLPLink",
    "RefinedLink",
    "SpaceSimilarity",
    "UnitStats",
    "balanced_seeds",
    "build_linked_model",
    "evaluate_link",
    "fit_cycle_link",
    "fit_linear_link",
    "fit_mlp_link",
    "space_similarity",
]
