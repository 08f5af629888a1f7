"""The counterfactual edit respects the range the classifier spec declares for r (ReLU only after a ReLU)."""

import dataclasses

import numpy as np
import pytest
import torch

from linkviz.counterfactual import find_counterfactuals
from linkviz.models.classifier import Classifier, ClassifierSpec


def _spec(penultimate_range):
    return ClassifierSpec(input_size=(8, 8), in_channels=1, value_range=(0.0, 1.0), mean=(0.5,), std=(0.5,),
                          resize_to=None, penultimate_layer="block", class_names=("a", "b"),
                          penultimate_range=penultimate_range)


def test_signed_features_are_not_clipped():
    r = torch.tensor([[-2.0, 0.5, 3.0]])
    assert torch.equal(_spec((None, None)).clip_penultimate(r), r)


def test_post_relu_features_are_clipped_at_zero_and_relu6_at_six():
    r = torch.tensor([[-2.0, 0.5, 7.0]])
    assert _spec((0.0, None)).clip_penultimate(r).tolist() == [[0.0, 0.5, 7.0]]
    assert _spec((0.0, 6.0)).clip_penultimate(r).tolist() == [[0.0, 0.5, 6.0]]


def test_a_declared_range_that_the_activations_break_is_refused():
    with pytest.raises(ValueError, match="below 0.0.*penultimate_range"):
        _spec((0.0, None)).check_penultimate(torch.tensor([[-1.0, 2.0]]))
    _spec((None, None)).check_penultimate(torch.tensor([[-1.0, 2.0]]))


def test_an_inverted_range_is_refused():
    with pytest.raises(ValueError, match="penultimate_range"):
        _spec((1.0, 0.0))


def test_counterfactual_of_signed_features_keeps_their_negative_values(world):
    """Declared signed, r' = r - s keeps negative values; declared post-ReLU, the same shift is clipped at 0."""
    link, generator, relu_classifier = world
    signed = Classifier(relu_classifier.module, dataclasses.replace(relu_classifier.spec,
                                                                    penultimate_range=(None, None)))
    r = torch.tensor([[3.0, -1.5, 1.2], [-1.4, 3.2, 1.3]])
    result = find_counterfactuals(link, generator, signed, r, origin=[0, 1], target=[1, 2], max_steps=3,
                                  progress=False)
    np.testing.assert_allclose(result.r_counterfactual, r.numpy() - result.shift, atol=1e-6)
    assert (result.r_counterfactual < 0).any()
    with pytest.raises(ValueError, match="penultimate_range"):
        find_counterfactuals(link, generator, relu_classifier, r, origin=[0, 1], target=[1, 2], max_steps=3,
                             progress=False)
