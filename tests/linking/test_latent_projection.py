"""Linked latents of Gaussian z-only generators are projected to the prior's typical norm; W-space links are not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from fake_world import FakeGenerator, FakeWorld, fake_classifier

from linkviz.linking import LinearLink, build_linked_model
from linkviz.linking.linked_model import typical_latent_norm
from linkviz.tuning.perturbations import SetUnits, tuned_latents


@dataclass(frozen=True)
class GaussianFakeWorld(FakeWorld):
    """The fake world declaring a Gaussian z prior, as the faces world does."""

    latent_prior: str = "gaussian"


def _link(latent_norm: float | None) -> LinearLink:
    rng = np.random.default_rng(0)
    return LinearLink(weight=rng.normal(size=(3, 5)), bias=0.01 * rng.normal(size=3), latent_norm=latent_norm)


def test_projected_link_puts_every_latent_at_the_norm_and_keeps_its_direction():
    r = torch.randn(50, 5, generator=torch.Generator().manual_seed(1))
    plain, projected = _link(None), _link(4.0)
    w_plain, w_projected = plain.to_w(r), projected.to_w(r)
    np.testing.assert_allclose(w_projected.norm(dim=1).numpy(), 4.0, rtol=1e-5)
    np.testing.assert_allclose(torch.cosine_similarity(w_plain, w_projected, dim=1).numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose(projected.predict(r.numpy()), w_projected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(plain.predict(r.numpy()), r.numpy() @ plain.weight.T + plain.bias, rtol=1e-5)


def test_tuned_latents_stay_exact_under_projection():
    link = _link(4.0)
    r_base = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    values = np.array([-2.0, 0.0, 3.0], dtype=np.float32)
    fast = tuned_latents(link, r_base, 1, values)
    for step, value in enumerate(values):
        slow = link.to_w(SetUnits(1, float(value)).apply(r_base))
        np.testing.assert_allclose(fast[:, step].numpy(), slow.numpy(), rtol=1e-4, atol=1e-5)


def test_latent_norm_survives_save_and_load(tmp_path):
    for norm in (None, 7.5):
        _link(norm).save(tmp_path / "link.safetensors")
        assert LinearLink.load(tmp_path / "link.safetensors").latent_norm == norm


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_latent_norm_is_refused(bad):
    with pytest.raises(ValueError, match="latent_norm must be a positive finite norm"):
        _link(bad)


def test_typical_latent_norm_is_the_mean_norm_for_a_gaussian_prior_and_none_otherwise():
    z = np.random.default_rng(3).normal(size=(4000, 100))
    assert typical_latent_norm("gaussian", 0.7 * z) == pytest.approx(0.7 * np.sqrt(100), rel=0.02)
    assert typical_latent_norm(None, z) is None
    with pytest.raises(ValueError, match="latent_prior must be one of"):
        typical_latent_norm("uniform", z)


def test_build_linked_model_projects_only_for_worlds_that_declare_a_gaussian_prior():
    classifier = fake_classifier()
    w_space = build_linked_model(FakeWorld(classifier, FakeGenerator()), samples_per_class=20, seed=0)
    assert w_space.link.latent_norm is None  # no-op for W-space generators: the affine link as fitted
    gaussian = build_linked_model(GaussianFakeWorld(classifier, FakeGenerator()), samples_per_class=20, seed=0)
    expected = np.linalg.norm(gaussian.pairs.w, axis=1).mean()
    assert gaussian.link.latent_norm == pytest.approx(expected, rel=1e-6)
    np.testing.assert_array_equal(gaussian.link.weight, w_space.link.weight)  # same fit, only the projection
    linked = gaussian.link.predict(gaussian.pairs.r)
    np.testing.assert_allclose(np.linalg.norm(linked, axis=1), expected, rtol=1e-5)
    affine = w_space.link.predict(gaussian.pairs.r)
    assert np.linalg.norm(affine, axis=1).mean() < expected  # ridge shrinks toward the mean; projection undoes it
