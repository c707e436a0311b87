"""Harness for the benchmark modules: the profile option, machine info, the shared lab, a live line per cell."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import pytest
import torch

from unlearning.models import resolve_device
from unlearning.progress import clock
from unlearning.schema import SCHEMA_VERSION
from unlearning.throughput import GEMM_SIZE, matmul_gflops

from .lab import Lab
from .profiles import ENV, OPTION, PROFILES, active


def pytest_addoption(parser):
    parser.addoption(OPTION, default=None,
                     help=f"benchmark profile: {', '.join(PROFILES)} (default: ${ENV} or smoke)")


def pytest_configure(config):
    try:
        active(config)                    # a bad name is a usage error before anything runs
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config):
    p = active(config)
    return f"benchmark profile: {p.name} (torch {torch.__version__}, device {resolve_device(None)})"


def pytest_sessionstart(session):
    """Measure the device's GEMM peak before any benchmark loads the machine (`unlearning.throughput`)."""
    matmul_gflops(str(resolve_device(None)))


def pytest_benchmark_update_machine_info(config, machine_info):
    """The machine id does not tell torch versions or devices apart: record them, and the
    fp32 GEMM throughput measured when the run started."""
    device = resolve_device(None)
    machine_info.update(
        matmul_gflops=matmul_gflops(str(device)), gemm_size=GEMM_SIZE,
        torch=torch.__version__, cuda=torch.version.cuda,
        device=str(device), device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        threads=torch.get_num_threads(), bench_profile=active(config).name,
        bench_schema_version=SCHEMA_VERSION,
    )


@pytest.fixture(scope="session")
def profile(pytestconfig):
    """The session's benchmark profile (`benchmarks.profiles.active`)."""
    return active(pytestconfig)


@pytest.fixture(scope="session")
def lab(pytestconfig, profile):
    return Lab(profile, resolve_device(None))


class Progress:
    """One live line per finished benchmark cell: position, what it measured, its time, the
    time so far and an estimate of what remains.

    The estimate sums, over the cells still to run, the mean time of finished cells of the
    same group (test function and the first two words of its id, e.g. `test_grid[mnist-
    naive_retrain`), else of the same test function, else of every finished cell.
    """

    def __init__(self, config):
        self.config, self.started = config, time.perf_counter()
        self.items: list = []
        self.done: set[str] = set()
        self.seconds: dict[str, list[float]] = {}
        self.messages: dict[str, str] = {}
        self.module, self.dangling = "", False

    @staticmethod
    def groups(nodeid: str) -> tuple[str, str]:
        func, _, params = nodeid.partition("[")
        return func + "[" + "-".join(params.split("-")[:2]), func

    def estimate(self) -> float:
        every = [t for ts in self.seconds.values() for t in ts]
        if not every:
            return math.nan
        left = 0.0
        for item in self.items:
            if item.nodeid not in self.done:
                group, func = self.groups(item.nodeid)
                times = self.seconds.get(group) or [t for g, ts in self.seconds.items() if g.startswith(func + "[")
                                                    for t in ts] or every
                left += sum(times) / len(times)
        return left

    def finished(self, report) -> None:
        self.done.add(report.nodeid)
        if report.skipped:          # pytest prints its "s" where the next line would start
            self.dangling = True
            return
        for group in self.groups(report.nodeid)[:1]:
            self.seconds.setdefault(group, []).append(report.duration)
        name = report.nodeid.split("::")[-1]
        what = self.messages.pop(report.nodeid, "failed" if report.failed else "done")
        left = self.estimate()
        line = (f"[{len(self.done)}/{len(self.items)}] {name}: {what} ({clock(report.duration)}) · "
                f"{clock(time.perf_counter() - self.started)} so far, ~{clock(left)} left")
        logging.getLogger("benchmarks").info(line)
        module = report.nodeid.split("::")[0]
        _write(self.config, line, new_line=module != self.module or self.dangling)
        self.module, self.dangling = module, False


def _write(config, line: str, new_line: bool) -> None:
    """The live line on the terminal: none under -q; under -v after pytest's own line; at the
    default verbosity in place of the cell's dot (see `pytest_report_teststatus`), one per line
    below the module's name."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    verbosity = config.get_verbosity()
    if reporter is None or verbosity < 0:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():  # capture would swallow it
        if verbosity > 0:
            reporter.write_line(line)
        else:       # ending the line leaves pytest's progress check an empty one: no [ nn%] glued on
            reporter.write(("\n" if new_line else "") + line + "\n", flush=True)


def _is_cell(nodeid: str) -> bool:
    return nodeid.startswith(f"{Path(__file__).parent.name}/")


def pytest_report_teststatus(report, config):
    """At the default verbosity a passed benchmark cell's live line stands for it: no dot besides
    (a skip keeps its s, which has no line; a failure its F, an error its E)."""
    if config.get_verbosity() != 0 or not _is_cell(report.nodeid):
        return None
    if report.when == "call" and report.passed:
        return report.outcome, "", report.outcome.upper()
    return None


PROGRESS = pytest.StashKey[Progress]()


def pytest_collection_finish(session):
    session.config.stash[PROGRESS] = progress = Progress(session.config)
    progress.items = list(session.items)


def pytest_runtest_logreport(report):
    progress = getattr(report, "_progress", None)
    if progress is not None and (report.when == "call" or (report.when == "setup" and report.skipped)):
        progress.finished(report)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    report._progress = item.config.stash.get(PROGRESS, None)
    return report


@pytest.fixture
def progress(pytestconfig, request):
    """`progress("...")`: what this cell measured, printed in its live line when it finishes."""
    progress = pytestconfig.stash.get(PROGRESS, None)

    def say(msg: str):
        if progress is not None:
            progress.messages[request.node.nodeid] = msg

    return say
