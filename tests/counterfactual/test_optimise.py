"""Tests for linkviz.counterfactual.optimise on the consistent fake world of conftest.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from linkviz.counterfactual import CounterfactualResult, counterfactual_loss, find_counterfactuals
from linkviz.counterfactual.optimise import render_and_classify
from linkviz.linking.link import LinearLink, check_activations


def _run(world, r, origin, target, **options) -> CounterfactualResult:
    link, generator, classifier = world
    options.setdefault("max_steps", 200)
    return find_counterfactuals(link, generator, classifier, r, origin=origin, target=target, progress=False,
                                **options)


def test_every_example_reaches_its_target(world, examples):
    link, generator, classifier = world
    r, origin, target = examples
    result = _run(world, r, origin, target)
    assert result.success_rate == 1.0
    assert result.success.all()
    np.testing.assert_array_equal(result.predicted, target.numpy())
    assert (result.steps >= 1).all() and (result.steps < 200).all()
    assert result.median_steps == float(np.median(result.steps))
    # The stored counterfactual is relu(r - s), and rendering it gives the target class.
    np.testing.assert_allclose(result.r_counterfactual, np.maximum(r.numpy() - result.shift, 0), rtol=1e-6)
    logits, _ = render_and_classify(link, generator, classifier, torch.as_tensor(result.r_counterfactual))
    np.testing.assert_array_equal(logits.argmax(dim=1).numpy(), target.numpy())
    assert (result.target_probability > 1 / 3).all()
    np.testing.assert_array_equal(result.s, result.shift)


def test_originals_are_classified_as_origin(world, examples):
    link, generator, classifier = world
    r, origin, _ = examples
    logits, _ = render_and_classify(link, generator, classifier, r)
    np.testing.assert_array_equal(logits.argmax(dim=1).numpy(), origin.numpy())


def test_examples_are_optimised_independently(world, examples):
    r, origin, target = examples
    start = torch.rand(r.shape, generator=torch.Generator().manual_seed(3))
    batch = _run(world, r, origin, target, initial_shift=start)
    for i in range(r.shape[0]):
        alone = _run(world, r[i:i + 1], origin[i:i + 1], target[i:i + 1], initial_shift=start[i:i + 1])
        assert alone.steps[0] == batch.steps[i]
        np.testing.assert_allclose(alone.shift[0], batch.shift[i], rtol=1e-5, atol=1e-6)


def test_seeded_and_reproducible(world, examples):
    r, origin, target = examples
    first = _run(world, r, origin, target, seed=7)
    again = _run(world, r, origin, target, seed=7)
    other = _run(world, r, origin, target, seed=8)
    np.testing.assert_array_equal(first.shift, again.shift)
    np.testing.assert_array_equal(first.steps, again.steps)
    assert not np.array_equal(first.shift, other.shift)


def test_a_single_int_class_applies_to_all_examples(world, examples):
    r, _, _ = examples
    result = _run(world, r[:2], origin=0, target=2)  # example 1 is not of class 0: only the loss uses origin
    np.testing.assert_array_equal(result.origin, [0, 0])
    np.testing.assert_array_equal(result.target, [2, 2])
    assert result.success.all()


def test_failure_after_max_steps(world, examples):
    r, origin, target = examples
    result = _run(world, r, origin, target, max_steps=1)
    assert not result.success.any()
    np.testing.assert_array_equal(result.steps, [1, 1, 1, 1])
    assert result.success_rate == 0.0
    assert math.isnan(result.median_steps)
    assert (result.predicted >= 0).all()


def test_check_every_records_multiples(world, examples):
    r, origin, target = examples
    result = _run(world, r, origin, target, check_every=3)
    assert result.success.all()
    assert (result.steps % 3 == 0).all()


def test_stops_rendering_once_all_succeed(world, examples):
    r, origin, target = examples
    _, generator, _ = world
    result = _run(world, r, origin, target, batch_size=64)
    assert generator.calls == result.steps.max()  # one render per step while any example is active


def test_relu_is_part_of_the_loss(world, examples):
    """Shifts beyond r give the same loss as shifts exactly to zero (the reference lacked this ReLU)."""
    link, _, classifier = world
    r, origin, target = examples
    to_zero = counterfactual_loss(link, classifier, r, r.clone(), origin=origin, target=target)
    beyond = counterfactual_loss(link, classifier, r, r + 1.0, origin=origin, target=target)
    torch.testing.assert_close(to_zero, beyond)
    assert to_zero.shape == (4,)


def test_loss_on_hand_values(world):
    link, _, classifier = world
    r = torch.tensor([[2.0, 1.0, 0.0]])
    shift = torch.tensor([[1.0, -1.0, 0.0]])  # r' = [1, 2, 0]
    loss = counterfactual_loss(link, classifier, r, shift, origin=torch.tensor([0]), target=torch.tensor([1]),
                               logit_origin_weight=0.6, cosine_weight=10.0)
    cosine = (2 * 1 + 1 * 2) / (math.sqrt(5) * math.sqrt(5))
    torch.testing.assert_close(loss, torch.tensor([-2.0 + 0.6 * 1.0 - 10 * cosine]))


def test_target_equal_to_origin_is_refused(world, examples):
    r, origin, _ = examples
    target = torch.tensor([1, 1, 0, 2])  # example 1 has origin 1
    with pytest.raises(ValueError, match=r"target equals origin for examples \[1\]"):
        _run(world, r, origin, target)


def test_nan_in_r_is_refused_with_count(world, examples):
    r, origin, target = examples
    r = r.clone()
    r[0, 1] = float("nan")
    r[2, 0] = float("nan")
    with pytest.raises(ValueError, match="2 NaN"):
        _run(world, r, origin, target)


def test_class_out_of_range(world, examples):
    r, origin, _ = examples
    with pytest.raises(IndexError, match=r"\[3\].*K=3"):
        _run(world, r, origin, torch.tensor([1, 2, 3, 1]))
    with pytest.raises(IndexError, match="origin"):
        _run(world, r, -1, 1)


def test_bad_shapes_and_types(world, examples):
    r, origin, target = examples
    with pytest.raises(ValueError, match="D=3"):
        _run(world, r[:, :2], origin, target)
    with pytest.raises(ValueError, match="shape"):
        _run(world, r, origin, target[:2])
    with pytest.raises(TypeError, match="integer"):
        _run(world, r, origin, target.float())
    with pytest.raises(ValueError, match="initial_shift"):
        _run(world, r, origin, target, initial_shift=torch.zeros(2, 3))


def test_to_frame(world, examples):
    r, origin, target = examples
    frame = _run(world, r, origin, target).to_frame()
    assert list(frame.columns[:7]) == ["example", "origin", "target", "success", "steps", "predicted",
                                        "target_probability"]
    assert len(frame) == 4
    assert frame["target_name"].tolist() == ["green", "blue", "red", "blue"]


def test_image_objective_reaches_targets_the_head_cannot_see_through_the_link(world):
    """A link that swaps units 1 and 2 renders the head's target direction as another class."""
    _, generator, classifier = world
    swap = np.eye(3, dtype=np.float32)[[0, 2, 1]]
    link = LinearLink(weight=swap, bias=np.zeros(3, dtype=np.float32))
    r = torch.tensor([[3.0, 1.5, 1.2], [3.1, 1.2, 1.4]])
    options = {"origin": 0, "target": 1, "max_steps": 150, "cosine_weight": 1.0, "progress": False}
    reference = find_counterfactuals(link, generator, classifier, r, **options)
    assert not reference.success.any()
    assert set(reference.predicted) <= {0, 2}
    rendered = find_counterfactuals(link, generator, classifier, r, objective="image", **options)
    assert rendered.success.all()
    logits, _ = render_and_classify(link, generator, classifier, torch.as_tensor(rendered.r_counterfactual))
    np.testing.assert_array_equal(logits.argmax(dim=1).numpy(), [1, 1])
    with pytest.raises(ValueError, match="objective"):
        find_counterfactuals(link, generator, classifier, r, objective="pixels", **options)


def test_check_activations():
    """The one check of r against a link that counterfactuals and tuning sweeps share."""
    link = LinearLink(weight=np.ones((2, 3)), bias=np.zeros(2))
    r = check_activations(np.arange(6, dtype=np.float64).reshape(2, 3), link, "cpu")
    assert r.dtype == torch.float32 and r.device.type == "cpu" and not r.requires_grad
    np.testing.assert_array_equal(r, [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match=r"r must have shape \[N >= 1, D=3\]; got \[2, 4\]"):
        check_activations(torch.zeros(2, 4), link, "cpu")
    with pytest.raises(ValueError, match=r"shift must have shape \[N >= 1, D=3\]; got \[3\]"):
        check_activations(torch.zeros(3), link, "cpu", name="shift")
    with pytest.raises(ValueError, match="r holds 2 NaN or infinite values out of 6"):
        check_activations(torch.tensor([[0.0, float("nan"), 1.0], [float("-inf"), 0.0, 0.0]]), link, "cpu")


class SmallMemoryGenerator:
    """The fake generator, out of memory (as a GPU would be) for batches of more than ``limit`` images."""

    def __init__(self, generator, limit: int) -> None:
        self.generator, self.limit, self.largest = generator, limit, 0
        for name in ("num_ws", "w_dim", "z_dim", "c_dim", "img_resolution"):
            setattr(self, name, getattr(generator, name))

    def synthesis(self, ws):
        if len(ws) > self.limit and torch.is_grad_enabled():
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        self.largest = max(self.largest, len(ws)) if torch.is_grad_enabled() else self.largest
        return self.generator.synthesis(ws)


def test_the_image_objective_backpropagates_in_batches_that_halve_on_out_of_memory(world):
    """Per-example losses: gradients in batches are the gradient of the whole batch; a batch that does not fit
    is halved until it does, and the search ends where the unbatched one does."""
    _, generator, classifier = world
    link = LinearLink(weight=np.eye(3, dtype=np.float32)[[0, 2, 1]], bias=np.zeros(3, dtype=np.float32))
    r = torch.tensor([[3.0, 1.5, 1.2], [3.1, 1.2, 1.4], [2.9, 1.4, 1.3], [3.2, 1.1, 1.5], [3.0, 1.3, 1.3]])
    options = {"origin": 0, "target": 1, "max_steps": 150, "cosine_weight": 1.0, "progress": False,
               "objective": "image"}
    whole = find_counterfactuals(link, generator, classifier, r, batch_size=64, **options)
    small = SmallMemoryGenerator(generator, limit=2)
    batched = find_counterfactuals(link, small, classifier, r, batch_size=64, **options)
    assert 0 < small.largest <= 2
    np.testing.assert_allclose(batched.shift, whole.shift, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(batched.success, whole.success)
