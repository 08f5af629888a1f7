"""The metric regressor: targets from true masks, ranking of known part sizes, saving, and the cached builders."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)

from linkviz.quantify import part_area, part_luminance
from linkviz.worlds.toy import CLASS_NAMES, PART_NAMES, render, sample_factors
from linkviz.worlds.toy.metric_regressor import (
    TARGETS,
    estimate_metrics,
    load_metric_regressor,
    metric_targets,
    regressor_scores,
    save_metric_regressor,
    train_metric_regressor,
)
from linkviz.worlds.toy.reference_models import model_identity, toy_metric_regressor

RESOLUTION = 32
MUSHROOM = CLASS_NAMES.index("mushroom")
CAP = PART_NAMES.index("cap")


def _mushrooms(n: int, *, seed: int):
    return render(sample_factors(np.full(n, MUSHROOM), seed=seed), resolution=RESOLUTION)


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures are built before the function-scoped single_thread
    try:
        train = _mushrooms(320, seed=0)
        return train_metric_regressor(train.images, train.part_masks, PART_NAMES, epochs=25, width=8, seed=0)
    finally:
        torch.set_num_threads(threads)


def test_targets_are_the_quantify_metrics_of_the_true_masks():
    batch = _mushrooms(3, seed=5)
    targets = metric_targets(batch.images, batch.part_masks, PART_NAMES)
    assert targets.shape == (3, len(PART_NAMES), len(TARGETS)) and targets.dtype == np.float32
    for i in range(3):
        cap = batch.part_masks[i] == CAP
        assert targets[i, CAP, 0] == pytest.approx(part_area(batch.images[i], cap) / RESOLUTION**2)
        assert targets[i, CAP, 1] == pytest.approx(part_luminance(batch.images[i], cap), rel=1e-5)
    roof = PART_NAMES.index("roof")  # no houses: area 0, every other target undefined
    assert (targets[:, roof, 0] == 0).all() and np.isnan(targets[:, roof, 1:]).all()
    eccentricity, c, s = targets[:, CAP, 3], targets[:, CAP, 4], targets[:, CAP, 5]
    np.testing.assert_allclose(np.hypot(c, s), eccentricity, rtol=1e-5)


def test_estimated_areas_grow_with_the_true_part_size(trained):
    """Rough per image, right on average: what a 25-epoch, width-8 regressor on 320 renders guarantees.

    Its held-out correlation for cap area is only 0.6-0.8, so single renders are often ranked wrongly (one base
    render at four cap sizes came out 78, 77, 108, 112 px for true 64, 94, 128, 181 on another machine). Over
    16 base renders at cap sizes 0.8, 1.0, 1.2 (inside the sampled range 0.75-1.25; true areas grow about
    2.2-fold), checked for training seeds 0-4 on 1 and 2 torch threads: the mean estimate rose by at least 13 px
    per step (true: 40 px), at least 14 of 16 renders grew from the smallest to the largest cap, the estimated
    growth was 0.34-0.53 of the true growth (estimates shrink towards the mean), held-out cap-area Pearson
    0.59-0.80 and background-luminance R^2 0.84-0.96. The bars below sit at about half of the worst of those runs.
    """
    sizes = np.array([0.8, 1.0, 1.2], np.float32)
    bases = sample_factors(np.full(16, MUSHROOM), seed=11)
    rows = bases[np.repeat(np.arange(len(bases)), len(sizes))]
    part_size = rows.part_size.copy()
    part_size[:, 1] = np.tile(sizes, len(bases))  # slot 1 of a mushroom is the cap
    batch = render(rows.with_values(part_size=part_size), resolution=RESOLUTION)
    true_area = (batch.part_masks == CAP).sum(axis=(1, 2)).reshape(len(bases), len(sizes)).astype(np.float64)
    assert (np.diff(true_area, axis=1) > 0).all()
    estimated = estimate_metrics(trained, batch.images)
    assert estimated.shape == (len(batch.images), len(PART_NAMES), 5)
    area = estimated[:, CAP, 0].reshape(len(bases), len(sizes))
    assert (np.diff(area.mean(axis=0)) > 7).all(), area.mean(axis=0)
    assert (area[:, -1] > area[:, 0]).mean() >= 0.75, area
    growth = (area[:, -1] - area[:, 0]).mean() / (true_area[:, -1] - true_area[:, 0]).mean()
    assert growth > 0.2, growth
    scores = regressor_scores(trained, *_held_out()).set_index(["label", "target"])
    assert scores.loc[("cap", "area"), "pearson"] > 0.3
    assert scores.loc[("background", "luminance"), "r2"] > 0.5


def _held_out():
    batch = _mushrooms(40, seed=3)
    return batch.images, batch.part_masks


def test_save_and_load_round_trip(trained, tmp_path):
    path = tmp_path / "regressor.safetensors"
    save_metric_regressor(trained, path)
    loaded = load_metric_regressor(path)
    images = _mushrooms(4, seed=9).images
    np.testing.assert_array_equal(loaded.predict(images), trained.predict(images))
    assert loaded.labels == PART_NAMES and not any(p.requires_grad for p in loaded.parameters())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable metric regressor"):
        load_metric_regressor(path)
    with pytest.raises(FileNotFoundError):
        load_metric_regressor(tmp_path / "missing.safetensors")


def test_cached_builder_trains_once_and_replaces_a_corrupt_file(tmp_path):
    options = {"samples_per_class": 2, "resolution": RESOLUTION, "epochs": 1, "width": 2}
    first = toy_metric_regressor(tmp_path, **options)
    (path,) = tmp_path.glob("metric_regressor_*.safetensors")
    again = toy_metric_regressor(tmp_path, **options)
    assert model_identity("regressor", again) == model_identity("regressor", first)
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt cached model"):
        retrained = toy_metric_regressor(tmp_path, **options)
    assert model_identity("regressor", retrained) == model_identity("regressor", first)  # seeded: same weights


def test_bad_input_raises():
    with pytest.raises(ValueError, match="uint8 RGB"):
        metric_targets(np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 8, 8), np.int64), PART_NAMES)
    with pytest.raises(ValueError, match="masks must have shape"):
        metric_targets(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 9), np.int64), PART_NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="epochs"):
            train_metric_regressor(np.zeros((2, 16, 16, 3), np.uint8), np.zeros((2, 16, 16), np.int64), PART_NAMES,
                                   epochs=0)
