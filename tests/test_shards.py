"""unlearning.bench.shards: a set of shards is one whole run or the merge names why not."""

from __future__ import annotations

import json
import os

import pytest
from toys import this_thread_only

from unlearning.bench import shards


def shard_run(group: int, splits: int = 3, cells=("a",), *, commit="c0ffee", profile="smoke", torch="2.13.0",
              launch="L1", complete=True, failed=(), built=()) -> dict:
    return {"machine_info": {"bench_profile": profile, "torch": torch, "bench_complete": complete,
                             "bench_cells": {"done": len(cells), "collected": len(cells)},
                             shards.SHARD: {"group": group, "splits": splits, "launch": launch},
                             shards.FAILED: list(failed), shards.BUILT: list(built)},
            "commit_info": {"id": commit, "dirty": False}, "datetime": f"2026-12-01T00:0{group}:00",
            "benchmarks": [{"fullname": f"bench::{c}", "extra_info": {"x": i}} for i, c in enumerate(cells)]}


def write(tmp_path, runs: dict[str, dict]) -> list:
    paths = []
    for name, run in runs.items():
        (tmp_path / name).write_text(json.dumps(run))
        paths.append(tmp_path / name)
    return paths


def test_three_whole_shards_merge_in_group_order_into_a_complete_run(tmp_path):
    paths = write(tmp_path, {"s3.json": shard_run(3, cells=("e",)), "s1.json": shard_run(1, cells=("a", "b")),
                             "s2.json": shard_run(2, cells=("c", "d"))})
    run, problems = shards.merge(paths, tmp_path / "merged.json")
    assert problems == []
    assert [b["fullname"] for b in run["benchmarks"]] == [f"bench::{c}" for c in "abcde"]
    mi = run["machine_info"]
    assert mi["bench_complete"] is True and mi["bench_cells"] == {"done": 5, "collected": 5}
    assert shards.SHARD not in mi and mi[shards.SHARDS]["splits"] == 3
    assert run["datetime"] == "2026-12-01T00:03:00"               # the last shard's
    assert json.loads((tmp_path / "merged.json").read_text()) == run


@pytest.mark.parametrize(("runs", "expected"), [
    ({"1": shard_run(1), "3": shard_run(3)}, "missing shard 2 of 3"),
    ({"1": shard_run(1), "2": shard_run(2), "2b": shard_run(2), "3": shard_run(3)}, "shard 2 of 3 saved 2 times"),
    ({"1": shard_run(1), "2": shard_run(2, failed=("bench::x",)), "3": shard_run(3)},
     "shard 2 of 3 (2) failed: 1 cell(s) failed or errored, first bench::x"),
    ({"1": shard_run(1), "2": shard_run(2, complete=False), "3": shard_run(3)}, "shard 2 of 3 (2) is incomplete"),
    ({"1": shard_run(1), "2": shard_run(2, commit="beef"), "3": shard_run(3)},
     "the shards come from different commits"),
    ({"1": shard_run(1), "2": shard_run(2, profile="paper"), "3": shard_run(3)}, "different profiles"),
    ({"1": shard_run(1), "2": shard_run(2, torch="2.14.1"), "3": shard_run(3)}, "different torch versions"),
    ({"1": shard_run(1), "2": shard_run(2, launch="L2"), "3": shard_run(3)}, "different launches"),
    ({"1": shard_run(1, cells=("a",)), "2": shard_run(2, cells=("a",)), "3": shard_run(3, cells=("b",))},
     "1 cell(s) are in more than one shard, first bench::a (shards 1, 2)"),
])
def test_what_is_not_one_whole_run_is_named_and_the_merge_is_not_complete(runs, expected):
    found = shards.check([shards.from_run(run, label) for label, run in runs.items()])
    assert any(expected in p for p in found), found
    run, problems = shards.merged_run([shards.from_run(r, label) for label, r in runs.items()])
    assert run["machine_info"]["bench_complete"] is False and problems == found


def test_an_unsharded_or_malformed_file_is_named(tmp_path):
    plain = shard_run(1)
    del plain["machine_info"][shards.SHARD]
    bad = shard_run(1)
    bad["machine_info"][shards.SHARD] = {"group": 4, "splits": 3}
    (tmp_path / "torn.json").write_text("{")
    paths = write(tmp_path, {"plain.json": plain, "bad.json": bad, "ok.json": shard_run(1, splits=1)})
    run, problems = shards.merge([*paths, tmp_path / "torn.json", tmp_path / "absent.json"])
    assert any("plain.json: not a shard" in p for p in problems)
    assert any("1 <= group <= splits, not group 4, splits 3" in p for p in problems)
    assert any("torn.json: not JSON" in p for p in problems)
    assert any("absent.json" in p for p in problems)
    assert run["machine_info"]["bench_complete"] is False
    with pytest.raises(ValueError, match="nothing to merge"):
        shards.merge([tmp_path / "absent.json"])


def test_duplicated_work_counts_what_a_second_shard_built_again():
    built1 = [{"what": "panel", "key": "digits/random/20", "seconds": 5.0},
              {"what": "oracle", "key": "k", "seconds": 0.0, "cell": True}]
    built2 = [{"what": "panel", "key": "digits/random/20", "seconds": 4.0},
              {"what": "oracle", "key": "k", "seconds": 2.0},
              {"what": "panel", "key": "digits/canaries/20", "seconds": 3.0}]
    dup = shards.duplicated_work([shards.from_run(shard_run(1, 2, built=built1), "1"),
                                  shards.from_run(shard_run(2, 2, built=built2), "2")])
    assert dup["seconds"] == pytest.approx(6.0)          # shard 2's panel (4 s) and its oracle (2 s), not shard 1's
    assert dup["built_seconds"] == pytest.approx(14.0)
    assert [(i["what"], i["shards"]) for i in dup["items"]] == [("oracle", [1, 2]), ("panel", [1, 2])]


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "merged.json"
    out.write_text('{"old": true}')

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", this_thread_only(boom, os.replace))   # the atomic write's last step
    with pytest.raises(KeyboardInterrupt):
        shards.write_json({"new": True}, out)
    assert json.loads(out.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["merged.json"]
