"""mIoU on hand-computed label maps, and the few-shot curve's table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linkviz.segmentation import class_part_iou, confusion_matrix, fewshot_curve, mean_iou

TARGET = np.array([[[0, 0, 1], [1, 2, 2]]])
PREDICTED = np.array([[[0, 1, 1], [1, 2, 0]]])


def test_confusion_matrix_counts_target_rows_and_predicted_columns():
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(confusion_matrix(PREDICTED, TARGET, n_classes=3), expected)


def test_mean_iou_on_hand_computed_maps():
    # class 0: 1 shared of 3 in the union; class 1: 2 of 3; class 2: 1 of 2.
    miou, per_class = mean_iou(PREDICTED, TARGET, n_classes=3)
    np.testing.assert_allclose(per_class, [1 / 3, 2 / 3, 1 / 2])
    assert miou == pytest.approx(0.5)


def test_mean_iou_accepts_tensors_and_pools_pixels_over_images():
    predicted = np.concatenate([PREDICTED, TARGET])     # image 2 is perfect
    target = np.concatenate([TARGET, TARGET])
    miou, per_class = mean_iou(torch.from_numpy(predicted), torch.from_numpy(target), n_classes=3)
    np.testing.assert_allclose(per_class, [3 / 5, 4 / 5, 3 / 4])   # pooled counts, not the mean of two mIoUs
    assert miou == pytest.approx((3 / 5 + 4 / 5 + 3 / 4) / 3)


def test_perfect_prediction_scores_one():
    miou, per_class = mean_iou(TARGET, TARGET, n_classes=3)
    assert miou == 1.0
    np.testing.assert_array_equal(per_class, [1.0, 1.0, 1.0])


def test_class_absent_everywhere_is_left_out():
    miou, per_class = mean_iou(PREDICTED, TARGET, n_classes=4, ignore_absent=False)
    assert np.isnan(per_class[3])
    assert miou == pytest.approx(0.5)


def test_predicted_class_absent_from_target_is_ignored_or_scores_zero():
    predicted = np.array([[[0, 1, 1], [1, 2, 3]]])   # the last pixel (class 2) is called class 3, absent from target
    miou, per_class = mean_iou(predicted, TARGET, n_classes=4)
    np.testing.assert_allclose(per_class[:3], [1 / 2, 2 / 3, 1 / 2])
    assert np.isnan(per_class[3])
    assert miou == pytest.approx(5 / 9)
    miou, per_class = mean_iou(predicted, TARGET, n_classes=4, ignore_absent=False)
    assert per_class[3] == 0.0
    assert miou == pytest.approx(5 / 12)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"predicted hold label ids \[5\]"):
        mean_iou(np.full_like(TARGET, 5), TARGET, n_classes=3)
    with pytest.raises(ValueError, match="target hold label ids"):
        mean_iou(TARGET, -TARGET, n_classes=3)
    with pytest.raises(ValueError, match="same shape"):
        mean_iou(PREDICTED[:, :1], TARGET, n_classes=3)
    with pytest.raises(ValueError, match="integer"):
        mean_iou(PREDICTED.astype(float), TARGET, n_classes=3)
    with pytest.raises(ValueError, match="empty"):
        mean_iou(np.zeros((0, 4, 4), int), np.zeros((0, 4, 4), int), n_classes=3)


def test_fewshot_curve_returns_a_tidy_table(blob_masks, encoded_features):
    masks = blob_masks(5, size=16, n_classes=3, seed=0)
    features = encoded_features(masks, n_classes=3, noise=0.1, extra_channels=1, seed=1)
    table = fewshot_curve(features[:3], masks[:3], features[3:], masks[3:], n_classes=3, ks=(1, 3), epochs=2,
                          class_names=("background", "a", "b"), seed=0)
    assert list(table.columns) == ["k", "repeat", "label", "iou", "miou"]
    assert len(table) == 2 * 3
    assert table.groupby("k").label.apply(list).to_dict() == {1: ["background", "a", "b"], 3: ["background", "a", "b"]}
    assert (table.groupby("k").miou.nunique() == 1).all()
    assert table.miou.between(0, 1).all()
    with pytest.raises(ValueError, match="within"):
        fewshot_curve(features[:3], masks[:3], features[3:], masks[3:], n_classes=3, ks=(4,))


def test_class_part_iou_scores_each_class_on_its_own_images_and_labels():
    # Labels: 0 background, 1 cap, 2 crown, 3 wall. Class "mushroom" shows 0, 1; "house" shows 0, 3.
    target = np.array([[[0, 1], [1, 1]],         # mushroom
                       [[0, 0], [1, 1]],         # mushroom
                       [[0, 3], [3, 3]]])        # house
    predicted = np.array([[[0, 2], [1, 1]],      # a crown on the mushroom's cap
                          [[0, 1], [1, 1]],
                          [[0, 3], [3, 0]]])
    table = class_part_iou(predicted, target, [0, 0, 1], class_labels={"mushroom": [0, 1], "house": [0, 3]},
                           label_names=["background", "cap", "crown", "wall"])
    assert list(table.columns) == ["class", "part", "label", "iou", "miou", "n_images"]
    assert table[["class", "part"]].values.tolist() == [["mushroom", "background"], ["mushroom", "cap"],
                                                        ["house", "background"], ["house", "wall"]]
    # mushroom images pooled: background 2 of 3 (one background pixel called cap); cap 4 of 6 in the union
    # (one cap pixel called crown). house: background 1 of 2; wall 2 of 3.
    np.testing.assert_allclose(table.iou, [2 / 3, 4 / 6, 1 / 2, 2 / 3])
    np.testing.assert_allclose(table.miou, [2 / 3, 2 / 3, 7 / 12, 7 / 12])
    assert table.n_images.tolist() == [2, 2, 1, 1]
    # the same numbers as mean_iou on one class's images, over the labels that occur there
    _, per_label = mean_iou(predicted[:2], target[:2], n_classes=4)
    np.testing.assert_allclose(per_label[[0, 1]], table.iou[:2])


def test_class_part_iou_leaves_out_absent_labels_and_classes_without_images():
    target = np.zeros((1, 2, 2), np.int64)
    table = class_part_iou(target, target, [0], class_labels={"a": [0, 1], "b": [0, 2]}, label_names="xyz")
    assert table["class"].tolist() == ["a", "a"] and np.isnan(table.iou[1]) and table.miou[0] == 1.0
    with pytest.raises(ValueError, match="one class per map"):
        class_part_iou(target, target, [0, 1], class_labels={"a": [0], "b": [0]}, label_names="xyz")
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        class_part_iou(target, target, [2], class_labels={"a": [0], "b": [0]}, label_names="xyz")
