"""Network Dissection: probe data (Broden format and the toy world), exact thresholds, IoU tally, unit labels."""

from linkviz.dissection.broden import BrodenFormatError, ProbeDataset, read, write
from linkviz.dissection.dissect import DETECTOR_IOU, DissectionResult, dissect, dissection_cache_key
from linkviz.dissection.quantile import TopQuantile, lite_level, unit_quantiles
from linkviz.dissection.tally import Tally, TallyCounts, best_labels, iou_matrix, upsample
from linkviz.dissection.toy_probe import TOY_CATEGORIES, build_toy_probe, toy_label_names

__all__ = [
    "DETECTOR_IOU", "TOY_CATEGORIES", "BrodenFormatError", "DissectionResult", "ProbeDataset", "Tally",
    "TallyCounts", "TopQuantile", "best_labels", "build_toy_probe", "dissect", "dissection_cache_key", "iou_matrix",
    "lite_level", "read", "toy_label_names", "unit_quantiles", "upsample", "write",
]
