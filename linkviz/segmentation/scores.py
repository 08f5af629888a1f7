"""Segmentation quality: confusion matrix, per-label IoU and mIoU, per-class part IoU of generated images, and
few-shot mIoU as a function of k."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from linkviz.segmentation.fewshot import predict_parts, train_few_shot

__all__ = ["class_part_iou", "confusion_matrix", "fewshot_curve", "mean_iou"]


def _label_array(masks: Tensor | np.ndarray, *, name: str, n_classes: int) -> np.ndarray:
    array = masks.detach().cpu().numpy() if isinstance(masks, Tensor) else np.asarray(masks)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(f"{name} must hold integer label ids; got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    bad = np.unique(array[(array < 0) | (array >= n_classes)])
    if bad.size:
        raise ValueError(f"{name} hold label ids {bad[:10].tolist()} outside [0, {n_classes})")
    return array


def confusion_matrix(predicted: Tensor | np.ndarray, target: Tensor | np.ndarray, *, n_classes: int) -> np.ndarray:
    """Pixel counts of (target label, predicted label) pairs.

    Parameters
    ----------
    predicted, target : Tensor or ndarray of int, shape [...]
        Label maps of the same shape (any number of images), ids in ``[0, n_classes)``.
    n_classes : int
        Number of labels.

    Returns
    -------
    ndarray of int64, shape [n_classes, n_classes]
        ``matrix[t, p]`` = number of pixels with target ``t`` predicted as ``p``.

    Raises
    ------
    ValueError
        If the shapes differ, the arrays are empty or hold ids outside ``[0, n_classes)``.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    predicted = _label_array(predicted, name="predicted", n_classes=n_classes)
    target = _label_array(target, name="target", n_classes=n_classes)
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {predicted.shape} and target {target.shape} must have the same shape")
    if target.size == 0:
        raise ValueError("cannot score empty label maps")
    counts = np.bincount(target.ravel() * n_classes + predicted.ravel(), minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def mean_iou(
    predicted: Tensor | np.ndarray,
    target: Tensor | np.ndarray,
    *,
    n_classes: int,
    ignore_absent: bool = True,
) -> tuple[float, np.ndarray]:
    """Intersection over union per class and its mean, pooled over all pixels of all images.

    Parameters
    ----------
    predicted, target : Tensor or ndarray of int, shape [N, R, R] (or any shape, the same for both)
        Predicted and true label maps, ids in ``[0, n_classes)``.
    n_classes : int
        Number of labels.
    ignore_absent : bool
        Leave out of the mean (IoU NaN) the classes that never occur in ``target``. Otherwise such a class
        scores 0 if it is predicted anywhere; a class neither in ``target`` nor predicted is always NaN.

    Returns
    -------
    miou : float
        Mean of the per-class IoUs that are not NaN.
    per_class_iou : ndarray of float64, shape [n_classes]
        ``|P_c & T_c| / |P_c | T_c|`` of each class, NaN where left out.

    Raises
    ------
    ValueError
        If the shapes differ, the arrays are empty or hold ids outside ``[0, n_classes)``.
    """
    per_class = _iou(confusion_matrix(predicted, target, n_classes=n_classes), ignore_absent=ignore_absent)
    return float(np.nanmean(per_class)), per_class


def _iou(matrix: np.ndarray, *, ignore_absent: bool) -> np.ndarray:
    """Per-label IoU from a confusion matrix, NaN where left out (see :func:`mean_iou`)."""
    intersection = np.diag(matrix).astype(np.float64)
    in_target, in_predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    union = in_target + in_predicted - intersection
    left_out = (union == 0) | ((in_target == 0) if ignore_absent else False)
    return np.where(left_out, np.nan, intersection / np.where(union == 0, 1, union))


def class_part_iou(
    predicted: Tensor | np.ndarray,
    target: Tensor | np.ndarray,
    classes: Tensor | np.ndarray | Sequence[int],
    *,
    class_labels: Mapping[str, Sequence[int]],
    label_names: Sequence[str],
) -> pd.DataFrame:
    """IoU of each part of each class on the images of that class, and the class's mIoU.

    For the images of class k (pooled over their pixels, as in :func:`mean_iou`), the IoU of every label of the
    class (its parts and, if listed, the background); the class's mIoU is the mean of those IoUs. A label of the
    class that never occurs in its images' targets is left out (NaN), as ``mean_iou(..., ignore_absent=True)``
    does; a label predicted on a class that cannot show it (a crown on a mushroom) costs the IoU of the part
    those pixels belong to.

    Parameters
    ----------
    predicted, target : Tensor or ndarray of int, shape [N, R, R]
        Predicted and true label maps, ids in ``[0, len(label_names))``.
    classes : Tensor, ndarray or sequence of int, shape [N]
        Class of each image: an index into ``class_labels`` (in its order).
    class_labels : mapping of str to sequence of int
        Class name -> the label ids scored for that class, e.g. ``{"mushroom": [0, 1, 2], ...}``.
    label_names : sequence of str
        Name of each label id.

    Returns
    -------
    pandas.DataFrame
        One row per (class, label), classes in the order of ``class_labels`` (those without images left out),
        with columns ``class``, ``part`` (label name), ``label`` (id), ``iou``, ``miou`` (the class's mean IoU,
        the same on its rows) and ``n_images``.

    Raises
    ------
    ValueError
        If shapes differ, ids are out of range, or ``classes`` does not give one class per image.
    """
    n_labels = len(label_names)
    predicted = _label_array(predicted, name="predicted", n_classes=n_labels)
    target = _label_array(target, name="target", n_classes=n_labels)
    names = list(class_labels)
    classes = _label_array(np.asarray(classes) if not isinstance(classes, Tensor) else classes, name="classes",
                           n_classes=len(names))
    if predicted.shape != target.shape or predicted.ndim < 1 or classes.shape != predicted.shape[:1]:
        raise ValueError(f"predicted {predicted.shape}, target {target.shape} and classes {classes.shape} must be "
                         "label maps of the same shape [N, ...] and one class per map")
    rows = []
    for k, name in enumerate(names):
        chosen = classes == k
        if not chosen.any():
            continue
        labels = [int(label) for label in class_labels[name]]
        _label_array(np.asarray(labels, np.int64), name=f"class_labels[{name!r}]", n_classes=n_labels)
        matrix = confusion_matrix(predicted[chosen], target[chosen], n_classes=n_labels)
        ious = _iou(matrix, ignore_absent=True)[labels]
        miou = float(np.nanmean(ious)) if not np.isnan(ious).all() else float("nan")
        rows += [{"class": name, "part": label_names[label], "label": label, "iou": float(iou), "miou": miou,
                  "n_images": int(chosen.sum())} for label, iou in zip(labels, ious)]
    return pd.DataFrame(rows, columns=["class", "part", "label", "iou", "miou", "n_images"])


def _class_names(class_names: Sequence[str] | None, n_classes: int) -> list[str]:
    if class_names is None:
        return [str(c) for c in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(f"got {len(class_names)} class names for n_classes={n_classes}")
    return list(class_names)


def fewshot_curve(
    train_features: Tensor,
    train_masks: Tensor | np.ndarray,
    test_features: Tensor,
    test_masks: Tensor | np.ndarray,
    *,
    n_classes: int,
    ks: Iterable[int] = range(1, 11),
    repeats: int = 1,
    class_names: Sequence[str] | None = None,
    epochs: int = 100,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """Few-shot segmentation quality as a function of the number k of labelled images.

    For each repeat, the labelled pool is shuffled once (seeded) and the segmenter for each k is trained on its
    first k images, so larger k always adds images to the smaller sets; every segmenter is scored on the same
    test images against ``test_masks`` (renderer ground truth, or a reference segmenter's output).

    Parameters
    ----------
    train_features : Tensor, shape [K_max, C, R, R]
        Generator features of the pool of labelled images.
    train_masks : Tensor or ndarray of int, shape [K_max, R, R]
        Their label maps.
    test_features : Tensor, shape [N, C, R, R]
        Generator features of the evaluation images.
    test_masks : Tensor or ndarray of int, shape [N, R, R]
        Reference label maps of the evaluation images.
    n_classes : int
        Number of labels.
    ks : iterable of int
        Numbers of labelled images to try, each in ``[1, K_max]``.
    repeats : int
        Independent draws of the labelled images (and training seeds) per k.
    class_names : sequence of str, optional
        Names for the ``label`` column (default: the ids as strings).
    epochs : int
        Training epochs of each segmenter.
    seed : int
        Seeds the draws of labelled images and the training.
    device : str or torch.device
        Where to train and predict.
    progress : bool
        Show a tqdm bar over the (repeat, k) fits.

    Returns
    -------
    pandas.DataFrame
        One row per (k, repeat, label) with columns ``k``, ``repeat``, ``label``, ``iou`` (NaN for labels left
        out, see :func:`mean_iou`) and ``miou`` (that fit's mean IoU, the same on the fit's rows).
    """
    ks = sorted({int(k) for k in ks})
    train_masks = train_masks if isinstance(train_masks, Tensor) else torch.as_tensor(np.asarray(train_masks))
    names = _class_names(class_names, n_classes)
    if not ks or ks[0] < 1 or ks[-1] > len(train_features):
        raise ValueError(f"ks must be within [1, {len(train_features)}] (the labelled pool); got {ks}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    draws = np.random.default_rng(seed)
    fits = [(repeat, k) for repeat in range(repeats) for k in ks]
    orders = {repeat: draws.permutation(len(train_features)) for repeat in range(repeats)}
    rows = []
    for repeat, k in tqdm(fits, desc="few-shot curve", disable=not progress):
        chosen = torch.as_tensor(orders[repeat][:k])
        segmenter = train_few_shot(train_features[chosen], train_masks[chosen], n_classes=n_classes, epochs=epochs,
                                   seed=seed + 1000 * repeat + k, device=device)
        predicted = predict_parts(segmenter, test_features)
        miou, per_class = mean_iou(predicted, test_masks, n_classes=n_classes)
        rows += [{"k": k, "repeat": repeat, "label": name, "iou": iou, "miou": miou}
                 for name, iou in zip(names, per_class)]
    return pd.DataFrame(rows, columns=["k", "repeat", "label", "iou", "miou"])
