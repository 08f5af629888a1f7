"""The metric regressor: targets from true masks, ranking of known part sizes, saving, and the cached builders."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
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
    torch.set_num_threads(1)  # module fixtures are built before the function-scoped single_thread
    train = _mushrooms(160, seed=0)
    return train_metric_regressor(train.images, train.part_masks, PART_NAMES, epochs=25, width=8, seed=0)


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


def test_ranks_the_areas_of_renders_of_known_sizes(trained):
    base = sample_factors(np.full(1, MUSHROOM), seed=11)
    sizes = np.array([0.75, 0.9, 1.05, 1.25], np.float32)
    rows = base[np.zeros(len(sizes), dtype=np.int64)]
    part_size = rows.part_size.copy()
    part_size[:, 1] = sizes  # slot 1 of a mushroom is the cap
    batch = render(rows.with_values(part_size=part_size), resolution=RESOLUTION)
    true_area = (batch.part_masks == CAP).sum(axis=(1, 2))
    assert (np.diff(true_area) > 0).all()
    estimated = estimate_metrics(trained, batch.images)
    assert estimated.shape == (len(sizes), len(PART_NAMES), 5)
    assert spearmanr(estimated[:, CAP, 0], true_area).statistic == 1.0
    scores = regressor_scores(trained, *_held_out()).set_index(["label", "target"])
    assert scores.loc[("cap", "area"), "pearson"] > 0.5  # 160 renders: rough, but informative
    assert scores.loc[("background", "luminance"), "r2"] > 0.7


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
