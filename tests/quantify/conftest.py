"""Shared settings for the quantification tests."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def single_thread():
    """Run each test on one thread: the data are tiny, and oversubscribed cores make tiny ops very slow."""
    with threadpool_limits(limits=1):
        yield
