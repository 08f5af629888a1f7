"""Part segmentation of generated images: few-shot from generator features, and a reference from renders.

Typical use, with ``ws`` latents of k labelled generated images and their painted ``masks``::

    features = generator_features(generator, ws)                  # [k, C, R, R]
    segmenter = train_few_shot(features, masks, n_classes=3, seed=0)
    parts = predict_parts(segmenter, generator_features(generator, other_ws))
    miou, per_class = mean_iou(parts, reference_masks, n_classes=3)

For class-conditional generators, restrict each image to the parts of its class and score per class::

    allowed = class_label_mask(classes, [[0, 1], [0, 2]], n_labels=3)              # [N, 3] bool
    parts = predict_parts(segmenter, features, allowed_labels=allowed)
    table = class_part_iou(parts, reference_masks, classes, class_labels={"a": [0, 1], "b": [0, 2]},
                           label_names=["background", "x", "y"])                  # class, part, iou, miou
"""

from linkviz.segmentation.class_conditional import (
    LatentClassProbe,
    class_label_mask,
    fit_latent_class_probe,
    vote_classes,
)
from linkviz.segmentation.feature_clusters import FeatureClusters, cluster_parts
from linkviz.segmentation.features import feature_layers, generator_features
from linkviz.segmentation.fewshot import PartSegmenter, check_masks, part_log_probs, predict_parts, train_few_shot
from linkviz.segmentation.labels_io import LABELS_FILE, LabelFileError, PaintedLabels, load_labels, save_labels
from linkviz.segmentation.reference import (
    RenderSegmenter,
    images_to_tensor,
    segment_images,
    train_render_segmenter,
)
from linkviz.segmentation.scores import class_part_iou, confusion_matrix, fewshot_curve, mean_iou
from linkviz.segmentation.segmenter_io import SavedSegmenter, load_part_segmenter, save_part_segmenter

__all__ = [
    "LABELS_FILE",
    "FeatureClusters",
    "LabelFileError",
    "LatentClassProbe",
    "PaintedLabels",
    "PartSegmenter",
    "RenderSegmenter",
    "SavedSegmenter",
    "check_masks",
    "class_label_mask",
    "class_part_iou",
    "cluster_parts",
    "confusion_matrix",
    "feature_layers",
    "fewshot_curve",
    "fit_latent_class_probe",
    "generator_features",
    "images_to_tensor",
    "load_labels",
    "load_part_segmenter",
    "mean_iou",
    "part_log_probs",
    "predict_parts",
    "save_labels",
    "save_part_segmenter",
    "segment_images",
    "train_few_shot",
    "train_render_segmenter",
    "vote_classes",
]
