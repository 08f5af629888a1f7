"""Fréchet distance against the closed form for Gaussians."""

import numpy as np
import pytest

from linkviz import frechet_distance


def test_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    mean_shift = np.array([1.0, -2.0, 0.5])
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2.0 + mean_shift
    # |mu_a - mu_b|^2 + tr(I + 4I - 2 * 2I) = 5.25 + 3
    assert frechet_distance(a, b) == pytest.approx(5.25 + 3.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="two vectors"):
        frechet_distance(np.zeros((1, 2)), np.zeros((5, 2)))
