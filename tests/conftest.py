"""Shared fixtures."""

from dataclasses import replace

import pytest
import torch

from unlearning.datasets import california, mnist

DEAD_URL = "http://127.0.0.1:9/nothing.gz"   # nothing listens there: a download fails at once


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No real data, no internet: the data dir unset, a fresh cache, every source URL dead."""
    monkeypatch.delenv("UNLEARNING_DATA_DIR", raising=False)
    monkeypatch.delenv("UNLEARNING_OFFLINE", raising=False)
    monkeypatch.setenv("UNLEARNING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the dead URL must never go through a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    for key, spec in mnist.FILES.items():
        monkeypatch.setitem(mnist.FILES, key, replace(spec, urls=(DEAD_URL,)))
    monkeypatch.setattr(california, "FILE", replace(california.FILE, urls=(DEAD_URL,)))


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
