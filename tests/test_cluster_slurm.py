"""Smoke-profile cells as 3 shards on a real one-node Slurm, merged, equal one unsharded run cell by cell.

The run itself starts in the background when collection ends (`tests/slurm_smoke.py`); this check runs last and
waits for it. Skipped, with the reason, where Slurm cannot start (not root, packages missing: `.ci/run` installs
them).
"""

from __future__ import annotations

import copy
import json
import math

import pytest

from unlearning.bench import shards
from unlearning.bench.cluster.launch import PASSED
from unlearning.common import schema

pytestmark = pytest.mark.slurm_smoke


def same(a, b) -> bool:
    """Equal values, NaN equal to NaN, lists element by element."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def differences(merged: dict, reference: dict) -> list[str]:
    """Every cell and non-timing key in which the two runs differ."""
    ours = {b["fullname"]: b["extra_info"] for b in merged["benchmarks"]}
    theirs = {b["fullname"]: b["extra_info"] for b in reference["benchmarks"]}
    out = [f"only in the sharded run: {c}" for c in sorted(ours.keys() - theirs.keys())]
    out += [f"only in the unsharded run: {c}" for c in sorted(theirs.keys() - ours.keys())]
    for cell in sorted(ours.keys() & theirs.keys()):
        a, b = ours[cell], theirs[cell]
        out += [f"{cell}: {key} {a.get(key)!r} != {b.get(key)!r}" for key in sorted(a.keys() | b.keys())
                if not schema.is_timing(key) and not same(a.get(key), b.get(key))]
    return out


def timings_equalised(run: dict) -> dict:
    """A copy with every timing key of every record, and pytest-benchmark's own timings, set to 1.0."""
    run = copy.deepcopy(run)
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        for key in info:
            if schema.is_timing(key) and info[key] is not None:
                info[key] = [1.0] * len(info[key]) if isinstance(info[key], list) else 1.0
        bench["stats"] = {**bench["stats"], "data": [1.0], "min": 1.0, "max": 1.0, "mean": 1.0, "median": 1.0}
    return run


def tables(run: dict, folder, name: str) -> dict[str, str]:
    """The report's tables of `run` (its CSV text per table), through the report generator's own loading."""
    pytest.importorskip("pandas")
    from unlearning.bench.report.load import load
    from unlearning.bench.report.pipeline import build_tables, context

    path = folder / f"{name}.json"
    path.write_text(json.dumps(run))
    loaded = load([str(path)])
    built, _ = build_tables(loaded, context(loaded))
    return {table: t.csv() for table, t in built.items()}


def test_smoke_cells_as_3_slurm_shards_merge_into_the_unsharded_run(slurm_smoke, tmp_path):
    manifest = slurm_smoke.manifest
    states = {k: s.state for k, s in manifest.shards.items()}
    assert all(state == PASSED for state in states.values()), (
        f"{states}; progress: {slurm_smoke.lines}; "
        + " ".join(f"shard {k}: {s.reason} {slurm_smoke.log_tail(manifest.folder / f'shard-{k}.log')}"
                   for k, s in manifest.shards.items() if s.state != PASSED))
    assert len({s.job_id.split("_")[0] for s in manifest.shards.values()}) == 1, "the shards are one job array"
    assert slurm_smoke.reference_code == 0, slurm_smoke.log_tail(slurm_smoke.reference_log)

    merged, problems = shards.merge(manifest.shard_files, manifest.folder / "merged.json")
    assert problems == []
    assert merged["machine_info"]["bench_complete"] is True
    assert merged["machine_info"][shards.SHARDS]["splits"] == 3
    per_shard = [len(json.loads(p.read_text())["benchmarks"]) for p in manifest.shard_files]
    assert len(per_shard) == 3 and min(per_shard) > 0, f"cells per shard: {per_shard}"
    reference = json.loads(slurm_smoke.reference.read_text())
    # the same cells; their order may differ: the shards run free cells (the verdict's) where a cut falls
    # (benchmarks/order.py), and the report's tables do not depend on the order (compared below)
    assert sorted(b["fullname"] for b in merged["benchmarks"]) == sorted(b["fullname"] for b in reference["benchmarks"])
    diff = differences(merged, reference)
    keys = sorted({d.split(": ")[1].split(" ")[0] for d in diff if ": " in d})
    assert diff == [], f"{len(diff)} differences in keys {keys}, first: {diff[:5]}"

    ours = tables(timings_equalised(merged), tmp_path, "merged")
    theirs = tables(timings_equalised(reference), tmp_path, "unsharded")
    assert ours.keys() == theirs.keys() and ours
    assert [name for name in ours if ours[name] != theirs[name]] == []
