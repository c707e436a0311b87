"""Harness for the benchmark modules: the profile option, machine info, the shared lab, a live line per cell,
the journal of finished cells and `--bench-resume`."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path

import pytest
import torch

from unlearning.bench import shards
from unlearning.common.schema import SCHEMA_VERSION
from unlearning.data.registry import names as dataset_names
from unlearning.running import provenance
from unlearning.training import threads
from unlearning.training.models import resolve_device
from unlearning.training.progress import clock
from unlearning.training.throughput import GEMM_SIZE, matmul_gflops

from . import journal, order
from .lab import Lab
from .profiles import ENV, OPTION, PROFILES, active

RESUME = "--bench-resume"


def pytest_addoption(parser):
    parser.addoption(OPTION, default=None,
                     help=f"benchmark profile: {', '.join(PROFILES)} (default: ${ENV} or smoke)")
    parser.addoption(RESUME, action="store_true", default=False,
                     help="skip the cells already in the journal of this commit (and uncommitted changes), profile, "
                          "torch and device, and put their journaled results into this run's save "
                          "(see docs/resume.md)")


def pytest_configure(config):
    order.register(config)                # where pytest-split will cut: between the cells' units (benchmarks/order.py)
    try:
        active(config)                    # a bad name is a usage error before anything runs
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption(RESUME):
        if not any(config.getoption(o, None) for o in ("benchmark_save", "benchmark_autosave", "benchmark_json")):
            raise pytest.UsageError(f"{RESUME} needs a run that saves: add --benchmark-save=NAME, "
                                    "--benchmark-autosave or --benchmark-json=PATH (the journaled cells go there)")
        for option in ("benchmark_disable", "benchmark_skip"):
            if config.getoption(option, False):
                raise pytest.UsageError(f"{RESUME} runs the missing cells timed: it does not go with "
                                        f"--{option.replace('_', '-')}")


def pytest_report_header(config):
    p = active(config)
    return f"benchmark profile: {p.name} (torch {torch.__version__}, device {resolve_device(None)})"


def pytest_sessionstart(session):
    """Measure the device's GEMM peak before any benchmark loads the machine (`unlearning.training.throughput`), and
    read the git tree the run starts from (`unlearning.running.provenance`)."""
    matmul_gflops(str(resolve_device(None)))
    provenance.tree()


def pytest_benchmark_update_machine_info(config, machine_info):
    """The machine id does not tell torch versions or devices apart: record them, the fp32 GEMM throughput
    measured when the run started, and under `provenance` what moves the numbers (`unlearning.running.provenance`)."""
    device = resolve_device(None)
    machine_info.update(
        matmul_gflops=matmul_gflops(str(device)), gemm_size=GEMM_SIZE,
        torch=torch.__version__, cuda=torch.version.cuda,
        device=str(device), device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        threads=torch.get_num_threads(), bench_profile=active(config).name,
        bench_schema_version=SCHEMA_VERSION,
    )
    machine_info[provenance.KEY] = provenance.collect(device)
    cells = config.stash.get(CELLS, None)
    if cells is not None:                 # bench_complete, bench_cells {done, collected}, bench_resumed, bench_failed
        machine_info.update(cells.machine_info())
    shard = shard_info(config)
    if shard is not None:                 # a shard of a split run (`unlearning.bench.shards`): which, and what it built
        lab = config.stash.get(LAB, None)
        machine_info.update({shards.SHARD: shard, shards.BUILT: lab.built if lab is not None else []})


def shard_info(config) -> dict | None:
    """pytest-split's `--splits N --group k` of this session (None when it is not split), the algorithm and the
    launcher's id of the whole run ($UNLEARNING_LAUNCH, `unlearning.bench.cluster.launch`)."""
    splits, group = config.getoption("splits", None), config.getoption("group", None)
    if not splits or not group:
        return None
    return {"group": group, "splits": splits, "algorithm": config.getoption("splitting_algorithm", None),
            "launch": os.environ.get(shards.LAUNCH_ENV) or None}


@pytest.fixture(scope="session")
def profile(pytestconfig):
    """The session's benchmark profile (`benchmarks.profiles.active`)."""
    return active(pytestconfig)


LAB = pytest.StashKey[Lab]()


@pytest.fixture(scope="session")
def lab(pytestconfig, profile):
    pytestconfig.stash[LAB] = lab = Lab(profile, resolve_device(None))
    return lab


@pytest.fixture(autouse=True)
def thread_policy(request):
    """Each cell runs under the suite's thread policy for its dataset (`unlearning.training.threads`): one
    thread for the small models, the CPUs given for the others. A cell's id starts with its dataset;
    cells of no dataset (overhead) get the CPU budget."""
    callspec = getattr(request.node, "callspec", None)
    first = callspec.id.split("-")[0] if callspec is not None else None
    with threads.policy(first if first in dataset_names() else None):
        yield


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
CELLS = pytest.StashKey[journal.Cells]()


def _journal(config) -> journal.Journal | None:
    """This session's journal (`benchmarks.journal`), or None where nothing is timed or saved."""
    bs = config.pluginmanager.get_plugin("pytest-benchmark")
    if bs is None or bs.disabled or bs.skip or not (bs.save or bs.autosave or bs.json):
        return None
    commit = config.hook.pytest_benchmark_generate_commit_info(config=config)
    config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit)
    storage = Path(getattr(bs.storage, "path", ".benchmarks"))
    tree = journal.tree_key(commit, Path.cwd())
    name = journal.file_name(tree, active(config).name, torch.__version__, str(resolve_device(None)))
    return journal.Journal(storage / bs.machine_id / journal.FOLDER / name)


@pytest.hookimpl(wrapper=True)       # after every other plugin: -k / -m and pytest-split have deselected theirs
def pytest_collection_modifyitems(session, config, items):
    order.group_cells(items)             # before the others; the cuts are placed just before pytest-split's
    yield
    config.stash[CELLS] = cells = journal.Cells(_journal(config), resume=config.getoption(RESUME))
    held = cells.collect(items)
    if held:
        config.hook.pytest_deselected(items=held)
        items[:] = [item for item in items if item.nodeid not in cells.restored]


def pytest_report_collectionfinish(config, items):
    cells = config.stash.get(CELLS, None)
    return cells.resuming() if cells is not None else []


@pytest.hookimpl(wrapper=True, tryfirst=True)     # before pytest-benchmark saves
def pytest_sessionfinish(session, exitstatus):
    cells, bs = session.config.stash.get(CELLS, None), session.config.pluginmanager.get_plugin("pytest-benchmark")
    if cells is not None and bs is not None and not bs.disabled and not session.config.option.collectonly:
        cells.prepare(bs.benchmarks)
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and cells.restored and cells.complete:
            session.exitstatus = pytest.ExitCode.OK      # every cell was in the journal: the run is whole
    return (yield)


def pytest_terminal_summary(terminalreporter, config):
    cells = config.stash.get(CELLS, None)
    for line in cells.summary() if cells is not None and not config.option.collectonly else []:
        terminalreporter.write_line(line)


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
    cells = item.config.stash.get(CELLS, None)
    if cells is not None:                  # a finished cell goes into the journal at once
        cells.report(item, report)
    return report


@pytest.fixture
def progress(pytestconfig, request):
    """`progress("...")`: what this cell measured, printed in its live line when it finishes."""
    progress = pytestconfig.stash.get(PROGRESS, None)

    def say(msg: str):
        if progress is not None:
            progress.messages[request.node.nodeid] = msg

    return say
