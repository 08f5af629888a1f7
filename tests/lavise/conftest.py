"""Shared fixtures for the LaViSE tests: one thread, and the planted colour world of planted_colours.py."""

from __future__ import annotations

import pytest
from planted_colours import make_planted_model, make_planted_probe, make_planted_space
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
from torch import nn

from linkviz.dissection import ProbeDataset
from linkviz.lavise import SemanticSpace


@pytest.fixture(scope="session")
def planted_probe() -> ProbeDataset:
    return make_planted_probe()


@pytest.fixture
def planted_model() -> nn.Sequential:
    return make_planted_model()


@pytest.fixture(scope="session")
def planted_space() -> SemanticSpace:
    return make_planted_space()
