"""Shared settings for the linking tests."""

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def single_thread():
    """Run each test on one thread: the data are tiny, and oversubscribed cores make tiny ops very slow."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)
