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

__all__ = [
    "SCORE_COLUMNS",
    "ConceptSegmenter",
    "UnitPresence",
    "causal_scores",
    "concept_presence",
    "score_presence",
    "shuffled_labels",
    "unit_presence",
]
