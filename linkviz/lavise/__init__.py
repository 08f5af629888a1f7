"""LaViSE: describe filters of a CNN with words from an open vocabulary (Yang, Kim & Joo, CVPR 2022).

An explainer head is trained on a frozen classifier to map masked-pooled target-layer features of concept regions
to word embeddings (CSMR loss); a filter is then described by the words nearest to the head's output for its
filter-attention vectors on its top images, voted across images. recall@s is measured against Network Dissection
ground truth, and the unseen-concept test trains on part of the concepts only.
"""

from linkviz.lavise.attention import ATTENTION_VARIANTS, filter_attention
from linkviz.lavise.evaluate import RECALL_S, RecallResult, evaluate_recall, ground_truth, recall_at_s
from linkviz.lavise.explain import VOTE_MODES, LaviseExplanation, explain_units, top_images
from linkviz.lavise.head import ExplainerHead, TrainedExplainer, load_explainer
from linkviz.lavise.loss import csmr_loss
from linkviz.lavise.pooling import masked_pool, resize_masks
from linkviz.lavise.semantic_space import (
    BRODEN_SUFFIXES,
    GLOVE_6B_50D,
    OutOfVocabularyError,
    SemanticSpace,
    concept_words,
    load_glove_6b_50d,
)
from linkviz.lavise.train import RegionFeatures, region_features, train_explainer
from linkviz.lavise.unseen import UnseenConceptResult, split_concepts, unseen_concept_test

__all__ = [
    "ATTENTION_VARIANTS", "BRODEN_SUFFIXES", "GLOVE_6B_50D", "RECALL_S", "VOTE_MODES", "ExplainerHead", "LaviseExplanation",
    "OutOfVocabularyError", "RecallResult", "RegionFeatures", "SemanticSpace", "TrainedExplainer",
    "UnseenConceptResult", "concept_words", "csmr_loss", "evaluate_recall", "explain_units", "filter_attention",
    "ground_truth", "load_explainer", "load_glove_6b_50d", "masked_pool", "recall_at_s", "region_features",
    "resize_masks", "split_concepts", "top_images", "train_explainer", "unseen_concept_test",
]
