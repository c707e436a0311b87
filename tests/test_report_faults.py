"""Faults a user test found in the report generator, one test (or a few) each, on inputs derived from the real
benchmark run of tests/test_reports.py (its helpers and cached run are reused):

1. the default output is a scratch folder, never the committed report; a report is never replaced by one of a
   less complete profile without --force, nor a folder the generator did not write; the command works from any
   folder; a missing `report` extra is one line and exit 2;
2. publishing swaps the whole output folder at once: an interrupt leaves the old report or the new one, never a
   mix, and `runs/` beside it survives;
3. a non-finite or non-numeric value in a numeric key is a named problem, never a table cell or a count;
4. malformed run metadata makes that file (or benchmark) a named problem; the good files are still reported;
5. exit codes: 1 written with skips, 2 nothing written, 3 crashed;
6. the tables say which way their ratios and d are better and what random relabeling's cost is.
"""

import copy
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="the report generator needs the `report` extra: pip install -e '.[report]'")
for _extra in ("matplotlib", "seaborn", "tabulate", "jinja2"):
    pytest.importorskip(_extra, reason="the report generator needs the `report` extra: pip install -e '.[report]'")

import test_reports as base  # noqa: E402
from test_reports import ROOT, csv, relabel, rich, run_main, write  # noqa: E402
from toys import this_thread_only  # noqa: E402

from unlearning.bench.report import pipeline  # noqa: E402
from unlearning.bench.report.cli import DEFAULT_OUT, main  # noqa: E402
from unlearning.bench.report.common import SECONDS, num  # noqa: E402

# the real run's fixtures: one tiny benchmark session per test session, shared with test_reports.py
bench_dir, real_path, real = base.bench_dir, base.real_path, base.real


def as_profile(run: dict, profile: str) -> dict:
    out = copy.deepcopy(run)
    for b in out["benchmarks"]:
        b["extra_info"]["profile"] = profile
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def committed_like(out: Path) -> None:
    """What the committed report folder holds beside the generated files: its input runs and the package."""
    (out / "runs").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "data" / "runs_v1" / "0012_paper-overhead.json", out / "runs" / "0001_input.json")
    (out / "__init__.py").write_text('"""kept"""\n')


# -- 1. where the report goes, and what it may replace ---------------------------------------------------------
def test_no_arguments_write_a_scratch_folder_not_the_committed_report(real_path, tmp_path, capsys, monkeypatch):
    saved = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    saved.mkdir(parents=True)
    shutil.copy(real_path, saved / "0001_smoke.json")
    monkeypatch.chdir(tmp_path)
    rc, err = run_main(capsys)
    assert rc == 0, err
    assert (tmp_path / DEFAULT_OUT / "README.md").is_file()
    assert not (tmp_path / "reports").exists()
    assert "profile: smoke" in (tmp_path / DEFAULT_OUT / "README.md").read_text()


def test_a_report_is_never_replaced_by_a_less_complete_one(real, tmp_path, capsys):
    out = tmp_path / "reports"
    paper = write(tmp_path / "paper.json", as_profile(real, "paper"))
    assert run_main(capsys, paper, "--out", out)[0] == 0
    committed_like(out)
    before = snapshot(out)
    smoke = write(tmp_path / "smoke.json", real)
    rc, err = run_main(capsys, smoke, "--out", out)
    assert rc == 2 and snapshot(out) == before
    assert err.strip().splitlines()[-1] == (
        f"reports: error: {out} holds a report of profile paper, more complete than this run's profile smoke: reports "
        "never silently replace a more complete one; give --force to replace it, or --out another folder; "
        "nothing written")
    assert run_main(capsys, paper, "--out", out)[0] == 0          # paper replacing paper: as ever
    rc, err = run_main(capsys, smoke, "--out", out, "--force")
    assert rc == 0, err
    assert "**profile: smoke" in (out / "README.md").read_text()
    assert snapshot(out)["runs/0001_input.json"] == before["runs/0001_input.json"]
    assert (out / "__init__.py").read_text() == '"""kept"""\n'


def test_folders_the_generator_did_not_write_are_refused(real_path, tmp_path, capsys, monkeypatch):
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "README.md").write_text("# My project\n")
    rc, err = run_main(capsys, real_path, "--out", foreign)
    assert rc == 2 and (foreign / "README.md").read_text() == "# My project\n"
    assert f"{foreign} holds a README.md this generator did not write" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    rc, err = run_main(capsys, real_path, "--out", other)
    assert rc == 2 and f"{other} holds notes.txt and no report (README.md) of this generator" in err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    monkeypatch.chdir(other)
    rc, err = run_main(capsys, real_path, "--out", ".")
    assert rc == 2 and f"{other} holds the working directory" in err
    runs_only = tmp_path / "fresh"                      # a folder holding only the runs: the report goes beside them
    committed_like(runs_only)
    (runs_only / "__init__.py").unlink()
    assert run_main(capsys, runs_only / "runs", real_path, "--out", runs_only)[0] == 1     # v1 run: profile paper
    assert (runs_only / "README.md").exists() and (runs_only / "runs" / "0001_input.json").exists()


def test_the_module_form_works_from_any_folder(real_path, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = subprocess.run([sys.executable, "-m", "unlearning.bench.report", str(real_path), "--out", "out"],
                         cwd=elsewhere, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    provenance = (elsewhere / "out" / "provenance.md").read_text()
    assert f"]({os.path.relpath(ROOT / 'docs' / 'choices.md', elsewhere / 'out')})" in provenance
    assert f"python -m reports {real_path} --out out\n" in provenance
    res = subprocess.run([sys.executable, "-m", "unlearning.bench.report"], cwd=elsewhere, capture_output=True,
                         text=True)
    assert res.returncode == 2
    assert res.stderr.startswith(f"reports: error: no saved benchmark run found under {elsewhere / '.benchmarks'}")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["out"]
    res = subprocess.run([sys.executable, "-m", "unlearning.bench.report", "--help"], cwd=elsewhere,
                         capture_output=True, text=True)
    assert res.returncode == 0 and "usage: python -m unlearning.bench.report" in res.stdout
    for text in ("relative to the working directory", "./.benchmarks/report/", "--force", "--out reports",
                 "3 crashed"):
        assert text in res.stdout


NO_EXTRA_AT_IMPORT = """
import sys
import reports, unlearning.bench.report, unlearning.bench.report.cli
loaded = sorted(m for m in ("pandas", "matplotlib", "seaborn", "jinja2", "tabulate", "numpy") if m in sys.modules)
assert not loaded, loaded
"""
WITHOUT = """
import runpy, sys
sys.modules[{blocked!r}] = None             # `import {blocked}` now fails as if it were not installed
sys.argv = ["x", *{args!r}]
runpy.run_module("reports", run_name="__main__", alter_sys=True)
"""


def test_the_cli_imports_no_extra_and_a_missing_one_is_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-c", NO_EXTRA_AT_IMPORT], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    code = WITHOUT.format(blocked="matplotlib", args=[str(ROOT / "tests" / "data" / "runs_v1"), "--out", str(out)])
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.startswith("reports: error: the report generator needs the 'report' extra")
    assert "matplotlib" in res.stderr and not out.exists()
    res = subprocess.run([sys.executable, "-c", WITHOUT.format(blocked="pandas", args=["--help"])], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0 and "usage: python -m reports" in res.stdout, res.stderr


# -- 2. publishing: the whole folder at once ------------------------------------------------------------------
class Interrupt:
    """Counts file-system steps of publishing and raises KeyboardInterrupt at step `at` (0: never)."""

    def __init__(self, monkeypatch):
        self.at, self.count = 0, 0
        for name in ("rename", "replace", "link", "symlink", "mkdir", "chmod"):
            monkeypatch.setattr(os, name, this_thread_only(self.counted(getattr(os, name)), getattr(os, name)))
        monkeypatch.setattr(shutil, "copy2", this_thread_only(self.counted(shutil.copy2), shutil.copy2))

    def counted(self, fn):
        def step(*args, **kwargs):
            self.count += 1
            if self.count == self.at:
                raise KeyboardInterrupt
            return fn(*args, **kwargs)
        return step


def test_an_interrupted_publish_leaves_the_old_or_the_new_report(real, real_path, tmp_path, capsys, monkeypatch):
    new_dir, out, pristine = tmp_path / "new", tmp_path / "report", tmp_path / "pristine"
    assert run_main(capsys, write(tmp_path / "rich.json", rich(real)), "--out", new_dir)[0] == 0
    assert run_main(capsys, real_path, "--out", pristine)[0] == 0
    committed_like(pristine)
    os.chmod(pristine, 0o750)
    old, new = snapshot(pristine), snapshot(new_dir)
    new.update({k: v for k, v in old.items() if k.startswith("runs/") or k == "__init__.py"})
    # render the new report by copying it: the render itself is not under test
    monkeypatch.setattr(pipeline, "render_all", lambda loaded, folder, out: [
        shutil.copyfile(new_dir / name, folder / name) and name for name in sorted(p.name for p in new_dir.iterdir())])
    steps = Interrupt(monkeypatch)
    for at in range(1, 100):
        steps.at = 0                                    # preparing the folder is not under test
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(pristine, out)
        steps.at, steps.count = at, 0
        try:
            main([str(real_path), "--out", str(out)])
            finished = True
        except KeyboardInterrupt:
            finished = False
        got = snapshot(out)
        assert got == (new if finished else old), f"not the {'new' if finished else 'old'} report at step {at}"
        assert stat.S_IMODE(out.stat().st_mode) == 0o750
        assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "pristine", "report", "rich.json"]
        if finished:
            break
    assert finished and at > 2          # interrupted at every step before the last, then done


def test_a_new_output_folder_gets_the_usual_permissions_and_a_folder_left_aside_comes_back(real_path, tmp_path,
                                                                                         capsys):
    out = tmp_path / "report"
    assert run_main(capsys, real_path, "--out", out)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask          # not mkdtemp's private 0700
    committed_like(out)
    aside = tmp_path / ".report.tmp-killed-old"      # a run killed between its two renames left this
    out.rename(aside)
    assert run_main(capsys, real_path, "--out", out)[0] == 0
    assert (out / "runs" / "0001_input.json").exists() and (out / "__init__.py").exists()
    assert not aside.exists()


# -- 3. values that are not finite numbers -----------------------------------------------------------------------
def test_infinity_and_non_numbers_are_named_never_averaged(real, tmp_path, capsys):
    run = rich(real)
    naive1 = next(b for b in run["benchmarks"] if b["fullname"].endswith("[p002-naive_retrain-1]"))
    naive1["extra_info"]["test_acc"] = float("inf")
    cell = [b for b in run["benchmarks"] if "[grid1-" in b["fullname"] and b["extra_info"]["method"] == "finetune"]
    third = relabel(cell[0], "seed2", seed=2, trial=3)
    run["benchmarks"].append(third)
    cell[1]["extra_info"]["test_acc"] = "0.9"
    third["extra_info"]["test_acc"] = float("nan")
    pruned = next(b for b in run["benchmarks"] if b["fullname"].endswith("[t2]")
                  and b["extra_info"]["method"] == "weight_pruning")
    pruned["extra_info"]["hit_cap"] = "no"
    src = write(tmp_path / "bad_values.json", run)              # json.dumps writes Infinity and NaN
    out = tmp_path / "report"
    rc, err = run_main(capsys, src, "--out", out)
    assert rc == 1
    for bench, text in ((naive1, "test_acc = Infinity, not a finite number"),
                        (cell[1], 'test_acc = "0.9", not a finite number'),
                        (third, "test_acc = NaN, not a finite number"),
                        (pruned, 'hit_cap = "no", not true, false or null')):
        assert f"{src}: record skipped: {bench['name']} has {text} (see docs/schema.md)" in err
    t2 = csv(out, "paper002_table1").set_index("row")
    assert t2.loc["naive 1", "n"] == "0" and t2.loc["naive 1", "test_acc"] == ""
    for name in ("paper002_table1.md", "headline.csv"):
        assert "inf" not in (out / name).read_text().lower().replace("information", "")
    grid = csv(out, "grid")
    row = grid[(grid["method"] == "finetune") & (grid["removal_size"] == "1")].iloc[0]
    assert row["n"] == "1"                                       # the one value averaged, not 3
    assert float(row["quality"]) == pytest.approx(100 * cell[0]["extra_info"]["test_acc"], rel=1e-5)
    assert "Infinity" in (out / "provenance.md").read_text().split("## Skipped input")[1]


# -- 4. malformed run metadata ------------------------------------------------------------------------------------
def _cpu_text(run):
    run["machine_info"]["cpu"] = "Intel(R) Xeon(R)"


def _no_machine_info(run):
    del run["machine_info"]


def _machine_info_list(run):
    run["machine_info"] = [run["machine_info"]]


def _commit_info_text(run):
    run["commit_info"] = "abc123"


def _benchmarks_object(run):
    run["benchmarks"] = {"first": run["benchmarks"][0]}


def _datetime_number(run):
    run["datetime"] = 1700000000


def _no_fullname(run):
    del run["benchmarks"][0]["fullname"]


def _benchmark_number(run):
    run["benchmarks"].append(42)


METADATA_FAULTS = [
    (_cpu_text, "skipped: malformed run metadata: 'machine_info.cpu' is a string, not an object"),
    (_no_machine_info, "skipped: malformed run metadata: no 'machine_info' object"),
    (_machine_info_list, "skipped: malformed run metadata: 'machine_info' is a list, not an object"),
    (_commit_info_text, "skipped: malformed run metadata: 'commit_info' is a string, not an object"),
    (_benchmarks_object, "not a pytest-benchmark run (no 'benchmarks' list)"),
    (_datetime_number, "skipped: malformed run metadata: 'datetime' is a number, not a string"),
    (_no_fullname, "record skipped: {name} has no 'fullname' (pytest-benchmark's id of the benchmark"),
    (_benchmark_number, "1 of {total} benchmarks have no extra_info.schema_version: not from this suite"),
]


@pytest.mark.parametrize(("spoil", "message"), METADATA_FAULTS, ids=[f.__name__[1:] for f, _ in METADATA_FAULTS])
def test_malformed_metadata_skips_that_file_and_reports_the_good_one(real, real_path, tmp_path, capsys, spoil,
                                                                     message):
    bad_run = copy.deepcopy(real)
    for b in bad_run["benchmarks"]:            # other benchmarks than the good file's: no duplicates to explain
        b["fullname"] += "[other]"
    first, total = bad_run["benchmarks"][0]["name"], len(bad_run["benchmarks"]) + 1
    spoil(bad_run)
    bad = write(tmp_path / "bad.json", bad_run)
    out = tmp_path / "report"
    rc, err = run_main(capsys, bad, real_path, "--out", out)
    assert rc == 1, err
    assert f"{bad}: {message.format(name=first, total=total)}" in err
    assert "Traceback" not in err
    assert real_path.name in (out / "provenance.md").read_text()
    assert csv(out, "paper000_table1")["mr_epochs"][0] != ""


# -- 5. exit codes ---------------------------------------------------------------------------------------------------
def test_a_crash_exits_3_not_1_or_2(real_path, tmp_path, capsys, monkeypatch):
    from unlearning.bench.report import tables

    def boom(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(tables.Headline, "build", boom)
    out = tmp_path / "report"
    rc, err = run_main(capsys, real_path, "--out", out)
    assert rc == 3
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    assert err.strip().splitlines()[-1] == "reports: error: the generator crashed (a bug; traceback above); exit code 3"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_exit_codes_1_and_2(real, real_path, tmp_path, capsys):
    skipped = copy.deepcopy(real)
    skipped["benchmarks"][0]["extra_info"]["epochs"] = "many"
    assert run_main(capsys, write(tmp_path / "one_bad.json", skipped), "--out", tmp_path / "a")[0] == 1
    assert (tmp_path / "a" / "README.md").exists()
    rc, err = run_main(capsys, tmp_path / "missing.json", "--out", tmp_path / "b")
    assert rc == 2 and "nothing written" in err and not (tmp_path / "b").exists()


# -- 6. what the columns mean ------------------------------------------------------------------------------------------
def test_tables_say_which_way_is_better_and_what_relabelings_cost_is(real, tmp_path, capsys):
    out = tmp_path / "report"
    assert run_main(capsys, write(tmp_path / "rich.json", rich(real)), "--out", out)[0] == 0
    md = {name: (out / f"{name}.md").read_text() for name in
          ("grid", "paper000_table1", "paper000_california", "overhead", "ensemble")}
    for name, texts in {
        "grid": ("speedup vs naive (> 1: faster)", "d (higher is better)",
                 "random_relabel answers each removal request with one optimizer step",
                 "its epochs are 0 by construction, not a no-op",
                 "higher is better: d > 0 means closer to the oracle than to the control"),
        "paper000_table1": ("ratio m_r/m_o (< 1: m_r cheaper)", "m_r d (higher is better)",
                            "below 1, weight pruning converged in fewer epochs than retraining",
                            "higher is better: d > 0 means closer to the oracle than to the control"),
        "paper000_california": ("epochs / m_c (< 1: fewer)", "d (higher is better)",
                                "higher is better, d > 0 means closer to m_o than to m_c"),
        "overhead": ("ratio ours / bare (lower is better)",),
        "ensemble": ("speedup (higher is better)",),
    }.items():
        for text in texts:
            assert text in md[name], (name, text)
    grid = md["grid"].splitlines()
    header = [c.strip() for c in grid[2].split("|")]
    seconds = [line.split("|")[header.index("seconds")] for line in grid[4:] if line.startswith("|")]
    assert seconds and not [s for s in seconds if "e-" in s or "e+" in s]
    assert num(2.93e-05, SECONDS) == "0.0000293" and num(1460.4, SECONDS) == "1460" and num(0.0193, SECONDS) == "0.0193"
