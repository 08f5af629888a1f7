"""Exact streamed quantiles against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linkviz.dissection import TopQuantile, lite_level, unit_quantiles


def per_unit(values: np.ndarray) -> np.ndarray:
    """[N, C, H, W] -> [C, N * H * W]."""
    return values.transpose(1, 0, 2, 3).reshape(values.shape[1], -1)


@pytest.mark.parametrize("level", [0.995, 0.9, 0.5, 0.123456, lite_level(0.005)])
@pytest.mark.parametrize("batch", [1, 3, 7])
def test_streamed_quantile_equals_numpy(level, batch):
    rng = np.random.default_rng(int(level * 1000) + batch)
    values = rng.gamma(2.0, size=(7, 4, 5, 6)).astype(np.float32)
    values[:, 1] = np.maximum(values[:, 1] - 3.0, 0.0)  # many ties at zero, like post-ReLU maps
    accumulator = TopQuantile(7 * 5 * 6, level=level)
    for start in range(0, 7, batch):
        accumulator.update(torch.from_numpy(values[start:start + batch]))
    expected = np.quantile(per_unit(values).astype(np.float64), level, axis=1)
    np.testing.assert_array_equal(accumulator.result(), expected)


def test_order_statistics_equal_np_partition():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(10, 3, 8, 8)).astype(np.float32)
    n = 10 * 8 * 8
    position = (n - 1) * 0.995
    below = int(np.floor(position))
    partitioned = np.partition(per_unit(values), [below, below + 1], axis=1)
    lower, upper = partitioned[:, below].astype(np.float64), partitioned[:, below + 1].astype(np.float64)
    gamma = position - below
    expected = upper - (upper - lower) * (1 - gamma) if gamma >= 0.5 else lower + (upper - lower) * gamma
    np.testing.assert_array_equal(unit_quantiles(torch.from_numpy(values), level=0.995), expected)
    # the buffer holds only the top values: about 0.5 % of them, not all
    accumulator = TopQuantile(n, level=0.995)
    assert accumulator.k == n - below and accumulator.k < n // 100


def test_lite_level_is_994_of_999():
    assert lite_level(0.005) == 994 / 999


def test_bad_input():
    with pytest.raises(ValueError, match="level"):
        TopQuantile(10, level=1.0)
    accumulator = TopQuantile(4, level=0.5)
    with pytest.raises(ValueError, match="NaN"):
        accumulator.update(torch.tensor([[[[float("nan")]]]]))
    accumulator = TopQuantile(2, level=0.5)
    accumulator.update(torch.ones(1, 3, 1, 1))
    with pytest.raises(RuntimeError, match="expected n_values=2"):
        accumulator.result()
    with pytest.raises(ValueError, match="units"):
        accumulator.update(torch.ones(1, 2, 1, 1))
    with pytest.raises(ValueError, match="more than"):
        accumulator.update(torch.ones(2, 3, 1, 1))


@pytest.mark.parametrize("batch", [1, 4, 16])
def test_streamed_quantile_is_exact_with_ties_at_the_running_bound(batch):
    """Integer-valued maps put many values exactly at the buffer's smallest value, where the streamed merge skips
    values equal to the bound: the result must still be np.quantile."""
    rng = np.random.default_rng(batch)
    values = rng.integers(0, 4, size=(16, 3, 4, 4)).astype(np.float32)
    values[:, 2] = 7.0  # a constant unit
    for level in (0.9, 0.995, 0.5):
        accumulator = TopQuantile(16 * 16, level=level)
        for start in range(0, 16, batch):
            accumulator.update(torch.from_numpy(values[start:start + batch]))
        expected = np.quantile(per_unit(values).astype(np.float64), level, axis=1)
        np.testing.assert_array_equal(accumulator.result(), expected)


def test_merged_top_values_are_the_k_largest_whatever_the_bound_and_order():
    from linkviz.dissection.quantile import merge_top_values, top_candidates

    rng = np.random.default_rng(7)
    values = torch.from_numpy(rng.normal(size=(9, 5, 6)).astype(np.float32))  # [n, C, m]
    k = 11
    expected = np.sort(values.transpose(0, 1).reshape(5, -1).numpy(), axis=1)[:, ::-1][:, :k]
    ours = merge_top_values(None, values, k)
    np.testing.assert_array_equal(np.sort(ours.numpy(), axis=1)[:, ::-1], expected)
    backwards = merge_top_values(None, values.flip(0), k)  # chunks finishing in another order
    np.testing.assert_array_equal(np.sort(backwards.numpy(), axis=1)[:, ::-1], expected)
    # a lower bound of the final k-th largest drops only values that cannot be in the top k
    bound = torch.from_numpy(expected[:, -1] - 0.5)
    bounded = merge_top_values(None, values, k, bound)
    np.testing.assert_array_equal(np.sort(bounded.numpy(), axis=1)[:, ::-1], expected)
    above = top_candidates(values, torch.from_numpy(expected[:, 2].copy()))  # 2 values above the 3rd largest
    np.testing.assert_array_equal(np.sort(above.numpy(), axis=1)[:, ::-1], expected[:, :2])
