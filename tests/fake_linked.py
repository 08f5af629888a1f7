"""The fake world linked: fixtures shared by the controller and widget tests (import them into a conftest).

``from fake_linked import fake_world, identity_linked, linked  # noqa: F401`` makes them visible to a folder;
the world is that of :mod:`fake_world` with w centred at 2, so every unit of r is active and counterfactuals can
raise any class.
"""

from __future__ import annotations

import dataclasses

import pytest
from fake_world import FakeGenerator, FakeWorld, fake_classifier, identity_link

from linkviz.linking import LinkedModel, build_linked_model


@pytest.fixture
def fake_world() -> FakeWorld:
    # w centred at 2, so every unit of r is active and counterfactuals can raise any class
    return FakeWorld(classifier=fake_classifier(), generator=FakeGenerator(offset=2.0))


@pytest.fixture
def linked(fake_world) -> LinkedModel:
    """The fake world with a ridge link fitted on 24 pairs (r has 3 units)."""
    return build_linked_model(fake_world, samples_per_class=8, truncation_psi=1.0, seed=0)


@pytest.fixture
def identity_linked(linked) -> LinkedModel:
    """The same base pairs with the exact link w = r of the fake world (counterfactuals succeed)."""
    return dataclasses.replace(linked, link=identity_link())
