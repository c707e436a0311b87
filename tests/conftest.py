"""Shared fixtures: no real data (`offline`), the thread policy, the toy unlearning problems every method's tests
share (`digits_problem`, `convnet_problem`, built by `toys.py`), and the sharded Slurm smoke run."""

from dataclasses import replace

import pytest
from toys import Problem, toy_problem

from unlearning.data import california, mnist
from unlearning.training import threads

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


@pytest.fixture(autouse=True, scope="session")
def thread_policy():
    """Every test runs with one torch thread (or $UNLEARNING_THREADS), the thread policy's choice for
    small models (`unlearning.training.threads`): the tests train the suite's MLPs and MNIST's ConvNet on tiny
    subsets only, and beside other jobs extra threads only wait for each other. The CLI and benchmark
    subprocesses the tests start apply the policy themselves."""
    with threads.using(threads.override() or 1):
        yield


pytest_plugins = ["pytester"]


# -- the toy unlearning problems of `toys.py` (originals trained once a process) ---------------------------------------
@pytest.fixture
def digits_problem() -> Problem:
    """The MLP toy problem, seed 0: 120 digits rows, the digits preset capped at 2 epochs, 6 points to forget."""
    return toy_problem("digits", 0)


@pytest.fixture
def convnet_problem() -> Problem:
    """The ConvNet toy problem, seed 0: 16 random MNIST-shaped images, MNIST's preset capped at 1 epoch, 3 to forget."""
    return toy_problem("convnet", 0)


# -- the smoke profile as shards on a local Slurm (tests/slurm_smoke.py, tests/test_cluster_slurm.py) ----------------
SLURM_SMOKE = pytest.StashKey["SmokeOnSlurm"]()
MARK = "slurm_smoke"


def _marked(items) -> list:
    return [item for item in items if item.get_closest_marker(MARK)]


def pytest_collection_modifyitems(config, items):
    """The sharded smoke check runs last: its run is started in the background when collection ends, so the rest of
    the suite runs meanwhile."""
    late = _marked(items)
    if late:
        items[:] = [item for item in items if item not in late] + late


def pytest_collection_finish(session):
    if _marked(session.items) and not session.config.option.collectonly:
        from slurm_smoke import SmokeOnSlurm

        session.config.stash[SLURM_SMOKE] = SmokeOnSlurm().start()


def pytest_unconfigure(config):
    run = config.stash.get(SLURM_SMOKE, None)
    if run is not None:
        run.stop()


@pytest.fixture
def slurm_smoke(pytestconfig):
    """The finished background run (`tests/slurm_smoke.py`); skipped with the reason where Slurm cannot run."""
    run = pytestconfig.stash.get(SLURM_SMOKE, None)
    if run is None:
        pytest.skip("the sharded smoke run was not started (collect-only?)")
    if run.skip_reason:
        pytest.skip(run.skip_reason)
    run.wait()
    if run.error is not None:
        raise run.error
    return run
