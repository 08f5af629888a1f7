"""The shortcut as the toy classifier learned it, measured on renders with a known background hue.

Ground truth: in the toy world's training data only trees had a background in the gap between the other classes'
hues, (175, 245) (the planted sky band :data:`SKY_HUE` = (195, 225) lies inside it). Measured (48 records, 5 degree
steps): a mushroom is called tree at median p(tree) > 0.5 for background hues in about (188, 234), p(tree) ~1.0
across the sky band and at most 0.07 outside (170, 250).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
from skimage.color import rgb2hsv

import linkviz
from linkviz.worlds.toy import CLASS_NAMES
from linkviz.worlds.toy.factors import SKY_HUE
from linkviz.worlds.toy.shortcut import band_distance, learned_shortcut_band

TREE = CLASS_NAMES.index("tree")


def _hue_classifier(lo: float, hi: float) -> SimpleNamespace:
    """A stand-in world whose classifier says tree exactly when the image's corner pixel has a hue in [lo, hi]."""

    def forward_generated(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        corner = ((images[:, :, 0, 0] + 1.0) / 2.0).numpy()  # [N, 3] in [0, 1]
        hue = 360.0 * rgb2hsv(corner[:, None, :])[:, 0, 0]
        logits = torch.zeros(len(images), len(CLASS_NAMES))
        logits[:, TREE] = torch.as_tensor(np.where(band_distance(hue, (lo, hi)) == 0, 10.0, -10.0))
        return logits, torch.zeros(len(images), 1)

    return SimpleNamespace(classifier=SimpleNamespace(forward_generated=forward_generated),
                           generator=SimpleNamespace(img_resolution=32))


def test_the_band_is_where_the_classifier_flips_within_one_hue_step():
    step = 10.0
    band, curve = learned_shortcut_band(_hue_classifier(102.0, 147.0), n_records=2, hue_step=step)
    # a step function crosses 0.5 halfway between the grid hues on either side of the true edge
    assert abs(band[0] - 102.0) <= step / 2 + 1.0 and abs(band[1] - 147.0) <= step / 2 + 1.0
    assert list(curve.columns) == ["hue", "median", "share"] and len(curve) == 36
    inside = (curve["hue"] >= 102.0) & (curve["hue"] <= 147.0)
    assert (curve.loc[inside, "share"] == 1.0).all() and (curve.loc[~inside, "share"] == 0.0).all()


def test_no_band_or_a_wrapping_band_is_an_error():
    with pytest.raises(ValueError, match="no band"):
        learned_shortcut_band(_hue_classifier(359.0, 359.5), n_records=1, hue_step=30.0)
    with pytest.raises(ValueError, match="wraps"):
        learned_shortcut_band(_hue_classifier(0.0, 40.0), n_records=1, hue_step=30.0)
    with pytest.raises(ValueError, match="hue_step"):
        learned_shortcut_band(_hue_classifier(0.0, 40.0), n_records=1, hue_step=0.0)


def test_the_toy_classifier_calls_a_mushroom_on_a_sky_background_a_tree():
    world = linkviz.load_toy_world(device="cpu")
    band, curve = learned_shortcut_band(world, n_records=12, hue_step=10.0, seed=0)
    lo, hi = band
    # inside the gap only trees' backgrounds used, covering most of the planted sky band
    assert 175.0 <= lo <= SKY_HUE[0] + 5.0 and SKY_HUE[1] - 5.0 <= hi <= 245.0
    sky = (curve["hue"] >= SKY_HUE[0]) & (curve["hue"] <= SKY_HUE[1])
    assert (curve.loc[sky, "median"] >= 0.9).all()  # measured >= 0.999
    far = (curve["hue"] <= 170.0) | (curve["hue"] >= 250.0)
    assert (curve.loc[far, "median"] <= 0.2).all()  # measured <= 0.07
