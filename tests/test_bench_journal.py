"""The benchmark journal: Ctrl-C keeps the finished cells, a torn line is survived, --bench-resume runs the rest.

The subprocess runs are paper 000's three synthetic cells of trial 1 at the smoke profile (seconds each).
To interrupt a cell *inside* its timed call (where pytest-benchmark used to crash with `min() arg is an
empty sequence`, the cell having no timing), a small plugin holds the second timed call open; the test
sends SIGINT once the first cell's journal line is on disk and the hold has begun, never after a sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.journal import Cells, Journal, cell, restore, tree_key

ROOT = Path(__file__).resolve().parents[1]
PAPER000 = str(ROOT / "benchmarks" / "test_paper000_weight_pruning.py")
SELECT = ["-k", "synthetic and trial1"]
METHODS = ["naive_retrain", "weight_pruning", "finetune"]       # collection order
DEADLINE = 240                                                  # s, for any one subprocess step

HOLD = '''
import pathlib
import time


def pytest_collection_finish(session):
    import benchmarks.lab as lab
    real, calls = lab.unlearn_many, []

    def held(*args, **kwargs):          # the second cell's timed call waits here for SIGINT
        calls.append(1)
        if len(calls) == 2:
            pathlib.Path("holding").touch()
            time.sleep(300)
        return real(*args, **kwargs)

    lab.unlearn_many = held
'''


def _env(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "BENCH_PROFILE"}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT), env.get("PYTHONPATH", "")])
    return env


# pytest in a child whose SIGINT raises KeyboardInterrupt even where this process was started with SIGINT
# ignored (a background job of a shell without job control passes that on, and Python keeps it)
PYTEST = "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); " \
         "sys.argv[0] = 'pytest'; runpy.run_module('pytest', run_name='__main__')"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", PYTEST, PAPER000, *SELECT, "-p", "no:cacheprovider", "--rootdir", str(ROOT), *args]


def _journals(folder: Path) -> list[Path]:
    return sorted(folder.glob(".benchmarks/*/journal/*.jsonl"))


def _saved(folder: Path, name: str) -> dict:
    (path,) = folder.glob(f".benchmarks/*/[0-9][0-9][0-9][0-9]_{name}.json")
    return json.loads(path.read_text())


def _wait_for(proc, log: Path, ready) -> None:
    """Poll until `ready()`; fail with the run's output if it ends first or the deadline passes."""
    end = time.monotonic() + DEADLINE
    while not ready():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            proc.wait()
            pytest.fail(f"the benchmark run never reached the point to interrupt:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """Paper 000's synthetic trial-1 cells with --benchmark-save=cut, SIGINT in the second cell's timed call."""
    folder = tmp_path_factory.mktemp("interrupted")
    (folder / "hold_second_cell.py").write_text(HOLD)
    log = folder / "output.txt"
    with log.open("w") as out:
        proc = subprocess.Popen(_command("-p", "hold_second_cell", "--benchmark-save=cut"), cwd=folder,
                                env=_env(folder), stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_for(proc, log, lambda: (folder / "holding").exists() and any(
                p.read_bytes().endswith(b"\n") for p in _journals(folder)))
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=DEADLINE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    (path,) = _journals(folder)
    return SimpleNamespace(folder=folder, returncode=proc.returncode, output=log.read_text(), journal=path,
                           journaled=Journal(path).read())


def test_sigint_saves_the_finished_cells_marked_incomplete(interrupted):
    assert interrupted.returncode == 2, interrupted.output       # pytest's "interrupted"
    assert "min() arg is an empty sequence" not in interrupted.output
    assert "KeyboardInterrupt" in interrupted.output
    run = _saved(interrupted.folder, "cut")
    assert [b["extra_info"]["method"] for b in run["benchmarks"]] == ["naive_retrain"]
    assert run["machine_info"]["bench_complete"] is False
    assert run["machine_info"]["bench_cells"] == {"done": 1, "collected": 3}
    assert run["benchmarks"][0]["stats"]["rounds"] == 1 and run["benchmarks"][0]["stats"]["min"] > 0
    # the journal holds that cell, as pytest-benchmark saved it, raw timings included
    (name,) = interrupted.journaled
    saved = run["benchmarks"][0]
    assert name == saved["fullname"] and interrupted.journaled[name]["stats"]["data"] == [saved["stats"]["min"]]
    assert {k: v for k, v in interrupted.journaled[name].items() if k != "stats"} == {
        k: v for k, v in saved.items() if k != "stats"}
    assert "benchmark run incomplete: 1 of 3 cells done, 2 left; the same command with --bench-resume" \
        in interrupted.output
    assert interrupted.journal.name.startswith("unversioned-smoke-torch")       # tmp is no git checkout


def test_resume_runs_only_the_missing_cells_and_saves_them_all(interrupted):
    folder = interrupted.folder
    (first,) = interrupted.journaled.values()
    torn = json.dumps({**first, "fullname": first["fullname"].replace("naive_retrain", "weight_pruning")})
    with interrupted.journal.open("ab") as fh:        # a crash while the second cell was being written
        fh.write(torn[: len(torn) // 2].encode())
    result = subprocess.run(_command("--benchmark-save=resumed", "--bench-resume"), cwd=folder, env=_env(folder),
                            capture_output=True, text=True, timeout=DEADLINE)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "--bench-resume: 1 of 3 cells already in the journal" in out and ", 2 to run" in out
    assert "ignored a torn last line" in out and "cut off a torn last line" in out
    assert "2 passed, 7 deselected" in out                     # 6 by -k, 1 by the journal
    live = [line for line in out.splitlines() if "] test_paper000[" in line]
    assert [line.split()[0] for line in live] == ["[1/2]", "[2/2]"] and "naive_retrain" not in " ".join(live)
    run = _saved(folder, "resumed")
    by = [b["extra_info"] for b in run["benchmarks"]]
    assert [r["method"] for r in by] == METHODS                  # the set (and order) of an uninterrupted run
    assert run["benchmarks"][0] == _saved(folder, "cut")["benchmarks"][0]    # the journaled cell, as saved before
    assert run["machine_info"]["bench_complete"] is True and run["machine_info"]["bench_resumed"] == 1
    assert run["machine_info"]["bench_cells"] == {"done": 3, "collected": 3}
    # the resumed cells needed the oracle the first run trained: the lab retrained it on demand, the same model
    assert by[1]["oracle_epochs"] == by[2]["oracle_epochs"] == by[0]["epochs"]
    journal = Journal(interrupted.journal)
    assert list(journal.read()) == [b["fullname"] for b in run["benchmarks"]] and journal.problems == []
    # resuming again runs nothing and still saves the whole run, from the journal alone
    again = subprocess.run(_command("--benchmark-save=again", "--bench-resume", "-q"), cwd=folder,
                           env=_env(folder), capture_output=True, text=True, timeout=DEADLINE)
    assert again.returncode == 0, again.stdout + again.stderr       # nothing left to run: the run is whole
    assert _saved(folder, "again")["benchmarks"] == run["benchmarks"]
    assert _saved(folder, "again")["machine_info"]["bench_cells"] == {"done": 3, "collected": 3}


def _entry(name: str, seconds: float = 0.5) -> dict:
    return {"group": None, "name": name, "fullname": f"benchmarks/m.py::{name}", "params": {"case": [1, "a"]},
            "param": "a", "extra_info": {"method": "noop", "epochs": 3}, "options": {"timer": "perf_counter"},
            "stats": {"data": [seconds], "iterations": 1}}


def test_journaled_cells_round_trip_through_pytest_benchmark(tmp_path):
    journal = Journal(tmp_path / "j" / "key.jsonl")       # its folder is made on the first append
    journal.append(cell(restore(_entry("t[a]", 0.25))))
    (back,) = journal.read().values()
    assert back["stats"]["min"] == back["stats"]["max"] == back["stats"]["mean"] == 0.25
    assert back["stats"]["rounds"] == 1 and back["stats"]["data"] == [0.25]
    assert cell(restore(back)) == back                     # what a resumed run saves is what the journal holds


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path):
    path = tmp_path / "key.jsonl"
    journal = Journal(path)
    for name in ("t[a]", "t[b]"):
        journal.append(_entry(name))
    whole = json.dumps(_entry("t[c]"))
    with path.open("ab") as fh:
        fh.write(whole[:40].encode())                     # the process died mid-write
    reader = Journal(path)
    assert list(reader.read()) == ["benchmarks/m.py::t[a]", "benchmarks/m.py::t[b]"]
    (problem,) = reader.problems
    assert f"{path}:3: ignored a torn last line" in problem
    reader.append(_entry("t[d]"))                           # the fragment never held a cell: cut off
    assert path.read_bytes().count(b"\n") == 3 and path.read_bytes().endswith(b"\n")
    assert "cut off a torn last line of 40 bytes" in reader.problems[-1]
    assert list(Journal(path).read())[-1] == "benchmarks/m.py::t[d]"
    with path.open("ab") as fh:                             # a whole cell whose newline was lost: kept
        fh.write(whole.encode())
    Journal(path).append(_entry("t[e]"))
    assert list(Journal(path).read())[-2:] == ["benchmarks/m.py::t[c]", "benchmarks/m.py::t[e]"]


def test_a_line_that_is_not_a_cell_is_named_and_skipped(tmp_path):
    path = tmp_path / "key.jsonl"
    bad = {**_entry("t[b]"), "stats": {"data": [], "iterations": 1}}     # a cell without timings
    path.write_text("\n".join([json.dumps(_entry("t[a]")), "[1, 2]", json.dumps(bad), json.dumps(_entry("t[c]"))])
                    + "\n")
    journal = Journal(path)
    assert list(journal.read()) == ["benchmarks/m.py::t[a]", "benchmarks/m.py::t[c]"]
    assert [p.split(": ", 1)[0] for p in journal.problems] == [f"{path}:2", f"{path}:3"]
    assert "a cell is a JSON object, not list" in journal.problems[0]
    assert "non-empty list of timings" in journal.problems[1]


def test_a_journal_that_cannot_be_written_costs_only_the_journal(tmp_path):
    class Full(Journal):
        def append(self, entry):
            raise OSError(28, "No space left on device", str(self.path))

    cells = Cells(Full(tmp_path / "key.jsonl"))
    item = SimpleNamespace(nodeid="m.py::t[a]", fixturenames=["benchmark"],
                           funcargs={"benchmark": SimpleNamespace(stats=restore(_entry("t[a]")), has_error=False)})
    cells.collect([item])
    cells.report(item, SimpleNamespace(when="call", passed=True))
    assert cells.complete and cells.journaled == 0
    assert "could not be written for 1 cell" in cells.summary()[-1] and "No space left on device" in cells.summary()[-1]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


def test_the_journal_key_is_the_commit_and_its_uncommitted_changes(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "code.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("ignored/\n")
    (repo / "notes.md").write_text("notes\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    head = _git(repo, "rev-parse", "HEAD")

    def key() -> str:          # git's own dirty flag counts any file: the key looks at code only
        return tree_key({"id": head, "dirty": True}, repo)

    assert key() == head[:12]
    (repo / "ignored").mkdir()
    (repo / "ignored" / "x.py").write_text("anything")      # ignored by git
    (repo / "bench.log").write_text("[1/3] ...")           # a log, the run's saves, docs: not code
    (repo / "0001_run.json").write_text("{}")
    (repo / "notes.md").write_text("edited notes\n")
    assert key() == head[:12]
    (repo / "code.py").write_text("x = 2\n")
    edited = key()
    assert edited.startswith(f"{head[:12]}-dirty") and len(edited) == 12 + 6 + 12
    (repo / "code.py").write_text("x = 3\n")
    assert key() != edited                                 # other changes, another journal
    (repo / "code.py").write_text("x = 2\n")
    assert key() == edited                                 # the same changes, the same journal
    (repo / "code.py").write_text("x = 1\n")
    assert key() == head[:12]
    (repo / "new_module.py").write_text("y = 1\n")         # an untracked module changes the code too
    assert key().startswith(f"{head[:12]}-dirty")
    assert tree_key({"id": "unversioned", "dirty": False}, tmp_path) == "unversioned"


@pytest.mark.parametrize("args, message", [
    ([], "--bench-resume needs a run that saves: add --benchmark-save=NAME"),
    (["--benchmark-save=x", "--benchmark-disable"], "does not go with --benchmark-disable"),
])
def test_resume_without_a_timed_saved_run_is_a_usage_error(pytester, args, message):
    result = pytester.runpytest_subprocess(PAPER000, "--bench-resume", *args, "--collect-only", "-p",
                                           "no:cacheprovider", "--rootdir", str(ROOT))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_collecting_only_writes_and_says_nothing_of_a_journal(pytester):
    result = pytester.runpytest_subprocess(PAPER000, *SELECT, "--benchmark-save=x", "--collect-only", "-p",
                                           "no:cacheprovider", "--rootdir", str(ROOT))
    assert result.ret == pytest.ExitCode.OK
    assert "benchmark run incomplete" not in result.stdout.str() and "benchmark journal" not in result.stdout.str()
    assert not list((pytester.path / ".benchmarks").glob("*/journal/*.jsonl"))
