"""Tests for linkviz.linking.similarity on synthetic spaces with known structure."""

from __future__ import annotations

import numpy as np
import pytest

from linkviz.linking import SpaceSimilarity, space_similarity


def _clusters(n_per_class: int, n_classes: int, dim: int, *, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centers = 10 * rng.normal(size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    points = centers[labels] + spread * rng.normal(size=(len(labels), dim))
    return points, labels


def test_well_separated_classes_give_ari_one_in_both_spaces():
    w, labels = _clusters(15, 3, 4, spread=0.1, seed=0)
    r = np.maximum(w @ np.random.default_rng(1).normal(size=(4, 7)), 0) + 0.01  # ReLU features of w
    result = space_similarity(w, r, labels, repetitions=3, per_class=10, n_init=3, seed=0, progress=False)
    assert isinstance(result, SpaceSimilarity)
    np.testing.assert_allclose(result.ari_w, 1.0)
    np.testing.assert_allclose(result.ari_r, 1.0)
    assert result.per_class == 10 and list(result.classes) == [0, 1, 2]


def test_random_labels_give_ari_near_zero():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(90, 3))
    r = rng.normal(size=(90, 5))
    labels = rng.permutation(np.repeat(np.arange(3), 30))
    result = space_similarity(w, r, labels, repetitions=5, per_class=20, n_init=2, seed=1, progress=False)
    assert abs(result.ari_w.mean()) < 0.1 and abs(result.ari_r.mean()) < 0.1


def test_identical_or_rescaled_spaces_have_rsa_one():
    w, labels = _clusters(12, 2, 5, spread=3.0, seed=3)
    for r in (w, 3.0 * w + 1.0):
        result = space_similarity(w, r, labels, repetitions=2, per_class=8, n_init=1, seed=2, progress=False)
        np.testing.assert_allclose(result.rsa_similarity, 1.0, atol=1e-10)
        np.testing.assert_allclose(result.rsa_distance, 1.0, atol=1e-10)


def test_unrelated_spaces_have_rsa_near_zero():
    rng = np.random.default_rng(4)
    w, r = rng.normal(size=(60, 6)), rng.normal(size=(60, 6))
    labels = np.repeat([0, 1], 30)
    result = space_similarity(w, r, labels, repetitions=4, per_class=25, n_init=1, seed=3, progress=False)
    assert abs(result.rsa_similarity.mean()) < 0.15 and abs(result.rsa_distance.mean()) < 0.15


def test_frames_and_reproducibility():
    w, labels = _clusters(10, 3, 3, spread=2.0, seed=5)
    kwargs = {"repetitions": 4, "per_class": 6, "n_init": 2, "seed": 7, "progress": False}
    result = space_similarity(w, w[:, ::-1] ** 2, labels, **kwargs)
    again = space_similarity(w, w[:, ::-1] ** 2, labels, **kwargs)
    np.testing.assert_array_equal(result.ari_r, again.ari_r)
    np.testing.assert_array_equal(result.rsa_distance, again.rsa_distance)

    frame = result.to_frame()
    assert list(frame.columns) == ["rep", "measure", "space", "value"]
    assert len(frame) == 4 * 4
    assert set(zip(frame["measure"], frame["space"])) == {
        ("ari", "W"), ("ari", "R"), ("rsa_similarity", "W~R"), ("rsa_distance", "W~R")}

    summary = result.summary()
    assert list(summary.columns) == ["measure", "space", "mean", "std", "ci_low", "ci_high", "n"]
    assert len(summary) == 4 and (summary["n"] == 4).all()
    ari_r = summary[(summary["measure"] == "ari") & (summary["space"] == "R")].iloc[0]
    assert ari_r["mean"] == pytest.approx(result.ari_r.mean())
    assert ari_r["ci_low"] == pytest.approx(np.percentile(result.ari_r, 2.5))
    assert ari_r["ci_low"] <= ari_r["mean"] <= ari_r["ci_high"]


def test_bad_input():
    w, labels = _clusters(5, 2, 3, spread=1.0, seed=6)
    labels = labels.copy()
    labels[:2] = 1  # class 0 now has 3 examples, class 1 has 7
    with pytest.raises(ValueError, match=r"some classes have fewer \(class: count\): \{0: 3\}"):
        space_similarity(w, w, labels, per_class=4, progress=False)
    with pytest.raises(ValueError, match=r"labels must have shape \(10,\)"):
        space_similarity(w, w, labels[:-1], per_class=2, progress=False)
    with pytest.raises(ValueError, match="need at least 2 classes"):
        space_similarity(w, w, np.zeros(10, int), per_class=2, progress=False)
    with pytest.raises(ValueError, match="r has 9 rows but w has 10"):
        space_similarity(w, w[:-1], labels, per_class=2, progress=False)
    with pytest.raises(ValueError, match="repetitions must be at least 1"):
        space_similarity(w, w, labels, repetitions=0, per_class=2, progress=False)
