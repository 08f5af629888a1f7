"""cluster_parts: k-means of per-pixel features recovers planted regions."""

import numpy as np
import pytest
import torch

from linkviz.segmentation import FeatureClusters, cluster_parts


def _planted(n=4, c=6, size=16, seed=0):
    """Feature maps [n, c, size, size] with 3 regions (left, top right, bottom right), each its own mean."""
    rng = np.random.default_rng(seed)
    regions = np.zeros((size, size), np.int64)
    regions[:, size // 2:] = 1
    regions[size // 2:, size // 2:] = 2
    centres = rng.normal(scale=5.0, size=(3, c))
    features = centres[regions].transpose(2, 0, 1)[None] + rng.normal(scale=0.3, size=(n, c, size, size))
    return features.astype(np.float32), np.broadcast_to(regions, (n, size, size))


def _same_up_to_permutation(a, b):
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len(set(a.ravel().tolist())) == len(set(b.ravel().tolist()))


def test_recovers_planted_regions_up_to_permutation():
    features, regions = _planted()
    parts = cluster_parts(torch.from_numpy(features), n_parts=3, seed=0)
    assert isinstance(parts, FeatureClusters)
    masks = parts.predict(features)
    assert masks.shape == regions.shape and masks.dtype == np.int64
    assert _same_up_to_permutation(masks, regions)
    # new samples from the same regions get the same labels
    fresh, fresh_regions = _planted(n=2, seed=0)
    assert _same_up_to_permutation(parts(fresh), fresh_regions)
    # ids sorted by share: the left half (region 0) is the largest part
    assert (masks[regions == 0] == 0).all()


def test_deterministic_and_subsampled():
    features, _ = _planted()
    a = cluster_parts(features, 3, 1, max_pixels=200).predict(features)
    b = cluster_parts(features, 3, 1, max_pixels=200).predict(features)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.zeros((4, 8, 8)), np.full((1, 2, 4, 4), np.nan)])
def test_rejects_bad_features(bad):
    with pytest.raises(ValueError):
        cluster_parts(bad, 2, 0)


def test_rejects_bad_settings_and_channel_mismatch():
    features, _ = _planted()
    with pytest.raises(ValueError):
        cluster_parts(features, 1, 0)
    parts = cluster_parts(features, 3, 0)
    with pytest.raises(ValueError, match="channels"):
        parts.predict(features[:, :2])
