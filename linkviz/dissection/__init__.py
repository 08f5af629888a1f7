"""Network Dissection: probe data (Broden format and the toy world), exact thresholds, IoU tally, unit labels."""

from linkviz.dissection.activations import iter_layer_activations, layer_activations
from linkviz.dissection.axis_alignment import (
    AxisAlignmentResult,
    axis_alignment,
    fractional_rotation,
    random_rotation,
    rotated_units,
)
from linkviz.dissection.broden import BrodenFormatError, read, write
from linkviz.dissection.concept_pca import ConceptPCA, concept_pca
from linkviz.dissection.dissect import DETECTOR_IOU, DissectionResult, dissect, dissection_cache_key
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.dissection.probe_perturbations import AddNoise, Perturbation, Rotate, ShufflePatches, slide_perturbations
from linkviz.dissection.quantile import TopQuantile, lite_level, unit_quantiles
from linkviz.dissection.report import (
    UnitImages,
    display_label,
    mask_outline,
    overlay,
    summary_line,
    summary_table,
    unit_images,
    with_causal_scores,
)
from linkviz.dissection.robustness import RobustnessResult, detector_robustness
from linkviz.dissection.tally import Tally, TallyCounts, best_labels, iou_matrix, upsample
from linkviz.dissection.top_images import TopImages, top_image_indices

__all__ = [
    "DETECTOR_IOU", "AddNoise", "AxisAlignmentResult", "BrodenFormatError", "ConceptPCA",
    "DissectionResult", "Perturbation", "ProbeDataset", "RobustnessResult", "Rotate", "ShufflePatches", "Tally",
    "TallyCounts", "TopImages", "TopQuantile", "UnitImages", "axis_alignment", "best_labels",
    "concept_pca", "detector_robustness", "display_label", "dissect", "dissection_cache_key", "fractional_rotation",
    "iou_matrix", "iter_layer_activations", "layer_activations", "lite_level", "mask_outline", "overlay",
    "random_rotation", "read", "rotated_units", "slide_perturbations", "summary_line", "summary_table",
    "top_image_indices", "unit_images", "unit_quantiles", "upsample", "with_causal_scores", "write",
]
