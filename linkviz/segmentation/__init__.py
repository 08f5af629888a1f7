"""Part segmentation of generated images: few-shot from generator features, and a reference from renders.

Typical use, with ``ws`` latents of k labelled generated images and their painted ``masks``::

    features = generator_features(generator, ws)                  # [k, C, R, R]
    segmenter = train_few_shot(features, masks, n_classes=3, seed=0)
    parts = predict_parts(segmenter, generator_features(generator, other_ws))
    miou, per_class = mean_iou(parts, reference_masks, n_classes=3)
"""

from linkviz.segmentation.feature_clusters import FeatureClusters, cluster_parts
from linkviz.segmentation.features import feature_layers, generator_features
from linkviz.segmentation.fewshot import PartSegmenter, check_masks, predict_parts, train_few_shot
from linkviz.segmentation.labels_io import LABELS_FILE, LabelFileError, PaintedLabels, load_labels, save_labels
from linkviz.segmentation.reference import (
    RenderSegmenter,
    images_to_tensor,
    segment_images,
    train_render_segmenter,
)
from linkviz.segmentation.scores import confusion_matrix, fewshot_curve, mean_iou

__all__ = [
    "LABELS_FILE",
    "FeatureClusters",
    "LabelFileError",
    "PaintedLabels",
    "PartSegmenter",
    "RenderSegmenter",
    "check_masks",
    "cluster_parts",
    "confusion_matrix",
    "feature_layers",
    "fewshot_curve",
    "generator_features",
    "images_to_tensor",
    "load_labels",
    "mean_iou",
    "predict_parts",
    "save_labels",
    "segment_images",
    "train_few_shot",
    "train_render_segmenter",
]
