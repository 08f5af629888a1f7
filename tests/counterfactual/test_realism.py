"""Tests for linkviz.counterfactual.realism: the Mahalanobis realism score of latents, on Gaussian samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from linkviz.counterfactual import LatentRealism, fit_latent_realism


@pytest.fixture(scope="module")
def gaussian() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2000 latents from N(mean, C) in 4 dimensions with unequal variances, their mean and covariance."""
    rng = np.random.default_rng(0)
    mean = np.array([2.0, -1.0, 0.0, 5.0])
    scale = np.diag([2.0, 1.0, 0.5, 0.3]) @ np.linalg.qr(rng.normal(size=(4, 4)))[0]
    return rng.normal(size=(2000, 4)) @ scale + mean, mean, scale.T @ scale


def test_distance_is_the_mahalanobis_distance_and_the_threshold_a_held_out_quantile(gaussian):
    w, mean, covariance = gaussian
    realism = fit_latent_realism(w, quantile=0.99)
    assert isinstance(realism, LatentRealism) and realism.w_dim == 4 and realism.reference.shape == (2000,)
    np.testing.assert_allclose(realism.mean, w.mean(axis=0))
    direction = np.array([0.0, 0.0, 1.0, 0.0])  # along a low-variance direction distance grows fast
    expected = np.sqrt(direction @ np.linalg.inv(covariance) @ direction)
    np.testing.assert_allclose(realism.distance(mean + direction), expected, rtol=0.1)
    assert realism.distance(np.stack([w[:3], w[3:6]])).shape == (2, 3)
    # for a Gaussian in 4-d the squared distance is chi-square(4): its 99th percentile
    assert realism.threshold == pytest.approx(np.sqrt(chi2.ppf(0.99, df=4)), rel=0.1)
    fresh = np.random.default_rng(1).normal(size=(4000, 4)) @ np.linalg.cholesky(covariance).T + mean
    assert 0.003 < realism.is_off(fresh).mean() < 0.02  # about 1% of new realistic latents are flagged
    assert realism.is_off(mean + 10 * direction) and not realism.is_off(mean)
    np.testing.assert_allclose(realism.percentile(np.stack([mean, mean + 10 * direction])), [0.0, 100.0])


def test_bad_inputs(gaussian):
    w, _, _ = gaussian
    with pytest.raises(ValueError, match="M >= max"):
        fit_latent_realism(w[:4], folds=5)
    with pytest.raises(ValueError, match="quantile"):
        fit_latent_realism(w, quantile=1.0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        fit_latent_realism(w).distance(np.zeros(3))
