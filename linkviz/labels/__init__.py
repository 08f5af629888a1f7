"""Causal checks of unit labels: move a unit through the link, regenerate, and see whether its concept grows."""

from linkviz.labels.causal_score import (
    SCORE_COLUMNS,
    UnitPresence,
    causal_scores,
    score_presence,
    shuffled_labels,
    unit_presence,
)
from linkviz.labels.concepts import ConceptSegmenter, concept_presence
from linkviz.labels.directions import DIRECTIONS, Direction, r_directions

__all__ = [
    "DIRECTIONS",
    "SCORE_COLUMNS",
    "ConceptSegmenter",
    "Direction",
    "UnitPresence",
    "causal_scores",
    "concept_presence",
    "r_directions",
    "score_presence",
    "shuffled_labels",
    "unit_presence",
]
