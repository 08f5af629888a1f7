"""The committed toy-world models meet their targets on fresh renders and samples."""

import numpy as np
import pytest
import torch

import linkviz
from linkviz.worlds.toy import CLASS_NAMES, render_set
from linkviz.worlds.toy.dataset import balanced_labels
from linkviz.worlds.toy.evaluation import class_samples, classifier_accuracy, shortcut_reliance, texture_reliance


@pytest.fixture(scope="module")
def world():
    return linkviz.load_toy_world()


@pytest.fixture(scope="module")
def test_set():
    return render_set(60, seed=4242, n_jobs=1)


def test_classifier_layout_matches_the_reference_in_miniature(world):
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    logits, cache = linkviz.run_with_cache(world.classifier.module, x, ["layer4", "avgpool"])
    assert logits.shape == (2, len(CLASS_NAMES))
    assert cache["layer4"].shape == (2, 256, 8, 8)
    r = world.classifier.forward_generated(x)[1]
    assert r.shape == (2, 256) and (r >= 0).all()
    torch.testing.assert_close(world.classifier.logits_from_penultimate(r), logits)


def test_classifier_accuracy_on_held_out_renders(world, test_set):
    assert classifier_accuracy(world.classifier, test_set)["all"] >= 0.97


def test_classifier_uses_the_planted_shortcut(world, test_set):
    result = shortcut_reliance(world.classifier, test_set, seed=7)
    assert result["accuracy_with_shortcut"] >= 0.95
    assert result["accuracy_without_shortcut"] <= result["accuracy_with_shortcut"] - 0.05


def test_classifier_does_not_need_textures(world, test_set):
    """Why dissection finds no texture detectors in the toy classifier: it classifies as well without textures
    (measured on 1500 renders: 98.7% as drawn, 99.0% all plain)."""
    assert (test_set.factors.part_texture > 0).mean() > 0.1
    result = texture_reliance(world.classifier, test_set)
    assert result["accuracy_all_plain"] >= result["accuracy_as_drawn"] - 0.02


def test_generated_samples_are_classified_as_their_class(world):
    samples = class_samples(world.generator, world.classifier, balanced_labels(40), truncation_psi=0.7, seed=11)
    agreement = (samples.predicted == samples.factors.label).mean()
    assert agreement >= 0.9


def test_generated_objects_sit_where_their_factors_say(world):
    """Foreground of a generated image (pixels far from the known background colour) vs the rendered part mask."""
    from linkviz.worlds.toy.factors import hsv_to_rgb
    from linkviz.worlds.toy.render import render

    samples = class_samples(world.generator, None, balanced_labels(20), truncation_psi=1.0, seed=5)
    truth = render(samples.factors)
    background = hsv_to_rgb(samples.factors.background_hsv)[:, None, None, :] * 255
    distance = np.abs(samples.generated.astype(float) - background).max(-1)
    foreground = distance > 40
    target = truth.part_masks > 0
    iou = (foreground & target).sum((1, 2)) / (foreground | target).sum((1, 2))
    assert np.median(iou) >= 0.75


def test_pairs_on_the_toy_world_have_unique_seeds_and_high_acceptance(world, tmp_path):
    pairs = linkviz.sample_pairs(world.generator, world.classifier, classes=range(5), samples_per_class=16,
                                 seed=0, cache_dir=tmp_path, progress=False)
    assert len(np.unique(pairs.seeds)) == len(pairs) == 80
    assert len(np.unique(pairs.w, axis=0)) == 80
    assert pairs.acceptance_rate >= 0.85
    assert pairs.r.shape == (80, 256) and pairs.w.shape == (80, world.generator.w_dim)



def test_model_card_is_current_and_meets_its_targets():
    """The committed card was regenerated from the committed weights (same training records) and meets every
    target of the foundation issue."""
    import json

    from linkviz.worlds.toy.model_card import TARGETS
    from linkviz.worlds.toy.world import DEFAULT_WEIGHTS

    card = json.loads((DEFAULT_WEIGHTS.parent / "model_card.json").read_text())
    for name in ("classifier", "generator"):
        assert card["training"][name] == json.loads((DEFAULT_WEIGHTS / f"{name}.json").read_text())
    assert card["n_samples"] >= 3000
    assert card["classifier_accuracy"]["all"] >= TARGETS["classifier_accuracy"]
    assert card["generated_agreement_psi_0.7"]["all"] >= TARGETS["generated_agreement"]
    assert card["frechet"]["ratio"] <= TARGETS["frechet_ratio"]
