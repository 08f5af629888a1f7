"""An autouse fixture shared by test folders with tiny data: run each test on one torch thread.

Import it into a conftest or test module (``from single_thread import single_thread``); the machine's two cores
are usually busy, and tiny tensors gain nothing from threads.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Set torch to one thread for the test, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
