"""The benchmark harness, run as a user would: a tiny pytest-benchmark session in a subprocess."""

import json
from pathlib import Path

import pytest

from benchmarks.profiles import PROFILES, get_profile
from unlearning.schema import REQUIRED as SCHEMA_KEYS
from unlearning.schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]
PAPER000 = str(ROOT / "benchmarks" / "test_paper000_weight_pruning.py")


def run_bench(pytester, *args):
    return pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-rs")


def test_tiny_session_saves_every_schema_key(pytester, tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_PROFILE", raising=False)
    out = tmp_path / "run.json"
    result = run_bench(pytester, PAPER000, "-k", "synthetic and trial1", f"--benchmark-json={out}")
    result.assert_outcomes(passed=3)
    run = json.loads(out.read_text())
    assert run["machine_info"]["bench_profile"] == "smoke"
    assert run["machine_info"]["torch"] and "threads" in run["machine_info"]
    by_method = {b["extra_info"]["method"]: b["extra_info"] for b in run["benchmarks"]}
    assert set(by_method) == {"naive_retrain", "weight_pruning", "finetune"}
    for info in by_method.values():
        assert set(SCHEMA_KEYS) <= set(info)
        assert info["schema_version"] == SCHEMA_VERSION and info["paper"] == "000" and info["table"] == "table1"
        assert info["dataset"] == "synthetic" and info["removal_size"] == 1 and info["trial"] == 1
        assert info["optimizer"] == "adam" and info["lr"] == 1e-3 and info["profile"] == "smoke"
        assert info["seconds"] > 0 and info["steps"] == info["epochs"]        # full batch: one step an epoch
        assert 0 <= info["test_acc"] <= 1 and info["oracle_epochs"] == by_method["naive_retrain"]["epochs"]
    oracle = by_method["naive_retrain"]
    assert oracle["s_to_oracle"] == 0 and oracle["epoch_ratio"] == 1
    pruned = by_method["weight_pruning"]
    assert len(pruned["d_series"]) == pruned["epochs"] + 1 and pruned["weights_zeroed"] >= 0
    for b in run["benchmarks"]:
        assert b["stats"]["rounds"] == 1


def test_unknown_profile_names_the_allowed_ones(pytester):
    result = run_bench(pytester, PAPER000, "--bench-profile", "huge", "--collect-only")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown benchmark profile 'huge'; allowed: smoke, quick, paper*"])
    with pytest.raises(ValueError, match="allowed: smoke, quick, paper"):
        get_profile("huge")


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("BENCH_PROFILE", "paper")
    assert get_profile().name == "paper" and get_profile("smoke").name == "smoke"
    paper = PROFILES["paper"]
    assert min(len(paper.paper002.seeds), len(paper.grid.seeds), len(paper.paper000.trials["california"])) >= 3


def test_missing_data_skips_with_the_reason(pytester, tmp_path, monkeypatch):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("UNLEARNING_DATA_DIR", str(empty))
    monkeypatch.setenv("UNLEARNING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UNLEARNING_OFFLINE", "1")
    result = run_bench(pytester, PAPER000, "-k", "california and naive", "--benchmark-disable")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*california data unavailable*UNLEARNING_DATA_DIR*housing.tgz*"])
