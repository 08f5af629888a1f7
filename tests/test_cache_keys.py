"""Every disk cache is keyed by every input that changes its result: change one, get a fresh result, not the
stale one (pairs, sweeps, part-change tables, dissections, toy reference models)."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fake_sweep import LABELS, threshold_segmenter, write_disk_sweep
from torch import nn

from linkviz.cache import CacheMismatchError
from linkviz.dissection import dissect
from linkviz.linking.link import LinearLink
from linkviz.models import Classifier, ClassifierSpec
from linkviz.pairs import sample_pairs
from linkviz.quantify import pipeline, sweep_changes, unit_changes
from linkviz.segmentation.reference import RenderSegmenter
from linkviz.tuning import UnitStats, run_sweep
from linkviz.worlds.toy import reference_models

RESOLUTION, N_CLASSES = 8, 3

# --- pairs: the classifier spec (layer, preprocessing) and the models' dtypes ------------------------------------


class TinyGenerator(nn.Module):
    """z (+ class) -> w by a linear map; w -> tanh(linear) images [N, 3, 8, 8]."""

    z_dim, w_dim, num_ws, c_dim, img_resolution = 4, 5, 2, N_CLASSES, RESOLUTION

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.map = nn.Linear(self.z_dim + self.c_dim, self.w_dim)
        self.synth = nn.Linear(self.w_dim, 3 * RESOLUTION * RESOLUTION)

    def mapping(self, z, c, truncation_psi=1.0):
        return (self.map(torch.cat([z, c], dim=1)) * truncation_psi)[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws):
        return torch.tanh(self.synth(ws[:, 0])).reshape(-1, 3, RESOLUTION, RESOLUTION)


def tiny_classifier(**spec_changes) -> Classifier:
    torch.manual_seed(1)
    module = nn.Sequential(OrderedDict(
        features=nn.Conv2d(3, 4, 3, padding=1), relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(2),
        flat=nn.Flatten(), head=nn.Linear(16, N_CLASSES)))
    spec = ClassifierSpec(input_size=(RESOLUTION, RESOLUTION), in_channels=3, value_range=(0.0, 1.0),
                          mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), resize_to=None, penultimate_layer="pool",
                          class_names=("a", "b", "c"), head_layer="head")
    return Classifier(module, dataclasses.replace(spec, **spec_changes))


def _pairs(generator, classifier, **options):
    return sample_pairs(generator, classifier, classes=[0, 2], samples_per_class=4, seed=0, batch_size=3,
                        progress=False, **options)


@pytest.mark.parametrize("change", [
    {"penultimate_layer": "features"},  # avgpool -> layer4 in a ResNet: r changes shape
    {"mean": (0.4, 0.5, 0.6)},
    {"std": (0.2, 0.25, 0.3)},
    {"value_range": (-1.0, 1.0)},
])
def test_pairs_cache_follows_the_classifier_spec(tmp_path, change):
    cached_before = _pairs(TinyGenerator(), tiny_classifier(), cache_dir=tmp_path)
    cached_after = _pairs(TinyGenerator(), tiny_classifier(**change), cache_dir=tmp_path)
    fresh = _pairs(TinyGenerator(), tiny_classifier(**change))
    assert cached_after.r.shape == fresh.r.shape
    np.testing.assert_array_equal(cached_after.r, fresh.r)
    assert cached_after.r.shape != cached_before.r.shape or not np.allclose(cached_after.r, cached_before.r)
    assert len(list((tmp_path / "pairs").iterdir())) == 2


def test_pairs_float64_generator_gets_its_own_entry_and_runs(tmp_path):
    """A float64 generator gets float64 latents and its images reach the float32 classifier as float32."""
    single = _pairs(TinyGenerator(), tiny_classifier(), cache_dir=tmp_path)
    double = _pairs(TinyGenerator().double(), tiny_classifier(), cache_dir=tmp_path)
    assert len(list((tmp_path / "pairs").iterdir())) == 2
    np.testing.assert_allclose(double.r, single.r, rtol=1e-4, atol=1e-5)  # float32 rounding of the same model
    np.testing.assert_allclose(double.w, single.w, rtol=1e-5, atol=1e-6)


def test_pairs_device_other_than_the_generators_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"generator's weights are on cpu \(torch.float32\) but device='meta'"):
        _pairs(TinyGenerator(), tiny_classifier(), device="meta")


# --- sweeps: the generator's type -------------------------------------------------------------------------------


class SweepGenerator:
    num_ws, w_dim, z_dim, c_dim, img_resolution = 2, 4, 4, 0, RESOLUTION

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.module = nn.Linear(self.w_dim, 3 * RESOLUTION * RESOLUTION)

    def synthesis(self, ws):
        return torch.tanh(self.module(ws[:, 0])).reshape(-1, 3, RESOLUTION, RESOLUTION)


class NegatingSweepGenerator(SweepGenerator):
    """Same weights, other images."""

    def synthesis(self, ws):
        return -super().synthesis(ws)


def test_sweep_with_another_generator_type_is_not_the_cached_one(tmp_path):
    rng = np.random.default_rng(0)
    link = LinearLink(weight=rng.normal(size=(4, 3)), bias=rng.normal(size=4))
    r_base = torch.as_tensor(rng.uniform(0, 1, (2, 3)), dtype=torch.float32)
    stats = UnitStats.from_activations(rng.uniform(0, 1, (10, 3)))

    def sweep(generator):
        return run_sweep(link, generator, r_base, stats=stats, out_dir=tmp_path / "sweep", progress=False)

    sweep(SweepGenerator())
    with pytest.raises(CacheMismatchError, match="generator_type"):
        sweep(NegatingSweepGenerator())


def test_sweep_with_a_projected_link_is_not_the_cached_unprojected_one(tmp_path):
    """A link whose latents are projected to a prior's norm renders other images: not the cached sweep."""
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(4, 3)), rng.normal(size=4)
    r_base = torch.as_tensor(rng.uniform(0, 1, (2, 3)), dtype=torch.float32)
    stats = UnitStats.from_activations(rng.uniform(0, 1, (10, 3)))

    def sweep(link):
        return run_sweep(link, SweepGenerator(), r_base, stats=stats, out_dir=tmp_path / "sweep", progress=False)

    sweep(LinearLink(weight=weight, bias=bias))
    with pytest.raises(CacheMismatchError, match="link"):
        sweep(LinearLink(weight=weight, bias=bias, latent_norm=2.0))


# --- part-change tables: metric names and unit_changes' defaults ---------------------------------------------------


def _shifted_visibility(images, masks, labels, *, unit, reference_steps, seeds=None, visibility=0.5,
                        area_floor=None, angle_min_eccentricity=0.3, **measure_kwargs):
    return unit_changes(images, masks, labels, unit=unit, reference_steps=reference_steps, seeds=seeds,
                        visibility=visibility, area_floor=area_floor, angle_min_eccentricity=angle_min_eccentricity,
                        **measure_kwargs)


@pytest.mark.parametrize("change", ["metric order", "unit_changes default"])
def test_change_table_cache_follows_metrics_and_defaults(tmp_path, monkeypatch, change):
    sweep = write_disk_sweep(tmp_path / "sweep", {0: 2.0, 1: -1.5}, n_seeds=2, n_steps=3, baseline_step=1)

    def table(cache_dir):
        return sweep_changes(sweep, threshold_segmenter, LABELS, segmenter_id="threshold", cache_dir=cache_dir,
                             progress=False).frame

    table(tmp_path / "cache")
    if change == "metric order":
        monkeypatch.setattr(pipeline, "METRICS", tuple(reversed(pipeline.METRICS)))
    else:
        monkeypatch.setattr(pipeline, "unit_changes", _shifted_visibility)
    cached, fresh = table(tmp_path / "cache"), table(tmp_path / "fresh")
    assert cached.equals(fresh)
    assert len(list((tmp_path / "cache" / "changes").iterdir())) == 2


# --- dissection: the model's type ---------------------------------------------------------------------------------


class DoublingInput(nn.Sequential):
    """The same layers (and weights) as a plain Sequential, fed twice the input."""

    def forward(self, x):
        return super().forward(2 * x)


def test_dissection_cache_follows_the_model_type(tmp_path):
    import fake_dissection

    probe = fake_dissection.square_probe(6, seed=0, low=180)
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())
    doubled = DoublingInput(*plain)
    options = {"quantile": 0.1, "progress": False}
    dissect(plain, "1", probe, cache_dir=tmp_path, **options)
    cached, fresh = dissect(doubled, "1", probe, cache_dir=tmp_path, **options), dissect(doubled, "1", probe, **options)
    np.testing.assert_array_equal(cached.thresholds, fresh.thresholds)
    assert len(list((tmp_path / "dissection").iterdir())) == 2


# --- toy reference models: the trainer's defaults -------------------------------------------------------------------


def test_reference_segmenter_cache_follows_trainer_defaults(tmp_path, monkeypatch):
    trained = []

    def trainer(learning_rate):
        def train(images, masks, *, n_classes, epochs=30, batch_size=8, learning_rate=learning_rate, width=16,
                  flips=True, seed=0, device="cpu", progress=False):
            trained.append(learning_rate)
            torch.manual_seed(len(trained))
            return RenderSegmenter(n_classes, width=width)
        return train

    renders = SimpleNamespace(images=None, part_masks=None)
    monkeypatch.setattr(reference_models, "render_set", lambda *args, **kwargs: renders)
    monkeypatch.setattr(reference_models, "train_render_segmenter", trainer(1e-2))
    first = reference_models.toy_render_segmenter(tmp_path, epochs=1, width=2)
    again = reference_models.toy_render_segmenter(tmp_path, epochs=1, width=2)
    assert trained == [1e-2]
    assert reference_models.model_identity("s", again) == reference_models.model_identity("s", first)
    monkeypatch.setattr(reference_models, "train_render_segmenter", trainer(5e-3))
    other = reference_models.toy_render_segmenter(tmp_path, epochs=1, width=2)
    assert trained == [1e-2, 5e-3]
    assert reference_models.model_identity("s", other) != reference_models.model_identity("s", first)
