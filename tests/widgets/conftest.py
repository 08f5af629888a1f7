"""A tiny hand-set world for the widget tests: identity-like models on 8 x 8 images, milliseconds per pass.

The generator paints channel c with tanh(w_c / 4); the classifier's features are r = relu(4 tanh(w / 4)) and its
head is the identity, so the class is argmax r (the world of tests/counterfactual/conftest.py, unconditional).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
from fake_world import CLASS_NAMES, D, FakeGenerator, fake_classifier

from linkviz.linking import LinearLink, LinkedModel, build_linked_model
from linkviz.models import Classifier


@dataclass(frozen=True)
class FakeWorld:
    classifier: Classifier
    generator: FakeGenerator

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES


@pytest.fixture
def fake_world() -> FakeWorld:
    # w centred at 2, so every unit of r is active and counterfactuals can raise any class
    return FakeWorld(classifier=fake_classifier(), generator=FakeGenerator(offset=2.0))


@pytest.fixture
def linked(fake_world) -> LinkedModel:
    """The fake world with a ridge link fitted on 24 pairs."""
    return build_linked_model(fake_world, samples_per_class=8, truncation_psi=1.0, seed=0)


@pytest.fixture
def identity_linked(linked) -> LinkedModel:
    """The same base pairs with the exact link w = r of the fake world (counterfactuals succeed)."""
    identity = LinearLink(weight=np.eye(D, dtype=np.float32), bias=np.zeros(D, dtype=np.float32))
    return dataclasses.replace(linked, link=identity)

