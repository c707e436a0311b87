"""Recompute the forgetting verdicts of saved runs from the per-model φ their records keep.

The verdict, its attainability and U-LiRA need nothing but φ (`unlearning.evaluation.audit.judgement`):
each forgetting record keeps its models' φ on the forget set (`phi`), and the no-op's and naive
retraining's records of a panel keep the reference models' (`phi_reference`). So a rule that changes
(issue 29: labels that say which way, clipped effects, attainability, U-LiRA) reaches every saved cell
without training a model again:

    python -m unlearning.bench.rejudge reports/runs/0017_paper-forgetting.json ... --out-dir reports/runs

Each input run gives one new run file beside it, `<next number>_<its name>-rejudged.json`: the input's
records (every `forgetting` and `forgetting_sweep` record with φ) with the keys `judgement` computes put
in their place and `rejudged_from` naming the input; its `datetime` now and its `commit_info` this
checkout's, so the report generator reads it in place of the input's records (the newest run of a
benchmark wins) and lists the commit that judged them; `machine_info.bench_rejudged` says from what.
The input files are not touched.

Which panel a record belongs to: (dataset, forget regime, removal size, seed, N). The reference
models' φ and the originals' (the no-op's records: the gate and U-LiRA's choice of vulnerable points)
are taken from any input run holding that panel's no-op record, so records of a run without one
(the baselines', reports/runs/0020) are judged against the same reference models their own run
trained (the same seeds and code: checked, `test_rejudge`). Control rows (`phi_retain`, `phi_test`)
exist only in records made since issue 29; older records are judged without them (no `shifted
everywhere`), and the report says so. `--skip RUN` leaves out the records whose benchmark a newer run
(one that re-ran cells with control rows) holds.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import re
import sys
from pathlib import Path

import numpy as np

from ..common.files import create_json
from ..evaluation import audit, verdict
from ..running import provenance

TABLES = ("forgetting", "forgetting_sweep")
PANEL = ("dataset", "forget_regime", "removal_size", "seed", "n_models")


def _records(run: dict) -> list[dict]:
    return [b["extra_info"] for b in run.get("benchmarks", []) if isinstance(b.get("extra_info"), dict)]


def panels(runs: list[dict]) -> dict[tuple, dict]:
    """Panel key -> {"r": the reference models' φ, "originals": the no-op's φ, "rc": their control rows' φ or None},
    from the no-op records of `runs` (one with control rows where any has them)."""
    out = {}
    for info in (i for run in runs for i in _records(run)):
        if info.get("table") == "forgetting" and info.get("method") == "noop" and info.get("phi_reference"):
            rc = ([np.asarray(info["phi_reference_retain"]), np.asarray(info["phi_reference_test"])]
                  if info.get("phi_reference_retain") else None)
            key = tuple(info[k] for k in PANEL)
            if key not in out or (out[key]["rc"] is None and rc is not None):     # the one with control rows
                out[key] = {"r": np.asarray(info["phi_reference"]), "originals": np.asarray(info["phi"]), "rc": rc}
    return out


def rejudge_record(info: dict, panel: dict, gates: dict) -> dict:
    """`info` with the keys `audit.judgement` computes from its φ against `panel`'s reference models."""
    u, r = np.asarray(info["phi"]), panel["r"]
    key = id(panel)
    if key not in gates:
        gates[key] = verdict.difference(panel["originals"], r, seed=info["seed"]).p_value
    uc = [np.asarray(info["phi_retain"]), np.asarray(info["phi_test"])] if info.get("phi_retain") else None
    rc = panel["rc"] if uc is not None else None
    is_noop = info["method"] == "noop" and info.get("table") == "forgetting"
    if uc is not None and rc is None:
        raise ValueError(f"{info['method']}: its record has control rows but no run given holds its panel's "
                         "reference models' φ on them (a no-op record made since issue 29)")
    judged = audit.judgement(u, r, uc, rc, gate=verdict.SELF if is_noop else gates[key],
                             originals=panel["originals"], seed=info["seed"])
    return {**info, **judged}


def rejudge(run: dict, source: str, index: dict[tuple, dict], skip: set[str], progress=None) -> tuple[dict, int]:
    """A copy of `run` whose forgetting records are re-judged (module docstring); the count re-judged. Records
    without φ, of other tables or whose benchmark is in `skip` are left out of the copy."""
    out, gates, kept = copy.deepcopy(run), {}, []
    for bench in out["benchmarks"]:
        info = bench.get("extra_info") or {}
        if info.get("table") not in TABLES or not info.get("phi") or bench.get("fullname") in skip:
            continue
        key = tuple(info.get(k) for k in PANEL)
        if key not in index:
            raise ValueError(f"{source}: {bench.get('fullname')}: no run given holds the no-op record of its panel "
                             f"{dict(zip(PANEL, key, strict=True))}; give the run that does")
        bench["extra_info"] = {**rejudge_record(info, index[key], gates), "rejudged_from": source}
        kept.append(bench)
        if progress:
            progress(f"{len(kept)}: {bench.get('fullname')} -> {bench['extra_info']['verdict']}")
    state = provenance.tree()
    now = dt.datetime.now(dt.UTC).isoformat()
    out["benchmarks"] = kept
    out["datetime"] = now
    out["commit_info"] = {"id": state.get("git_commit"), "dirty": state.get("git_dirty"), "time": now,
                          "rejudged_from": {"file": source, "commit": run.get("commit_info", {}).get("id"),
                                            "datetime": run.get("datetime")}}
    out["machine_info"]["bench_rejudged"] = {"source": source, "records": len(kept),
                                             "commit": state.get("git_commit"), "dirty": state.get("git_dirty")}
    return out, len(kept)


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.glob("*.json") if (m := re.match(r"(\d+)_", p.name))]
    return max(numbers, default=0) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unlearning.bench.rejudge", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="saved pytest-benchmark runs holding forgetting records")
    parser.add_argument("--out-dir", type=Path, default=None, help="where the new runs go (default: beside each input)")
    parser.add_argument("--skip", type=Path, action="append", default=[],
                        help="a newer run: its benchmarks are not re-judged (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        runs = [json.loads(p.read_text()) for p in args.runs]
        skip = {b.get("fullname") for p in args.skip for b in json.loads(p.read_text()).get("benchmarks", [])}
    except (OSError, json.JSONDecodeError) as exc:
        print(f"rejudge: cannot read a run: {exc}", file=sys.stderr)
        return 2
    index = panels(runs)
    for path, run in zip(args.runs, runs, strict=True):
        try:
            out, n = rejudge(run, path.name, index, skip, None if args.quiet else print)
        except ValueError as exc:
            print(f"rejudge: {exc}", file=sys.stderr)
            return 2
        if not n:
            print(f"{path.name}: no forgetting record with φ to re-judge; nothing written")
            continue
        folder = args.out_dir or path.parent
        name = re.sub(r"^\d+_", "", path.stem)
        target = folder / f"{_next_number(folder):04d}_{name}-rejudged.json"
        written = create_json(target, out)
        print(f"{path.name}: {n} records re-judged -> {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
