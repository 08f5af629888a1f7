"""Tests for linkviz.tuning.perturbations: perturbation algebra, unit values, and the linearity shortcut."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.linking.link import LinearLink
from linkviz.models import UnitEdit, run_with_cache
from linkviz.tuning import AddStd, ScaleUnits, SetUnits, UnitStats, effect_sizes, tuned_latents, unit_values

R = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


@pytest.fixture
def stats() -> UnitStats:
    return UnitStats.from_activations(R)


@pytest.fixture
def link() -> LinearLink:
    rng = np.random.default_rng(0)
    return LinearLink(weight=rng.normal(size=(4, 3)), bias=rng.normal(size=4))


def test_unit_stats_on_hand_values(stats):
    np.testing.assert_array_equal(stats.min, [1, 2, 3])
    np.testing.assert_array_equal(stats.max, [4, 5, 6])
    np.testing.assert_array_equal(stats.mean, [2.5, 3.5, 4.5])
    np.testing.assert_array_equal(stats.std, [1.5, 1.5, 1.5])
    assert stats.n_samples == 2 and stats.n_units == 3


def test_unit_stats_refuses_nan_with_count():
    r = R.clone()
    r[0, 0] = float("nan")
    r[1, 2] = float("inf")
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        UnitStats.from_activations(r)
    with pytest.raises(ValueError, match="shape"):
        UnitStats.from_activations(np.zeros((0, 3)))


def test_set_units():
    np.testing.assert_array_equal(SetUnits(1, 9.0).apply(R), [[1, 9, 3], [4, 9, 6]])
    np.testing.assert_array_equal(SetUnits([0, 2], (7.0, 8.0)).apply(R), [[7, 2, 8], [7, 5, 8]])
    assert R[0, 1] == 2.0  # the input is not modified


def test_add_std(stats):
    np.testing.assert_array_equal(AddStd([0, 2], 2.0, stats).apply(R), [[4, 2, 6], [7, 5, 9]])
    np.testing.assert_array_equal(AddStd(1, -1.0, stats).apply(R), [[1, 0.5, 3], [4, 3.5, 6]])


def test_scale_units():
    np.testing.assert_array_equal(ScaleUnits((0, 1), (0.0, 2.0)).apply(R), [[0, 4, 3], [0, 10, 6]])


def test_perturbations_are_frozen_and_differentiable():
    perturbation = ScaleUnits(2, 3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        perturbation.factor = 1.0
    r = R.clone().requires_grad_(True)
    SetUnits(0, 1.0).apply(r).sum().backward()
    np.testing.assert_array_equal(r.grad, [[0, 1, 1], [0, 1, 1]])  # set units get no gradient


def test_unit_index_errors_name_d(stats):
    with pytest.raises(IndexError, match="D=3"):
        SetUnits(3, 0.0).apply(R)
    with pytest.raises(IndexError, match="D=3"):
        ScaleUnits([0, 5], 2.0).apply(R)
    with pytest.raises(IndexError, match="D=3"):
        AddStd(4, 1.0, stats)
    with pytest.raises(IndexError, match="non-negative"):
        SetUnits(-1, 0.0)
    with pytest.raises(ValueError, match="duplicates"):
        SetUnits([1, 1], 0.0)
    with pytest.raises(ValueError, match="one value per unit"):
        SetUnits([0, 1], (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="describe D=3"):
        AddStd(0, 1.0, stats).apply(torch.zeros(2, 4))


def test_range_includes_the_unperturbed_value(stats):
    # unit 0 ranges over [1, 4]: grid 1, 1.75, 2.5, 3.25, 4; the interior point nearest each value moves onto it.
    values = unit_values(stats, 0, current=np.array([2.0, 1.0, 3.25, 5.0]), n_steps=5)
    np.testing.assert_allclose(values, [[1, 2, 2.5, 3.25, 4], [1, 1.75, 2.5, 3.25, 4],
                                        [1, 1.75, 2.5, 3.25, 4], [1, 1.75, 2.5, 4, 5]])
    assert (np.diff(values, axis=1) > 0).all()  # sorted and distinct
    assert unit_values(stats, 0, current=2.0).shape == (5,)


def test_range_needs_current_and_three_steps(stats):
    with pytest.raises(ValueError, match="current"):
        unit_values(stats, 0)
    with pytest.raises(ValueError, match="n_steps >= 3"):
        unit_values(stats, 0, current=1.0, n_steps=2)
    with pytest.raises(ValueError, match="1 NaN"):
        unit_values(stats, 0, current=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="unknown mode"):
        unit_values(stats, 0, current=1.0, mode="linear")
    with pytest.raises(IndexError, match="D=3"):
        unit_values(stats, 3, current=1.0)


def test_std_and_reference_modes(stats):
    np.testing.assert_allclose(unit_values(stats, 1, current=np.array([2.0]), mode="std"),
                               [[-1.0, 0.5, 2.0, 3.5, 5.0]])
    np.testing.assert_allclose(unit_values(stats, 1, mode="reference"), [2.0, 3.5, 5.0])  # 3 steps by default
    np.testing.assert_allclose(unit_values(stats, 1, mode="reference", n_steps=4), [2, 3, 4, 5])
    np.testing.assert_allclose(unit_values(stats, 1, current=np.zeros(2), mode="reference"), [[2, 3.5, 5]] * 2)


def test_tuned_latents_equal_linking_each_perturbed_r(link):
    values = np.array([0.0, 1.5, -2.0, 7.0], dtype=np.float32)
    w = tuned_latents(link, R, 1, values)
    assert w.shape == (2, 4, 4)
    for step, value in enumerate(values):
        torch.testing.assert_close(w[:, step], link.to_w(SetUnits(1, float(value)).apply(R)))
    per_example = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    w = tuned_latents(link, R, 2, per_example)
    for n in range(2):
        for step in range(2):
            expected = link.to_w(SetUnits(2, float(per_example[n, step])).apply(R[n:n + 1]))[0]
            torch.testing.assert_close(w[n, step], expected)


def test_directions_are_columns_of_a(link):
    for unit in range(3):
        current = R[:, unit].numpy()
        w = tuned_latents(link, R, unit, np.stack([current, current + 1], axis=1))
        torch.testing.assert_close(w[:, 0], link.to_w(R))  # the unperturbed value reproduces the linked r
        for n in range(2):
            np.testing.assert_allclose((w[n, 1] - w[n, 0]).numpy(), link.weight[:, unit], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(link.direction(unit), link.weight[:, unit])


def test_tuned_latents_bad_input(link):
    with pytest.raises(IndexError, match="D=3"):
        tuned_latents(link, R, 3, np.zeros(2))
    with pytest.raises(ValueError, match=r"\[S\] or \[N=2, S\]"):
        tuned_latents(link, R, 0, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="link expects"):
        tuned_latents(link, torch.zeros(2, 5), 0, np.zeros(2))


def test_effect_sizes(link, stats):
    expected = 3.0 * np.linalg.norm(link.weight, axis=0)
    np.testing.assert_allclose(effect_sizes(link, stats), expected, rtol=1e-6)


def test_perturbations_are_model_edits(stats):
    assert SetUnits([0, 2], (7.0, 8.0)).as_edit("fc") == UnitEdit("fc", (0, 2), "replace", (7.0, 8.0))
    assert ScaleUnits(1, 0.0).as_edit("fc") == UnitEdit("fc", (1,), "scale", 0.0)
    edit = AddStd([0, 2], 2.0, stats).as_edit("fc")
    assert (edit.layer, edit.units, edit.mode) == ("fc", (0, 2), "add")
    np.testing.assert_array_equal(edit.value, [3.0, 3.0])  # k * std
    # the same edit in a forward pass: r is the output of layer "0" of a model that reads r back out
    model = nn.Sequential(nn.Identity(), nn.Flatten())
    for perturbation in (SetUnits([0, 2], (7.0, 8.0)), AddStd(1, -1.0, stats), ScaleUnits((0, 1), (0.0, 2.0))):
        output, _ = run_with_cache(model, R, "0", edits=[perturbation.as_edit("0")])
        np.testing.assert_array_equal(output, perturbation.apply(R))


def test_add_std_computes_the_shift_in_the_dtype_of_r(stats):
    """k * std is rounded once in r's precision, as r[:, u] + k * std computed by hand."""
    for dtype in (torch.float32, torch.float64):
        r = R.to(dtype) / 3
        k = (0.1, -0.7)
        expected = r.clone()
        expected[:, [0, 2]] += torch.as_tensor(k, dtype=dtype) * torch.as_tensor(stats.std[[0, 2]], dtype=dtype)
        torch.testing.assert_close(AddStd([0, 2], k, stats).apply(r), expected, rtol=0, atol=0)


@pytest.mark.parametrize("units", [3.7, 1.0, [0, 1.5], True])
def test_non_integer_units_are_refused_not_truncated(stats, link, units):
    for make in (lambda: SetUnits(units, 0.0), lambda: ScaleUnits(units, 2.0), lambda: AddStd(units, 1.0, stats)):
        with pytest.raises(ValueError, match="integer"):
            make()
    if not isinstance(units, list):
        with pytest.raises(ValueError, match="integer"):
            unit_values(stats, units, current=1.0)
        with pytest.raises(ValueError, match="integer"):
            tuned_latents(link, R, units, np.zeros(2))
    assert SetUnits(np.int64(1), 9.0) == SetUnits(1, 9.0)
