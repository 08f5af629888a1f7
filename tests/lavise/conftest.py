"""Shared fixtures for the LaViSE tests: one thread, and the planted colour world of planted_colours.py."""

from __future__ import annotations

import pytest
import torch
from planted_colours import make_planted_model, make_planted_probe, make_planted_space
from torch import nn

from linkviz.dissection import ProbeDataset
from linkviz.lavise import SemanticSpace


@pytest.fixture(autouse=True)
def single_thread():
    """Run each test on one torch thread: the data are tiny and the machine's cores are busy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def planted_probe() -> ProbeDataset:
    return make_planted_probe()


@pytest.fixture
def planted_model() -> nn.Sequential:
    return make_planted_model()


@pytest.fixture(scope="session")
def planted_space() -> SemanticSpace:
    return make_planted_space()
