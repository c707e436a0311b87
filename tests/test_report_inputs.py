"""What the report generator does with inputs a user test found it mishandling (issue 19, item 4), on inputs derived
from the real benchmark run of tests/test_reports.py (its helpers and cached run are reused):

1. values outside their key's range (negative seconds, epochs or counts; accuracies above 1) are named problems, like
   NaN and Infinity, never table cells;
2. every `*.json` entry of an input folder that cannot be read (a dangling link, a FIFO, a folder without read
   permission) and every symlinked folder is named as skipped, with exit code 1;
3. copies of one run (same machine, commit, datetime and cells) are counted once and named;
4. a run saved after an interrupt (`machine_info.bench_complete` false) is used and said to be incomplete.
"""

import copy
import os
import shutil
import threading
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="the report generator needs the `report` extra: pip install -e '.[report]'")
for _extra in ("matplotlib", "seaborn", "tabulate", "jinja2"):
    pytest.importorskip(_extra, reason="the report generator needs the `report` extra: pip install -e '.[report]'")

import test_reports as base  # noqa: E402
from test_reports import csv, rich, run_main, write  # noqa: E402

from unlearning.common import schema  # noqa: E402

bench_dir, real_path, real = base.bench_dir, base.real_path, base.real


def _grid_cell(run: dict, method: str, size: int) -> list[dict]:
    return [b for b in run["benchmarks"] if "[grid" in b["fullname"] and b["extra_info"]["method"] == method
            and b["extra_info"]["removal_size"] == size]


# -- 1. impossible values -------------------------------------------------------------------------------------------
def test_the_schema_gives_each_numeric_key_its_range():
    assert schema.value_range("seconds") == (0, None) and schema.range_text("seconds") == "≥ 0"
    assert schema.value_range("epochs") == schema.value_range("weights_zeroed") == (0, None)
    assert schema.value_range("test_acc") == (0, 1) and schema.range_text("loss_auc") == "in [0, 1]"
    assert schema.value_range("trial") == (1, None)
    assert schema.value_range("checkpoint_test_acc") == (0, 1)              # a series: each of its numbers
    assert schema.value_range("d") == (None, None) and schema.range_text("d") == ""     # d may be either sign
    assert schema.value_range("dataset") == schema.value_range("no_such_key") == (None, None)


def test_negative_seconds_and_accuracy_above_one_are_named_never_cells(real, tmp_path, capsys):
    run = rich(real)
    negative = _grid_cell(run, "finetune", 1)[0]
    negative["extra_info"]["seconds"] = -5.0
    above = _grid_cell(run, "weight_pruning", 2)[0]
    above["extra_info"]["test_acc"] = 1.5
    epochs = next(b for b in run["benchmarks"] if b["fullname"].endswith("[t2]")
                  and b["extra_info"]["method"] == "weight_pruning")
    epochs["extra_info"]["epochs"] = -3
    series = next(b for b in run["benchmarks"] if b["fullname"].endswith("[fig1-adam]"))
    series["extra_info"]["checkpoint_test_acc"] = [series["extra_info"]["checkpoint_test_acc"][0], 1.5]
    src = write(tmp_path / "impossible.json", run)
    out = tmp_path / "report"
    rc, err = run_main(capsys, src, "--out", out)
    assert rc == 1, err
    for bench, text in ((negative, "seconds = -5.0, not ≥ 0"), (above, "test_acc = 1.5, not in [0, 1]"),
                        (epochs, "epochs = -3, not ≥ 0"), (series, "checkpoint_test_acc[1] = 1.5, not in [0, 1]")):
        assert f"{src}: record skipped: {bench['name']} has {text} (see docs/schema.md)" in err
    grid = csv(out, "grid")
    assert not [v for v in grid["seconds"] if v.startswith("-")]
    row = grid[(grid["method"] == "finetune") & (grid["removal_size"] == "1")].iloc[0]
    kept = [b for b in _grid_cell(run, "finetune", 1) if b is not negative]
    assert row["n"] == str(len(kept))                                 # the negative one is not averaged
    assert float(row["seconds"]) == pytest.approx(sum(b["extra_info"]["seconds"] for b in kept) / len(kept),
                                                  rel=1e-5)
    pruned = grid[(grid["method"] == "weight_pruning") & (grid["removal_size"] == "2")].iloc[0]
    assert float(pruned["quality"]) <= 100
    skipped = (out / "provenance.md").read_text().split("## Skipped input")[1]
    assert "seconds = -5.0, not ≥ 0" in skipped and "test_acc = 1.5" in skipped


# -- 2. unreadable entries of an input folder -------------------------------------------------------------------------
def _fifo_reader_guard(fifo: Path) -> threading.Thread:
    """A writer waiting on `fifo`: should the generator open the FIFO to read it, it gets an empty file at once (and
    the test fails on the message) instead of blocking forever."""
    def write_nothing():
        os.close(os.open(fifo, os.O_WRONLY))
    thread = threading.Thread(target=write_nothing, daemon=True)
    thread.start()
    return thread


def _dangling_link(runs: Path):
    (runs / "gone.json").symlink_to("nowhere.json")
    return "gone.json", "cannot be read: No such file or directory", lambda: None


def _fifo(runs: Path):
    fifo = runs / "pipe.json"
    os.mkfifo(fifo)
    guard = _fifo_reader_guard(fifo)

    def release():          # let the guard's writer go: open the FIFO for reading ourselves (non-blocking)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        guard.join()
        os.close(fd)
    return "pipe.json", "not a regular file: not read", release


def _locked_folder(runs: Path):
    locked = runs / "locked"
    locked.mkdir()
    (locked / "0002_hidden.json").write_text("{}")
    locked.chmod(0)
    return "locked", "cannot be read: Permission denied", lambda: locked.chmod(0o755)


def _linked_folder(runs: Path):
    (runs / "self").symlink_to("..")              # walking it would never end
    return "self", "a symlink to a folder: not walked (name the folder itself)", lambda: None


AS_ROOT = pytest.mark.skipif(os.geteuid() == 0, reason="root lists a folder without read permission")


@pytest.mark.parametrize("make", [_dangling_link, _fifo, _linked_folder, pytest.param(_locked_folder, marks=AS_ROOT)],
                         ids=lambda f: f.__name__[1:])
def test_an_unreadable_entry_is_named_with_exit_1(real_path, tmp_path, capsys, make):
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(real_path, runs / "0001_good.json")
    (runs / "notes.txt").write_text("not a run")              # a file not named .json: not an input
    name, reason, undo = make(runs)
    try:
        rc, err = run_main(capsys, runs, "--out", tmp_path / "report")
    finally:
        undo()
    assert rc == 1, err
    assert f"reports: skipped {runs / name}: {reason}" in err
    assert "notes.txt" not in err
    provenance = (tmp_path / "report" / "provenance.md").read_text()
    runs_read, skipped = provenance.split("## Skipped input")
    assert "0001_good.json" in runs_read and name in skipped
    assert "**Some input was skipped**" in (tmp_path / "report" / "README.md").read_text()


# -- 3. copies of one run ---------------------------------------------------------------------------------------------
def test_thirty_copies_of_one_run_are_counted_once_and_named(real, real_path, tmp_path, capsys):
    single = tmp_path / "single"
    assert run_main(capsys, real_path, "--out", single)[0] == 0
    copies = tmp_path / "copies"
    copies.mkdir()
    for i in range(1, 31):
        shutil.copy(real_path, copies / f"copy{i:02d}.json")
    out = tmp_path / "report"
    rc, err = run_main(capsys, copies, "--out", out)
    assert rc == 1, err
    n = len(real["benchmarks"])
    lines = [line for line in err.splitlines() if "a copy of" in line]
    assert len(lines) == 29
    for i in range(2, 31):
        assert (f"reports: skipped {copies / f'copy{i:02d}.json'}: a copy of {copies / 'copy01.json'} (same machine, "
                f"commit, datetime and {n} identical cells): counted once") in lines
    for name in ("paper000_table1", "overhead", "ensemble", "headline"):         # the numbers of one run, n included
        assert (out / f"{name}.csv").read_bytes() == (single / f"{name}.csv").read_bytes(), name
    assert "· 1 run of " in (out / "README.md").read_text()
    runs_read = (out / "provenance.md").read_text().split("## Settings")[0]
    assert "copy01.json" in runs_read and "copy02.json" not in runs_read


def test_a_file_holding_some_records_of_another_run_names_how_many(real, real_path, tmp_path, capsys):
    part = copy.deepcopy(real)
    part["benchmarks"] = part["benchmarks"][:2]
    partial = write(tmp_path / "zz_partial.json", part)
    more = copy.deepcopy(real)
    more["benchmarks"] = real["benchmarks"][:3] + [base.relabel(b, "own") for b in real["benchmarks"][3:]]
    mixed = write(tmp_path / "zz_mixed.json", more)
    rc, err = run_main(capsys, real_path, partial, mixed, "--out", tmp_path / "report")
    assert rc == 1, err
    n = len(real["benchmarks"])
    assert (f"skipped {partial}: a copy of {real_path} (same machine, commit, datetime and 2 identical cells): "
            "counted once") in err
    assert (f"skipped {mixed}: 3 of its {n} records are copies of {real_path}'s (same machine, commit, datetime "
            "and 3 identical cells): counted once") in err


def test_a_rerun_of_the_same_cells_is_not_a_copy(real, real_path, tmp_path, capsys):
    later = copy.deepcopy(real)
    later["datetime"] = "2999-01-01T00:00:00.000000+00:00"              # another run: the newer one is shown
    newer = write(tmp_path / "newer.json", later)
    rc, err = run_main(capsys, real_path, newer, "--out", tmp_path / "report")
    assert rc == 1
    assert "a copy of" not in err
    assert "record(s) not used: the same benchmarks from a newer run of the same torch version are used" in err


# -- 4. a run saved after an interrupt ---------------------------------------------------------------------------------
def test_an_incomplete_run_is_used_and_says_how_many_cells_it_holds(real, tmp_path, capsys):
    cut = copy.deepcopy(real)
    cut["machine_info"]["bench_complete"] = False
    cut["machine_info"]["bench_cells"] = {"done": len(cut["benchmarks"]), "collected": len(cut["benchmarks"]) + 5}
    src = write(tmp_path / "0003_interrupted.json", cut)
    out = tmp_path / "report"
    rc, err = run_main(capsys, src, "--out", out)
    assert rc == 0, err                                              # nothing was skipped: the cells it has are used
    done, collected = len(cut["benchmarks"]), len(cut["benchmarks"]) + 5
    assert (f"reports: warning: {src} is incomplete (saved after an interrupt): {done} of {collected} cells; the "
            "report shows the cells it has") in err
    head = (out / "README.md").read_text().split("## The papers' numbers")[0]
    assert (f"**Incomplete run:** `{src}` is incomplete (saved after an interrupt): {done} of {collected} cells"
            in head)
    assert csv(out, "paper000_table1")["mr_epochs"][0] != ""

    complete = copy.deepcopy(real)
    complete["machine_info"]["bench_complete"] = True
    rc, err = run_main(capsys, write(tmp_path / "complete.json", complete), "--out", tmp_path / "complete")
    assert rc == 0 and "is incomplete" not in err          # (the tmp folder's name holds "incomplete")
    assert "Incomplete run" not in (tmp_path / "complete" / "README.md").read_text()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("bench_complete", "no", "'machine_info.bench_complete' is a string, not true or false"),
    ("bench_cells", [3, 7], "'machine_info.bench_cells' is a list, not an object"),
    ("bench_cells", {"done": 9, "collected": 7},
     '\'machine_info.bench_cells\' is {"done": 9, "collected": 7}, not {"done": N, "collected": M} with counts '
     "0 <= N <= M"),
])
def test_malformed_completion_metadata_skips_the_file(real, real_path, tmp_path, capsys, field, value, message):
    bad = copy.deepcopy(real)
    for b in bad["benchmarks"]:
        b["fullname"] += "[other]"
    bad["machine_info"][field] = value
    src = write(tmp_path / "bad.json", bad)
    rc, err = run_main(capsys, src, real_path, "--out", tmp_path / "report")
    assert rc == 1, err
    assert f"{src}: skipped: malformed run metadata: {message}" in err
