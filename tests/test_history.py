"""unlearning.bench.report.history: tracked figures over commits, changes beyond the spread, the release check."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from unlearning.bench.report import history

RUN = Path(__file__).resolve().parent / "data" / "runs_v2" / "0016_paper-lr-sweep.json"     # once a committed run


def commit_copy(tmp_path, name: str, commit: str, when: str, scale: float = 1.0) -> Path:
    """The committed run as if made from `commit` at `when`, with every test accuracy times `scale`."""
    run = copy.deepcopy(json.loads(RUN.read_text()))
    run["commit_info"] = {**run["commit_info"], "id": commit, "time": when}
    run["datetime"] = when
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        for key in ("test_acc", "total_acc"):
            if isinstance(info.get(key), float):
                info[key] = min(1.0, info[key] * scale)
    path = tmp_path / name
    path.write_text(json.dumps(run))
    return path


@pytest.fixture
def three(tmp_path):
    return [commit_copy(tmp_path, "a.json", "a" * 40, "2026-11-01T00:00:00", 1.0),
            commit_copy(tmp_path, "c.json", "c" * 40, "2026-11-03T00:00:00", 0.5),
            commit_copy(tmp_path, "b.json", "b" * 40, "2026-11-02T00:00:00", 1.0)]


def test_commits_are_ordered_by_commit_time_and_a_halved_accuracy_is_marked(three, tmp_path):
    df = history.history([str(p) for p in three])
    assert list(dict.fromkeys(df["commit"])) == ["a" * 12, "b" * 12, "c" * 12]
    assert set(df["kind"]) == {"metric", "cost"}
    b_to_c = df[(df["commit"] == "c" * 12) & (df["kind"] == "metric")]
    assert (b_to_c["change"] != "").any()                          # test accuracy halved
    assert set(df[(df["commit"] == "b" * 12) & (df["kind"] == "metric")]["change"]) == {""}      # same numbers
    assert history.main([*map(str, three), "--out", str(tmp_path / "out")]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"history.csv", "history.md", "history.png"}


def test_the_release_check_fails_on_a_regression_and_passes_on_the_same_numbers(three, tmp_path, capsys):
    a, c, b = three
    assert history.main(["--check", str(a), str(b)]) == 0
    assert history.main(["--check", str(a), str(a), str(c)]) == 1       # the newest commit (c) halved accuracy
    err = capsys.readouterr().err
    assert "history: regressed:" in err and "->" in err


def test_change_needs_disjoint_intervals_and_names_a_move_without_one():
    prev = {"value": 1.0, "lo": 0.9, "hi": 1.1}
    assert history._change(prev, {"value": 1.05, "lo": 0.95, "hi": 1.15}) == ""
    assert history._change(prev, {"value": 1.5, "lo": 1.4, "hi": 1.6}) == history.BEYOND
    assert history._change({"value": 1.0, "lo": float("nan"), "hi": float("nan")},
                           {"value": 2.0, "lo": float("nan"), "hi": float("nan")}) == history.MOVED
    # a cost: disjoint intervals are not enough, it must also move by more than COST_FACTOR
    assert history._change({"value": 1.0, "lo": 1.0, "hi": 1.0}, {"value": 1.2, "lo": 1.2, "hi": 1.2}, "cost") == ""
    assert history._change({"value": 1.0, "lo": 1.0, "hi": 1.0}, {"value": 2.0, "lo": 2.0, "hi": 2.0},
                           "cost") == history.BEYOND


def test_runs_of_two_profiles_are_refused(tmp_path):
    run = json.loads(RUN.read_text())
    run["commit_info"]["id"], run["commit_info"]["time"] = "d" * 40, "2027-01-01T00:00:00"
    for bench in run["benchmarks"]:
        bench["extra_info"]["profile"] = "smoke"
    run["machine_info"]["bench_profile"] = "smoke"
    other = tmp_path / "smoke.json"
    other.write_text(json.dumps(run))
    with pytest.raises(ValueError, match="give one profile's runs"):
        history.history([str(RUN), str(other)])
