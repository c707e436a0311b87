"""Harness for the benchmark modules: the profile option, machine info, the shared lab, progress lines."""

from __future__ import annotations

import logging
import time

import pytest
import torch

from unlearning.models import resolve_device
from unlearning.schema import SCHEMA_VERSION

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


def pytest_benchmark_update_machine_info(config, machine_info):
    """The machine id does not tell torch versions or devices apart: record them."""
    device = resolve_device(None)
    machine_info.update(
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


@pytest.fixture
def progress(pytestconfig, request):
    """Print a progress line for long runs (shown live, without -s): `progress("...")`."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    started = time.perf_counter()

    def say(msg: str):
        line = f"[{request.node.name}] {msg} ({time.perf_counter() - started:.1f}s)"
        logging.getLogger("benchmarks").info(line)
        if reporter is None:
            return
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():     # output capture would swallow it
            reporter.write_line(line)

    return say
