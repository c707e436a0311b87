"""The plug-in example of docs/extending.md (the README's "add a method" points there), as a newcomer uses it.

Its code blocks are taken from docs/extending.md itself (so the page cannot drift from what runs),
built into a package of their own, installed as pip installs it, and run through the CLI and
one benchmark cell; the page's claims about the method (seeded, the trained model left
alone, its checks) are checked on the same code. Then the fault a newcomer met: a folder in
the working directory named like the plug-in's module shadowed an editable install, the
plug-in registered nothing, and nothing said so.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from unlearning import get_config, train_original, unlearn
from unlearning.data.registry import load_dataset
from unlearning.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
PAGE, SECTION = Path("docs") / "extending.md", "## A method"
MODULE, METHOD, GROUP = "unlearning_noise", "noise", "unlearning_bench.methods"
PIP = ("-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
       "--disable-pip-version-check")


def example_files() -> dict[str, str]:
    """The fenced blocks of the page's plug-in section whose first line names a file
    (`# unlearning_noise.py`, `# pyproject.toml`): {file name: the block's text}."""
    text = (ROOT / PAGE).read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    end = section.find("\n## ")                                    # the next section, if any
    section = section if end < 0 else section[:end]
    blocks = re.findall(r"^```[\w-]*\n(.*?)^```[ \t]*$", section, re.S | re.M)
    named = (re.match(r"# ([\w.-]+\.(?:py|toml))\n", b) for b in blocks)
    return {m.group(1): m.string for m in named if m}


def write_example(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in example_files().items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def needs_setuptools() -> None:
    """pip builds the example offline with this environment's setuptools (`--no-build-isolation`)."""
    pytest.importorskip("setuptools", reason="building the plug-in example offline needs setuptools")


def pythonpath(*entries: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*entries, ROOT]))}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example built and installed with pip (offline, into a target folder): what goes on sys.path."""
    needs_setuptools()
    src = write_example(tmp_path_factory.mktemp("unlearning-noise"))
    target = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, *PIP, "--target", str(target), str(src)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return target


@pytest.fixture
def noise_module(tmp_path, monkeypatch):
    """The example's module imported in this process (its @register runs); unregistered afterwards."""
    monkeypatch.syspath_prepend(str(write_example(tmp_path / "src")))
    try:
        yield importlib.import_module(MODULE)
    finally:
        METHODS.pop(METHOD, None)
        sys.modules.pop(MODULE, None)


def test_readme_example_is_a_whole_package():
    files = example_files()
    assert set(files) == {f"{MODULE}.py", "pyproject.toml"}
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["entry-points"][GROUP] == {METHOD: MODULE}
    assert project["tool"]["setuptools"]["py-modules"] == [MODULE]
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    # every name the module uses is imported there: register, Problem, UnlearnResult and TrainRecord from one path
    assert "from unlearning.methods import Problem, TrainRecord, UnlearnResult, register" in files[f"{MODULE}.py"]


def test_readme_example_does_what_the_readme_says(noise_module):
    data = load_dataset("synthetic", seed=0)
    cfg = get_config("synthetic", seed=0)
    trained = train_original(data, cfg)
    before = {k: v.clone() for k, v in trained.model.state_dict().items()}
    forget = [data.target_index]
    first, again = (unlearn(METHOD, trained, data, forget, cfg) for _ in range(2))
    other = unlearn(METHOD, trained, data, forget, cfg.with_method(METHOD, scale=0.5, last_layers=1))
    assert first.method == METHOD and first.details == {"noise_layers": 2}
    assert (first.cost.epochs, first.cost.steps, first.cost.converged) == (0, 0, None)
    weights = [n for n in before if n.endswith("weight")]
    for name, value in trained.model.state_dict().items():
        assert torch.equal(value, before[name])                                   # the trained model untouched
        assert torch.equal(first.model.state_dict()[name], again.model.state_dict()[name])   # same seed, same noise
        assert torch.equal(first.model.state_dict()[name], value) == (name not in weights)    # only weights move
    assert other.details == {"noise_layers": 1}
    assert torch.equal(other.model.state_dict()[weights[0]], before[weights[0]])   # last_layers=1: the first stays
    with pytest.raises(ValueError, match=r"method 'noise': last_layers=3, but the model has 2 Linear layers"):
        unlearn(METHOD, trained, data, forget, cfg.with_method(METHOD, last_layers=3))
    with pytest.raises(ValueError, match=r"scale=-1.0: must be a finite number >= 0"):
        cfg.with_method(METHOD, scale=-1.0)


def test_installed_example_runs_through_the_cli(installed, tmp_path):
    run = subprocess.run([sys.executable, "-m", "unlearning", "--methods", METHOD, "--trials", "1", "-q",
                          "--out", "run.json"], cwd=tmp_path, env=pythonpath(installed), capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert "PluginWarning" not in run.stderr
    assert [line.split()[1] for line in run.stdout.splitlines() if line.split()[:1] == ["0"]] == ["original", METHOD]
    records = json.loads((tmp_path / "run.json").read_text())["records"]
    (rec,) = [r for r in records if r["method"] == METHOD]
    assert rec["noise_layers"] == 2 and rec["epochs"] == 0 and rec["converged"] is None
    assert rec["rule"] == "Gaussian noise on the weights, no training"
    assert rec["config"]["methods"][METHOD] == {"scale": 0.01, "last_layers": None}
    assert rec["s_to_control"] > 0                                  # the noise moved the model's outputs


def test_installed_example_runs_as_a_benchmark_cell(installed, pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(installed), str(ROOT)]))
    monkeypatch.delenv("BENCH_PROFILE", raising=False)
    out = tmp_path / "bench.json"
    result = pytester.runpytest_subprocess(str(ROOT / "benchmarks" / "test_grid.py"), "-k",
                                           f"digits and {METHOD} and n50", f"--benchmark-json={out}",
                                           "-p", "no:cacheprovider", "--rootdir", str(ROOT))
    result.assert_outcomes(passed=1)
    (cell,) = json.loads(out.read_text())["benchmarks"]
    info = cell["extra_info"]
    assert cell["name"] == f"test_grid[digits-{METHOD}-adam-0.001-n50-seed0]"
    assert (info["method"], info["dataset"], info["removal_size"], info["table"]) == (METHOD, "digits", 50, "grid")
    assert info["noise_layers"] == 3 and info["epochs"] == 0 and info["s_to_control"] > 0   # MLP 64-32-16-10
    assert 0 <= info["test_acc"] <= 1 and info["oracle_epochs"] > 0


def editable_venv(folder: Path) -> Path:
    """A virtual environment seeing this one's packages, with the example installed editable
    (`pip install -e`, flat layout: setuptools serves it through a finder placed after the
    path entries, the working directory first among them). Returns its python."""
    needs_setuptools()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    python = folder / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    outer = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    Path(purelib, "outer.pth").write_text("\n".join(dict.fromkeys(outer)) + "\n")
    run = subprocess.run([str(python), *PIP, "-e", str(write_example(folder / "unlearning-noise"))],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return python


def test_a_folder_named_like_the_plugin_shadows_it_and_is_named(tmp_path):
    python = editable_venv(tmp_path)
    env = pythonpath()
    code = f"import unlearning.methods as m; print(m.get_method({METHOD!r}).paper)"
    found = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert found.returncode == 0 and "PluginWarning" not in found.stderr, found.stderr   # no shadow: found
    assert found.stdout.strip() == "baseline (ours): Gaussian noise on the weights, no training"
    work = tmp_path / "work"
    (work / MODULE).mkdir(parents=True)                             # e.g. the plug-in's own project folder
    run = subprocess.run([str(python), "-m", "unlearning", "--methods", METHOD, "-q"], cwd=work, env=env,
                         capture_output=True, text=True)
    assert f"PluginWarning: plug-in {METHOD!r} ({MODULE}) of entry-point group {GROUP!r} registered no method: " \
           f"{MODULE!r} was imported as a namespace package at {work / MODULE}: a folder named {MODULE!r} " \
           f"without __init__.py (in the working directory or earlier on sys.path) shadows the installed module" \
           in run.stderr
    assert run.returncode == 2 and f"unknown method {METHOD!r}" in run.stderr      # refused before any work
