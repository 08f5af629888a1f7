"""Filter attention (both variants) and masked pooling on hand-built examples."""

from __future__ import annotations

import math

import pytest
import torch

from linkviz.lavise import filter_attention, masked_pool, resize_masks

# two channels of 2x2: A0 = [[1, 0], [0, 1]], A1 = [[3, 1], [0, 0]]
MAPS = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[3.0, 1.0], [0.0, 0.0]]]])


def test_code_variant_by_hand():
    # z_k = <A_k, A_u> / (H W ||A_u||); <A0, A0> = 2, <A0, A1> = 3, <A1, A1> = 10, ||A0|| = sqrt 2, ||A1|| = sqrt 10
    z0 = filter_attention(MAPS, 0, variant="code")
    assert z0[0].tolist() == pytest.approx([2 / (4 * math.sqrt(2)), 3 / (4 * math.sqrt(2))])
    z1 = filter_attention(MAPS, 1)  # "code" is the default
    assert z1[0].tolist() == pytest.approx([3 / (4 * math.sqrt(10)), 10 / (4 * math.sqrt(10))])


def test_paper_variant_by_hand():
    # z_k = cos(A_u, A_k) * mean(A_k); cos(A0, A1) = 3 / sqrt(20); mean(A0) = 0.5, mean(A1) = 1
    cosine = 3 / math.sqrt(20)
    assert filter_attention(MAPS, 0, variant="paper")[0].tolist() == pytest.approx([0.5, cosine])
    assert filter_attention(MAPS, 1, variant="paper")[0].tolist() == pytest.approx([cosine * 0.5, 1.0])


def test_per_image_units_and_zero_maps():
    maps = torch.cat([MAPS, MAPS.flip(1), torch.zeros_like(MAPS)])
    units = torch.tensor([0, 1, 0])
    for variant in ("code", "paper"):
        z = filter_attention(maps, units, variant=variant)
        assert z.shape == (3, 2)
        torch.testing.assert_close(z[0], filter_attention(MAPS, 0, variant=variant)[0])
        torch.testing.assert_close(z[1], filter_attention(MAPS, 0, variant=variant)[0].flip(0))
        assert z[2].tolist() == [0.0, 0.0]  # an inactive target gives zeros, not NaN


def test_attention_bad_input():
    with pytest.raises(ValueError, match="variant"):
        filter_attention(MAPS, 0, variant="cosine")
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        filter_attention(MAPS[0], 0)
    with pytest.raises(ValueError, match="units must lie in"):
        filter_attention(MAPS, 2)
    with pytest.raises(ValueError, match="shape \\[N\\]"):
        filter_attention(MAPS, torch.tensor([0, 1]))


def test_resize_masks_area_and_nearest():
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True  # a 2x2 block: exactly the top-left cell
    mask[1, 0, 0] = True  # one pixel: a quarter cell by area, lost by pixel-centre nearest sampling
    area = resize_masks(mask, (2, 2))
    assert area.tolist() == [[[1.0, 0.0], [0.0, 0.0]], [[0.25, 0.0], [0.0, 0.0]]]
    nearest = resize_masks(mask, (2, 2), mode="nearest")
    assert nearest.tolist() == [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]
    centre = torch.zeros(1, 4, 4, dtype=torch.bool)
    centre[0, 1, 1] = True  # PIL samples the pixel centres 1 and 3
    assert resize_masks(centre, (2, 2), mode="nearest").tolist() == [[[1.0, 0.0], [0.0, 0.0]]]
    with pytest.raises(ValueError, match="mode"):
        resize_masks(mask, (2, 2), mode="bilinear")


def test_masked_pool_divisors():
    features = torch.arange(8.0).reshape(1, 2, 2, 2)  # channel 0: 0..3, channel 1: 4..7
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # cells 0 and 3
    assert masked_pool(features, mask)[0].tolist() == pytest.approx([(0 + 3) / 4, (4 + 7) / 4])  # LaViSE: / (h w)
    assert masked_pool(features, mask, divisor="mask")[0].tolist() == pytest.approx([1.5, 5.5])
    with pytest.raises(ValueError, match="must agree"):
        masked_pool(features, torch.ones(1, 3, 3))
