"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def single_thread():
    """Run a test with one torch thread: the suite's nets are tiny, and on a small busy
    machine intra-op threads only add contention. Restores the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


pytest_plugins = ["pytester"]
