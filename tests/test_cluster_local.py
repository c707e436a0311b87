"""The launcher (`unlearning.bench.cluster.launch`, `python -m benchmarks.cluster`) through submitit's local executor:
shards of a small benchmark selection, merged; a failed shard resubmitted alone, resuming from its journal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unlearning.bench import shards

pytest.importorskip("submitit")
pytest.importorskip("pytest_split")

from benchmarks import cluster
from unlearning.bench.cluster import launch as launch_module
from unlearning.bench.cluster.launch import FAILED, PASSED, Manifest, Resources, launch

ROOT = Path(__file__).resolve().parent.parent
SELECTION = ["benchmarks/test_paper000_weight_pruning.py", "-k", "synthetic"]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("launch") / "run"
    lines: list[str] = []
    every, launch_module.SACCT_EVERY = launch_module.SACCT_EVERY, 0.0       # the state refresh runs every poll
    try:
        manifest = launch(folder, 2, cluster.pytest_args("smoke", SELECTION), executor_kind="local",
                          resources=Resources(timeout_min=10), cwd=ROOT, say=lines.append, poll_s=0.5)
    finally:
        launch_module.SACCT_EVERY = every
    return manifest, lines


def test_local_shards_pass_report_progress_and_record_each_shard(launched):
    manifest, lines = launched
    assert manifest.executor == "local"
    assert {k: s.state for k, s in manifest.shards.items()} == {1: PASSED, 2: PASSED}
    assert all(s.returncode == 0 and s.seconds > 0 and s.attempts == 1 for s in manifest.shards.values())
    assert lines[-1].startswith("shards: 2 passed, 0 running, 0 pending, 0 failed of 2")
    saved = Manifest.load(manifest.folder)
    assert saved.shards == manifest.shards and saved.launch == manifest.launch
    for k in (1, 2):
        run = json.loads((manifest.folder / f"shard-{k}.json").read_text())
        info = run["machine_info"][shards.SHARD]
        assert (info["group"], info["splits"], info["launch"]) == (k, 2, manifest.launch)
        assert run["machine_info"]["bench_complete"] is True                # its own cells, not the other shard's


def test_a_failed_shard_alone_is_resubmitted_and_resumes_from_its_journal(launched):
    manifest, _ = launched
    (manifest.folder / "shard-2.json").unlink()
    manifest.shards[2].state, manifest.shards[2].reason = FAILED, "made to fail by the test"
    manifest.save()
    again = launch(manifest.folder, 0, (), resubmit=True, say=lambda line: None, poll_s=0.5)
    assert again.shards[1].attempts == 1 and again.shards[2].attempts == 2
    assert again.shards[2].state == PASSED
    run = json.loads((manifest.folder / "shard-2.json").read_text())
    assert run["machine_info"]["bench_resumed"] == len(run["benchmarks"]) > 0      # nothing ran twice
    merged, problems = shards.merge(again.shard_files)
    assert problems == [] and len(merged["benchmarks"]) == 6


def test_a_launch_folder_in_use_or_bad_settings_are_refused(launched, tmp_path):
    manifest, _ = launched
    with pytest.raises(ValueError, match="is not empty"):
        launch(manifest.folder, 2, SELECTION, executor_kind="local")
    with pytest.raises(ValueError, match="not a launch folder"):
        launch(tmp_path, 0, (), resubmit=True)
    copy = Manifest.load(manifest.folder)
    copy.folder = tmp_path / "copy"
    copy.folder.mkdir()
    copy.shards[1].state = "running"
    copy.save()
    with pytest.raises(ValueError, match=r"shards 1 \(job .*\) were last seen pending or running.*--force"):
        launch(copy.folder, 0, (), resubmit=True)
    with pytest.raises(ValueError, match="timeout_min must be a whole number >= 1, not 0"):
        Resources(timeout_min=0)
    with pytest.raises(ValueError, match="unknown executor 'pbs'; allowed: auto, slurm, local"):
        Manifest.new(tmp_path / "x", 2, "pbs", Resources(), (), ROOT)


def test_the_cli_merges_and_says_what_a_missing_shard_costs(launched, tmp_path):
    manifest, _ = launched
    done = subprocess.run([sys.executable, "-m", "benchmarks.cluster", "merge", str(manifest.folder)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "merged 2 shard file(s), 6 cells" in done.stdout and "duplicated work" in done.stdout
    (manifest.folder / "shard-1.json").rename(tmp_path / "aside.json")
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.cluster", "merge", str(manifest.folder)], cwd=ROOT,
                              capture_output=True, text=True, check=False)
    finally:
        (tmp_path / "aside.json").rename(manifest.folder / "shard-1.json")
    assert done.returncode == 1
    assert "shard-1.json not saved" in done.stderr and "missing shard 1 of 2" in done.stderr


def test_a_panels_cells_main_and_sweep_are_collected_next_to_each_other():
    from benchmarks.test_forgetting import shard_group

    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_forgetting.py", "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, check=False)
    ids = [line.split("[", 1)[1].rstrip("]") for line in done.stdout.splitlines() if "::test_forgetting" in line]
    assert any(line for line in done.stdout.splitlines() if "test_forgetting_sweep[" in line)
    groups = [shard_group(i) for i in ids]
    runs = [g for n, g in enumerate(groups) if n == 0 or groups[n - 1] != g]
    assert len(runs) == len(set(groups)), "a panel's cells are split by another panel's"
