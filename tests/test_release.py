"""The release command (`python -m benchmarks.release`): a dirty tree refused, stale searches found by their code, the
progress line, each part's cost, what moved against the previous release, a failed report undone, and a release
interrupted by Ctrl-C and resumed giving the records an uninterrupted one gives."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("submitit")
pytest.importorskip("pytest_split")

from benchmarks import release
from unlearning.bench.cluster.launch import FAILED, RUNNING, Manifest, Resources, ShardState
from unlearning.bench.report.history import GONE, NEW, moved

ROOT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_a_dirty_tree_is_refused_with_each_change_named(monkeypatch, capsys):
    monkeypatch.setattr(release, "git_state", lambda root: {"git_commit": "a" * 40, "git_dirty": True,
                                                            "git_changes": 1, "git_changed_paths": ["x.py"]})
    assert release.main([]) == release.DIRTY_EXIT
    err = capsys.readouterr().err
    assert "1 uncommitted change(s)" in err and "  x.py" in err


@pytest.fixture
def repo(tmp_path):
    """A git repository with one method module and a search of it made at the first commit."""
    repo = tmp_path / "repo"
    (repo / "benchmarks" / "tuned").mkdir(parents=True)
    (repo / "m.py").write_text('"""A method."""\n\ndef unlearn(x):\n    """Forget."""\n    return x + 1\n')
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD")
    search = {"dataset": "d", "profile": "paper", "trials_per_method": 8, "n_models": 4,
              "subset": {"train": 500, "test": None},
              "regimes": {"random": {"methods": {"m": {"provenance": {"git_commit": first}}}},
                          "canaries": {"methods": {"m": {"provenance": {"git_commit": first}}}}}}
    (repo / "benchmarks" / "tuned" / "d.json").write_text(json.dumps(search))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "search")
    return repo


def commit(repo: Path, text: str) -> None:
    (repo / "m.py").write_text(text)
    git(repo, "commit", "-qam", "change")


def test_a_search_is_stale_when_its_methods_code_changed_not_its_docstrings(repo, monkeypatch):
    monkeypatch.setattr(release, "method_file", lambda name, root: "m.py")
    assert release.stale_searches(repo) == []
    commit(repo, '"""A method, reworded."""\n\n\ndef unlearn(x):   # a comment\n    """Forget it."""\n'
                 '    return x + 1\n')
    assert release.stale_searches(repo) == []              # docstrings, comments and layout are not code
    commit(repo, '"""A method."""\n\ndef unlearn(x):\n    return x + 2\n')
    (stale,) = release.stale_searches(repo)
    assert list(stale.methods) == ["m"] and "m.py changed since" in stale.methods["m"]
    assert stale.regimes == ("random", "canaries")
    assert stale.command()[1:] == ["-m", "benchmarks.tune", "d", "--bench-profile", "paper", "--trials", "8",
                                   "--n-models", "4", "--train", "500", "--regimes", "random", "canaries",
                                   "--methods", "m"]


def test_a_search_whose_commit_is_not_in_the_clone_is_stale(repo, monkeypatch):
    monkeypatch.setattr(release, "method_file", lambda name, root: "m.py")
    path = repo / "benchmarks" / "tuned" / "d.json"
    search = json.loads(path.read_text())
    search["regimes"]["random"]["methods"]["m"]["provenance"]["git_commit"] = "f" * 40
    path.write_text(json.dumps(search))
    (stale,) = release.stale_searches(repo)
    assert "not in this clone" in stale.methods["m"] and stale.regimes == ("random",)


def test_the_registered_methods_resolve_to_their_modules():
    assert release.method_file("sisa", ROOT) == "unlearning/methods/sisa.py"
    assert release.method_file("no_such_method", ROOT) is None


def journal(folder: Path, cells: list[str]) -> None:
    path = folder / "storage" / "machine" / "journal" / "j.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for cell in cells:
            fh.write(json.dumps({"fullname": cell}) + "\n")


def test_the_progress_line_counts_cells_and_estimates_from_the_recorded_durations(tmp_path):
    journal(tmp_path, ["a"])                                 # done before this session: not the rate's evidence
    eta = release.Eta(["a", "b", "c", "d"], {"a": 10.0, "b": 10.0, "c": 30.0}, tmp_path)
    assert eta.line(5.0).endswith("ETA after 3% of the recorded time")
    journal(tmp_path, ["b"])
    with (tmp_path / "storage" / "machine" / "journal" / "j.jsonl").open("a") as fh:
        fh.write('{"fullname": "c"')                         # a torn last line
    # b (10 s recorded) took 20 s: left are c (30 s) and d (the mean, 50/3 s), at that rate
    line = eta.line(20.0)
    assert "2/4 cells" in line and f"~{release.clock(20.0 * (30 + 50 / 3) / 10)} left" in line


def test_each_parts_cost_sums_every_attempt_and_durations_keep_the_run_attempts(tmp_path):
    case = '<testcase classname="benchmarks.test_grid" name="test_grid[mnist-noop-n50]" time="{}">{}</testcase>'
    other = '<testcase classname="benchmarks.test_overhead" name="test_fit_overhead" time="2.0" />'
    (tmp_path / "shard-1.attempt-1.xml").write_text(f"<testsuites><testsuite>{case.format(5.0, '')}{other}"
                                                    "</testsuite></testsuites>")
    (tmp_path / "shard-1.attempt-2.xml").write_text(f"<testsuites><testsuite>{case.format(0.5, '<skipped/>')}"
                                                    "</testsuite></testsuites>")
    (tmp_path / "shard-2.attempt-1.xml").write_text("<testsuites><testsuite>")          # killed mid-write
    spent = release.costs(tmp_path)
    assert spent["parts"] == {"grid mnist": {"cells": 1, "seconds": 5.5}, "overhead": {"cells": 1, "seconds": 2.0}}
    assert spent["cells"] == {"benchmarks/test_grid.py::test_grid[mnist-noop-n50]": 5.0,
                              "benchmarks/test_overhead.py::test_fit_overhead": 2.0}


def frame(rows):
    return pd.DataFrame(rows, columns=["kind", "figure", "value", "lo", "hi", "n"])


def test_what_moved_names_figures_beyond_their_spread_new_and_gone():
    before = frame([("metric", "a", 0.5, 0.4, 0.6, 3), ("metric", "b", 0.5, 0.45, 0.55, 3),
                    ("metric", "c", 0.5, math.nan, math.nan, 1), ("metric", "gone", 1.0, 0.9, 1.1, 3)])
    after = frame([("metric", "a", 0.55, 0.45, 0.65, 3), ("metric", "b", 0.7, 0.65, 0.75, 3),
                   ("metric", "c", 0.5, math.nan, math.nan, 1), ("metric", "new", 1.0, 0.9, 1.1, 3)])
    rows, common = moved(before, after)
    assert common == 3
    assert dict(zip(rows["figure"], rows["change"], strict=True)) == {"b": "beyond spread", "gone": GONE, "new": NEW}


def test_a_failed_report_puts_the_previous_runs_back(tmp_path, capsys):
    reports = tmp_path / "reports"
    (reports / "runs").mkdir(parents=True)
    (reports / "runs" / "old.json").write_text("{}")
    kept = release.keep_previous(reports / "runs", tmp_path / "previous")
    assert [p.name for p in kept] == ["old.json"]
    (reports / "runs" / "old.json").write_text('{"changed": 1}')
    assert [p.read_text() for p in release.keep_previous(reports / "runs", tmp_path / "previous")] == ["{}"]
    bad = tmp_path / "merged.json"
    bad.write_text("not a run")
    assert release.regenerate(bad, "release-x.json", reports, tmp_path / "previous") == 1
    assert "previous runs are put back" in capsys.readouterr().err
    assert [p.read_text() for p in (reports / "runs").iterdir()] == ["{}"]
    assert sorted(p.name for p in reports.iterdir()) == ["runs"]


def test_resume_finds_the_one_unfinished_release_once_the_checkout_moved_on(repo, tmp_path):
    def started(name: str, released: bool = False) -> Path:
        folder = release.releases(repo) / f"{name}-paper"
        folder.mkdir(parents=True)
        (folder / "launch.json").write_text("{}")
        (folder / "release.json").write_text(json.dumps({"commit": name, "released": released}))
        return folder

    with pytest.raises(ValueError, match="no unfinished release of profile paper"):
        release.unfinished(repo, "paper")
    started("aaaaaaaaaaaa", released=True)
    older = started("bbbbbbbbbbbb")
    assert release.unfinished(repo, "paper") == older       # HEAD moved on: the one unfinished release
    assert release.begun(older)["commit"] == "bbbbbbbbbbbb"
    started("cccccccccccc")
    with pytest.raises(ValueError, match="2 unfinished releases of profile paper: choose one with --folder"):
        release.unfinished(repo, "paper")
    head = git(repo, "rev-parse", "HEAD")
    mine = started(head[:12])
    assert release.unfinished(repo, "paper") == mine        # the checkout's own commit's comes first
    with pytest.raises(ValueError, match="holds no release to resume"):
        release.begun(tmp_path)


def test_a_resumed_release_reruns_local_shards_whose_process_is_gone(tmp_path):
    manifest = Manifest.new(tmp_path, 2, "local", Resources(), ("benchmarks/",), tmp_path)
    manifest.executor = "local"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    manifest.shards[1] = ShardState(1, RUNNING, job_id=str(gone.pid), attempts=1)
    manifest.shards[2] = ShardState(2, RUNNING, job_id=str(os.getpid()), attempts=1)
    assert release.lost_local_shards(manifest) == [f"shard 2 (pid {os.getpid()})"]
    saved = Manifest.load(tmp_path)
    assert saved.shards[1].state == FAILED and "process is gone" in saved.shards[1].reason
    assert saved.shards[2].state == RUNNING


# -- a whole (small) release, interrupted and resumed ------------------------------------------------------------------
SELECTION = ["--", "benchmarks/test_paper000_weight_pruning.py", "-k", "synthetic"]
TIMING = ("seconds", "load_avg", "gflops", "peak_fraction", "speedup", "rte", "flops", "throughput")


def records(merged: Path) -> dict:
    """The merged run's records without what timing measures (which no two runs share)."""
    run = json.loads(merged.read_text())
    return {c["fullname"]: {k: v for k, v in c["extra_info"].items() if not any(t in k for t in TIMING)}
            for c in run["benchmarks"]}


def release_cmd(folder: Path, *extra: str) -> list[str]:
    """The release of the selection into `folder`, its report beside it (the clone stays clean for the next)."""
    return [sys.executable, "-m", "benchmarks.release", "--bench-profile", "smoke", "--skip-stale-searches",
            "--no-durations", "--executor", "local", "--shards", "2", "--folder", str(folder),
            "--reports", str(folder.with_name(folder.name + "-reports")), *extra, *SELECTION]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clean clone of this checkout's commit (the release refuses a dirty tree), importing its own package."""
    clone = tmp_path_factory.mktemp("release") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    return clone


def run_release(clone: Path, folder: Path, *extra: str, interrupt: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(clone)}
    proc = subprocess.Popen(release_cmd(folder, *extra), cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    if interrupt:                   # Ctrl-C in a terminal: SIGINT to the whole group, once a cell is journaled
        deadline = time.monotonic() + 300
        while not release.journaled(folder) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


def test_an_interrupted_and_resumed_release_gives_the_records_of_an_uninterrupted_one(clone, tmp_path):
    reports = tmp_path / "whole-reports"
    (reports / "runs").mkdir(parents=True)
    (reports / "runs" / "before.json").write_text((ROOT / "tests" / "data" / "release_previous.json").read_text())
    whole = run_release(clone, tmp_path / "whole")
    assert whole.returncode == 0, whole.stdout[-3000:]
    assert "against the previous release (1 run(s))" in whole.stdout
    assert sorted(p.name for p in (reports / "runs").iterdir()) == [f"release-{git(clone, 'rev-parse', 'HEAD')[:12]}"
                                                                    "-smoke.json"]
    assert (reports / "README.md").exists() and (tmp_path / "whole" / "moved.csv").exists()
    # written in the worktree, then moved: its links and the run's name are a checkout's, not the release folder's
    provenance = (reports / "provenance.md").read_text()
    assert "(../docs/choices.md)" in provenance and "| reports/runs/release-" in provenance
    assert str(tmp_path) not in provenance and f"{release.TREE}/docs" not in (reports / "README.md").read_text()
    summary = json.loads((tmp_path / "whole" / "release.json").read_text())
    assert summary["shards"] == 2 and summary["parts"]["paper000_weight_pruning synthetic"]["cells"] == 6
    assert summary["released"] is True and summary["commit"] == git(clone, "rev-parse", "HEAD")
    assert not (tmp_path / "whole" / release.TREE).exists(), "a finished release removes its worktree"
    assert str(tmp_path / "whole") not in git(clone, "worktree", "list")
    released = git(clone, "rev-parse", "HEAD")

    cut = run_release(clone, tmp_path / "cut", interrupt=True)
    assert cut.returncode == 130, cut.stdout[-3000:]
    assert "--resume" in cut.stdout
    deadline = time.monotonic() + 120          # an interrupted shard's pytest writes its JUnit XML as it stops
    while not list((tmp_path / "cut").glob("shard-*.attempt-1.xml")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list((tmp_path / "cut").glob("shard-*.attempt-1.xml"))
    refused = run_release(clone, tmp_path / "cut")
    assert refused.returncode == release.DIRTY_EXIT and "--resume goes on with it" in refused.stdout
    # the checkout moves on meanwhile (stop 36's refused merge: a commit moved HEAD under a running shard): the
    # release's shards run in its own worktree of the released commit, so this changes nothing of it
    (clone / "moved-on.txt").write_text("work went on while the release waited\n")
    git(clone, "add", "moved-on.txt")
    git(clone, "commit", "-q", "-m", "moved on")
    resumed = run_release(clone, tmp_path / "cut", "--resume")
    git(clone, "reset", "-q", "--hard", released)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    summary = json.loads((tmp_path / "cut" / "release.json").read_text())
    assert [s["interrupted"] for s in summary["sessions"]] == [True, False] and summary["commit"] == released
    assert records(tmp_path / "cut" / "merged.json") == records(tmp_path / "whole" / "merged.json")
    merged = json.loads((tmp_path / "cut" / "merged.json").read_text())
    assert merged["commit_info"]["id"] == released and merged["commit_info"]["dirty"] is False
