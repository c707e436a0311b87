"""Recomputing saved runs' verdicts from their φ (`unlearning.bench.rejudge`): the same keys the audit computes,
the reference models taken from another run's no-op record, newer runs' cells left out, inputs untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unlearning.bench import rejudge
from unlearning.evaluation import audit, verdict

PANEL = {"dataset": "digits", "forget_regime": "random", "removal_size": 20, "seed": 0, "n_models": 6}


def _bench(name: str, **info) -> dict:
    return {"name": name, "fullname": f"benchmarks/test_forgetting.py::test_forgetting[{name}]",
            "stats": {"mean": 1.0}, "extra_info": {"schema_version": 2, "table": "forgetting", **PANEL, **info}}


def _runs(tmp_path):
    rng = np.random.default_rng(0)
    u, r, _, _ = verdict.simulated_panel(6, 20, verdict.SCENARIOS["shift 1 sd"], rng)
    originals = u + rng.normal(size=u.shape)
    noop = _bench("noop", method="noop", phi=originals.tolist(), phi_reference=r.tolist(), verdict="did not forget")
    base = {"machine_info": {"node": "x"}, "commit_info": {"id": "abc", "dirty": False}, "datetime": "2026-12-01"}
    first = {**base, "benchmarks": [noop, {"name": "other", "fullname": "x", "extra_info": {"table": "grid"}}]}
    second = {**base, "benchmarks": [_bench("finetune", method="finetune", phi=u.tolist(), verdict="forgot")]}
    paths = [tmp_path / "0001_a.json", tmp_path / "0002_b.json"]
    for p, run in zip(paths, (first, second), strict=True):
        p.write_text(json.dumps(run))
    return paths, u, r, originals


def test_rejudged_records_hold_what_the_audit_computes(tmp_path, capsys):
    paths, u, r, originals = _runs(tmp_path)
    before = [p.read_bytes() for p in paths]
    assert rejudge.main([str(p) for p in paths] + ["-q"]) == 0
    assert [p.read_bytes() for p in paths] == before                                  # inputs untouched
    out = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*-rejudged.json")}
    assert sorted(out) == ["0003_a-rejudged.json", "0004_b-rejudged.json"]
    method = out["0004_b-rejudged.json"]["benchmarks"][0]["extra_info"]
    gate = verdict.difference(originals, r, seed=0).p_value
    expected = audit.judgement(u, r, gate=gate, originals=originals, seed=0)
    assert {k: method[k] for k in expected} == json.loads(json.dumps(expected))
    assert method["verdict"] == verdict.MEMORISED and method["rejudged_from"] == "0002_b.json"
    noop_run = out["0003_a-rejudged.json"]
    assert [b["name"] for b in noop_run["benchmarks"]] == ["noop"]                  # other tables left out
    assert noop_run["commit_info"]["rejudged_from"]["commit"] == "abc"
    assert noop_run["machine_info"]["bench_rejudged"]["records"] == 1


def test_skip_leaves_out_cells_a_newer_run_holds_and_a_missing_panel_is_named(tmp_path, capsys):
    paths, *_ = _runs(tmp_path)
    assert rejudge.main([str(paths[0]), str(paths[1]), "--skip", str(paths[1]), "-q"]) == 0
    assert "0002_b.json: no forgetting record with φ to re-judge" in capsys.readouterr().out
    assert rejudge.main([str(paths[1]), "-q"]) == 2                                  # its panel's no-op not given
    assert "no run given holds the no-op record of its panel" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rejudge.main([])
