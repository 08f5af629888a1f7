"""IoU tally: hand-computed fixtures in both modes, upsampling, dead units, 1x1 maps, empty concepts."""

from __future__ import annotations

import fake_dissection
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from linkviz.dissection import Tally, best_labels, dissect, iou_matrix, upsample

# Labels: 0 unlabelled, 1 "a" (category 0, object), 2 "b" (category 1, part), 3 "s" (category 2, scene).
LABEL_CATEGORY = np.array([-1, 0, 1, 2])
THRESHOLDS = np.array([0.5, 0.5])


def hand_fixture():
    """2 units, 2 images, 2x2 maps at the segmentation resolution (upsampling is the identity).

    object layer: image 0 [[1, 1], [0, 0]], image 1 [[0, 0], [1, 0]]
    part layer:   image 0 [[0, 0], [0, 0]], image 1 [[2, 0], [0, 0]]
    unit 0 on:    image 0 {(0,0), (1,0)},   image 1 {(1,1)}
    unit 1 on:    image 0 {},               image 1 {(0,0), (0,1)}
    """
    activations = torch.zeros(2, 2, 2, 2)
    activations[0, 0] = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    activations[1, 0] = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    activations[1, 1] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    objects = np.array([[[1, 1], [0, 0]], [[0, 0], [1, 0]]])
    parts = np.array([[[0, 0], [0, 0]], [[2, 0], [0, 0]]])
    return activations, np.stack([objects, parts], 1)


def run(activations, pixel=None, image=None, *, mode, label_category=LABEL_CATEGORY, thresholds=THRESHOLDS,
        shape=(2, 2)):
    tally = Tally(thresholds, label_category, n_categories=3, segmentation_shape=shape, mode=mode)
    tally.update(activations, pixel_labels=pixel, image_labels=image)
    counts = tally.counts()
    return counts, iou_matrix(counts, label_category)


def test_iou_by_hand_paper_mode():
    counts, iou = run(*hand_fixture(), mode="paper")
    # truth: "a" has 2 + 1 pixels, "b" 1 pixel; intersections: unit 0 & "a" at (0,0) of image 0, unit 1 & "b"
    # at (0,0) of image 1.
    np.testing.assert_array_equal(counts.truth, [0, 3, 1, 0])
    np.testing.assert_array_equal(counts.intersection, [[0, 1, 0, 0], [0, 0, 1, 0]])
    # objects are present in both images, parts in image 1: unit 0 counts 2 + 1 on objects and 1 on parts,
    # unit 1 counts 0 + 2 on each.
    np.testing.assert_array_equal(counts.activation, [[3, 1, 0], [2, 2, 0]])
    np.testing.assert_array_equal(counts.active, [3, 2])
    # IoU = I / (A + G - I): unit 0 "a" 1 / (3 + 3 - 1), "b" 0 / 2; unit 1 "a" 0 / 5, "b" 1 / (2 + 1 - 1).
    np.testing.assert_allclose(iou[:, 1:3], [[1 / 5, 0.0], [0.0, 1 / 2]], rtol=0, atol=1e-15)
    assert np.isnan(iou[:, 0]).all() and np.isnan(iou[:, 3]).all()  # unlabelled and no-pixel concepts skipped
    labels, scores = best_labels(iou, LABEL_CATEGORY, n_categories=3, mode="paper")
    np.testing.assert_array_equal(labels, [1, 2])
    np.testing.assert_allclose(scores, [0.2, 0.5])


def test_iou_by_hand_lite_mode():
    counts, iou = run(*hand_fixture(), mode="lite")
    # Lite counts an image toward a category only where the unit's active pixels overlap it: unit 0's pixel
    # (1,1) in image 1 touches no object pixel, so its object count is 2, not 3; it never touches a part.
    np.testing.assert_array_equal(counts.activation, [[2, 0, 0], [0, 2, 0]])
    np.testing.assert_array_equal(counts.intersection, [[0, 1, 0, 0], [0, 0, 1, 0]])
    # unit 0 "a": 1 / (2 + 3 - 1) = 1/4 instead of the paper's 1/5; the Lite epsilon is 1e-10.
    np.testing.assert_allclose(iou[:, 1:3], [[1 / 4, 0.0], [0.0, 1 / 2]], rtol=1e-9)
    labels, scores = best_labels(iou, LABEL_CATEGORY, n_categories=3, mode="lite")
    np.testing.assert_array_equal(labels, [1, 2])
    np.testing.assert_allclose(scores, [0.25, 0.5], rtol=1e-9)


@pytest.mark.parametrize("mode", ["paper", "lite"])
def test_whole_image_label_counts_every_pixel(mode):
    activations, pixel = hand_fixture()
    scene = np.array([[3], [0]])  # image 0 is a scene "s"; image 1 has none
    counts, iou = run(activations, pixel, scene, mode=mode)
    # "s" covers all 4 pixels of image 0; unit 0 is on at 2 of them, unit 1 at none.
    assert counts.truth[3] == 4
    np.testing.assert_array_equal(counts.intersection[:, 3], [2, 0])
    np.testing.assert_array_equal(counts.activation[:, 2], [2, 0])
    # unit 0: 2 / (2 + 4 - 2) = 1/2, which beats its object IoU; unit 1: 0 / (0 + 4 - 0).
    np.testing.assert_allclose(iou[:, 3], [0.5, 0.0], atol=1e-9)
    labels, _ = best_labels(iou, LABEL_CATEGORY, n_categories=3, mode=mode)
    assert labels[0] == 3


@pytest.mark.parametrize("mode", ["paper", "lite"])
def test_matches_per_unit_loop_on_random_data(mode, loop_tally):
    rng = np.random.default_rng(1)
    activations = torch.from_numpy(rng.normal(size=(5, 6, 3, 4)).astype(np.float32))
    pixel = np.where(rng.random((5, 2, 9, 12)) < 0.7, rng.integers(0, 6, (5, 2, 9, 12)), 0)
    image = rng.integers(0, 8, (5, 2))
    label_category = np.array([-1, 0, 0, 1, 1, -1, 2, 2])
    thresholds = rng.normal(0.5, 0.2, size=6)
    tally = Tally(thresholds, label_category, n_categories=3, segmentation_shape=(9, 12), mode=mode,
                  max_step_elements=6 * 108 * 2)  # forces steps of two images
    tally.update(activations[:3], pixel_labels=pixel[:3], image_labels=image[:3])
    tally.update(activations[3:], pixel_labels=pixel[3:], image_labels=image[3:])
    counts = tally.counts()
    intersection, activation, truth = loop_tally(activations, thresholds, pixel, image, label_category, 3, mode)
    np.testing.assert_array_equal(counts.intersection, intersection)
    np.testing.assert_array_equal(counts.activation, activation)
    np.testing.assert_array_equal(counts.truth, truth)


@pytest.mark.parametrize(("size", "output"), [((1, 1), (14, 12)), ((3, 5), (14, 12)), ((7, 7), (112, 112)),
                                              ((8, 8), (64, 64))])
def test_upsample_matches_torch_interpolate(size, output):
    activations = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(activations, size=output, mode="bilinear", align_corners=False)
    # torch's channels-last kernel (used for speed) agrees with the default layout to within a float32 ulp
    torch.testing.assert_close(upsample(activations, output), expected, rtol=1e-6, atol=1e-6)
    flat = upsample(activations[:, :, 0, 0], (4, 4))
    assert flat.shape == (2, 3, 4, 4)  # a flat [n, C] output is a 1x1 map, upsampled to a (near) constant
    torch.testing.assert_close(flat, activations[:, :, :1, :1].expand(2, 3, 4, 4))


def test_threshold_is_strict_and_exact_for_float64_thresholds():
    activations = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]]], dtype=torch.float32)
    label_category = np.array([-1, 0])
    pixel = np.ones((1, 1, 2, 2), dtype=np.int64)
    # the threshold equals the float32 value 0.3 exactly: strict ">" leaves one pixel on
    counts, _ = run(activations, pixel, mode="paper", label_category=label_category,
                    thresholds=np.array([float(np.float32(0.3))]))
    assert counts.active[0] == 1
    # a float64 threshold just below float32(0.3) turns it on
    below = np.nextafter(float(np.float32(0.3)), 0.0)
    counts, _ = run(activations, pixel, mode="paper", label_category=label_category, thresholds=np.array([below]))
    assert counts.active[0] == 2


@pytest.mark.parametrize("mode", ["paper", "lite"])
def test_dead_units_score_zero_and_get_no_label(mode):
    activations, pixel = hand_fixture()
    activations = torch.cat([activations, torch.zeros(2, 1, 2, 2)], 1)  # unit 2 never fires
    thresholds = np.array([0.5, 0.5, 0.0])
    tally = Tally(thresholds, LABEL_CATEGORY, n_categories=3, segmentation_shape=(2, 2), mode=mode)
    tally.update(activations, pixel_labels=pixel)
    counts = tally.counts()
    iou = iou_matrix(counts, LABEL_CATEGORY)
    assert counts.active[2] == 0
    np.testing.assert_array_equal(np.nan_to_num(iou[2]), 0.0)
    labels, scores = best_labels(iou, LABEL_CATEGORY, n_categories=3, mode=mode)
    assert labels[2] == 0 and scores[2] == 0.0


def test_one_by_one_maps_fill_the_whole_image():
    activations = torch.tensor([[[[2.0]], [[0.0]]], [[[0.0]], [[3.0]]]])  # [2 images, 2 units, 1, 1]
    _, pixel = hand_fixture()
    counts, iou = run(activations, pixel, mode="paper", thresholds=np.array([1.0, 1.0]))
    # unit 0 covers all of image 0, unit 1 all of image 1
    np.testing.assert_array_equal(counts.active, [4, 4])
    np.testing.assert_array_equal(counts.intersection[:, 1:3], [[2, 0], [1, 1]])
    # unit 0: "a" = 2 / (4 + 3 - 2); unit 1: "a" = 1 / (4 + 3 - 1), "b" = 1 / (4 + 1 - 1)
    np.testing.assert_allclose(iou[:, 1:3], [[2 / 5, 0.0], [1 / 6, 1 / 4]])
    flat_counts, _ = run(activations[:, :, 0, 0], pixel, mode="paper", thresholds=np.array([1.0, 1.0]))
    np.testing.assert_array_equal(flat_counts.intersection, counts.intersection)


def test_concept_without_pixels_is_skipped():
    activations, pixel = hand_fixture()
    label_category = np.array([-1, 0, 1, 2, 0])  # label 4 has a category but no pixels in the probe
    counts, iou = run(activations, pixel, mode="paper", label_category=label_category)
    assert counts.truth[4] == 0 and np.isnan(iou[:, 4]).all()
    labels, _ = best_labels(iou, label_category, n_categories=3)
    assert 4 not in labels


def test_all_concepts_empty_gives_none():
    activations, _ = hand_fixture()
    _, iou = run(activations, np.zeros((2, 1, 2, 2), int), mode="paper")
    labels, scores = best_labels(iou, LABEL_CATEGORY, n_categories=3)
    np.testing.assert_array_equal(labels, [0, 0])
    np.testing.assert_array_equal(scores, [0.0, 0.0])


def test_tie_rules():
    label_category = np.array([-1, 0, 1, 1])
    iou = np.array([[np.nan, 0.3, 0.3, 0.3]])
    # paper: lowest label among equals; lite: best per category, then the last category on ties
    assert best_labels(iou, label_category, n_categories=2, mode="paper")[0][0] == 1
    assert best_labels(iou, label_category, n_categories=2, mode="lite")[0][0] == 2


def test_mismatched_resolution_and_bad_labels_raise():
    activations, pixel = hand_fixture()
    tally = Tally(THRESHOLDS, LABEL_CATEGORY, n_categories=3, segmentation_shape=(4, 4))
    with pytest.raises(ValueError, match="mismatched probe resolution: label maps are 2x2"):
        tally.update(activations, pixel_labels=pixel)
    tally = Tally(THRESHOLDS, LABEL_CATEGORY, n_categories=3, segmentation_shape=(2, 2))
    with pytest.raises(ValueError, match="outside"):
        tally.update(activations, pixel_labels=pixel + 5)
    with pytest.raises(ValueError, match="shape"):
        tally.update(activations[:, :1], pixel_labels=pixel)
    with pytest.raises(ValueError, match="mode"):
        Tally(THRESHOLDS, LABEL_CATEGORY, n_categories=3, segmentation_shape=(2, 2), mode="netdissect")


def test_dissect_runs_with_the_threads_it_is_given_and_restores_them():
    probe = fake_dissection.square_probe(6, seed=0, low=180)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    seen: list[int] = []
    model[0].register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    other = 2 if before == 1 else 1
    result = dissect(model, "1", probe, quantile=0.1, batch_size=3, progress=False, threads=other)
    assert seen and set(seen) == {other}
    assert torch.get_num_threads() == before
    reference = dissect(model, "1", probe, quantile=0.1, batch_size=3, progress=False)
    np.testing.assert_array_equal(result.unit_labels, reference.unit_labels)
    np.testing.assert_allclose(result.unit_iou, reference.unit_iou)
    with pytest.raises(ValueError, match="n_threads must be at least 1; got 0"):
        dissect(model, "1", probe, quantile=0.1, progress=False, threads=0)
