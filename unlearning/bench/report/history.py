"""Tracked figures across commits: the history view and the release check.

    python -m unlearning.bench.report.history RUNS_OR_FOLDERS... --out DIR   # history.csv, history.md, history.png
    python -m unlearning.bench.report.history --check BASELINE.json RUNS...   # the release check (exit 1: regressed)

The inputs are saved runs (pytest-benchmark JSON: unsharded runs, merged shards or shard files) of one profile,
grouped by the commit they were made from (`commit_info.id`; runs of one commit are read together, as the report
reads them) and ordered by commit time. Runs of another profile than the first commit's are refused, named.

The tracked figures of a commit (`figures`):

- **metrics**: each headline cell of the report (`Headline`: the papers' key numbers, the forgetting verdict
  counts), and per forgetting dataset and method (preset and tuned apart) the mean F / ceiling over its cells
  (`forget_quality_normalised`, the ranking's forgetting measure);
- **costs**: per benchmark table, dataset and method, the mean `seconds` per model.

Each has its 95 % interval where it has several values (the report's rule, `common.summary`; a headline cell's is
the headline's). A metric **changed beyond the seeds' spread** between two consecutive commits when both have an
interval and the intervals do not overlap; a metric with no interval that moved is marked "moved (no interval)". A
cost is marked when it also moved by more than `COST_FACTOR` (its interval holds no run-to-run noise).

The release check compares the metrics (never the costs: timings are compared by pytest-benchmark's own
`--benchmark-compare-fail`, against a run saved on the same machine; see docs/clusters.md) of the newest commit
with a committed baseline run: a metric **regressed** when it moved by more than `max(ABS_TOLERANCE, REL_TOLERANCE ×
|baseline|)` and lies outside the baseline's interval where it has one; a metric of the baseline that is missing is
a regression too. Exit status 0: none regressed; 1: each regression named; 2: bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .common import labelled, summary
from .load import Loaded, NoInput, expand, load
from .pipeline import build_tables, context

REL_TOLERANCE = 0.05          # the release check: 5 % of the baseline's value ...
ABS_TOLERANCE = 0.01          # ... or 0.01 (a point of accuracy, 1 % of F / ceiling), whichever is larger
BEYOND, MOVED = "beyond spread", "moved (no interval)"
# A cost's interval is over the seeds and models of one run, which time alike (a batch's seconds are shared): it holds
# none of the run-to-run noise of a shared machine. A cost is marked only when it also moved by more than this factor
# (either way); the release check leaves timings to pytest-benchmark's --benchmark-compare-fail.
COST_FACTOR = 1.5
COLUMNS = ["commit", "commit_time", "kind", "figure", "value", "lo", "hi", "n", "change"]


@dataclass(frozen=True)
class Commit:
    commit: str
    time: str
    files: tuple[str, ...]


def commits(paths: list[str]) -> list[Commit]:
    """The input files grouped by the commit they were made from, oldest commit first (ValueError: none readable)."""
    files, problems = expand(paths)
    by: dict[str, tuple[str, list[str]]] = {}
    for path, label in files:
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            info = run.get("commit_info") or {}
        except (OSError, ValueError, AttributeError):
            continue             # the loader names it when the commit's runs are read
        commit = str(info.get("id") or "unknown")
        when = str(info.get("time") or run.get("datetime") or "")
        by.setdefault(commit, (when, []))[1].append(label)
    if not by:
        raise ValueError("no saved run to read in " + ", ".join(paths) + "".join(f"; {p}" for p in problems))
    return [Commit(c, when, tuple(labels)) for c, (when, labels) in sorted(by.items(), key=lambda kv: kv[1][0])]


def _metric_rows(loaded: Loaded) -> list[dict]:
    tables, _ = build_tables(loaded, context(loaded))
    rows = [{"kind": "metric", "figure": c.label, "value": c.ours, "lo": c.lo, "hi": c.hi, "n": math.nan}
            for t in tables.values() for c in t.cells()]
    df = loaded.records
    forgetting = df[(df["table"] == "forgetting") & df["forget_quality_normalised"].notna()] \
        if "forget_quality_normalised" in df else df.iloc[:0]
    for (dataset, method), g in labelled(forgetting).groupby(["dataset", "label"]) if len(forgetting) else []:
        s = summary(g["forget_quality_normalised"])
        rows.append({"kind": "metric", "figure": f"forgetting {dataset}: {method} F / ceiling", "value": s.mean,
                     "lo": s.lo, "hi": s.hi, "n": s.n})
    return rows


def _cost_rows(loaded: Loaded) -> list[dict]:
    df = labelled(loaded.records[loaded.records["seconds"].notna()])
    rows = []
    for (paper, table, dataset, method), g in df.groupby(["paper", "table", "dataset", "label"], dropna=False):
        s = summary(g["seconds"], key="seconds")
        where = table if not paper or table.startswith(paper) else f"{paper} {table}"
        rows.append({"kind": "cost", "figure": f"{where} {dataset}: {method} seconds", "value": s.mean,
                     "lo": s.lo, "hi": s.hi, "n": s.n})
    return rows


def figures(loaded: Loaded) -> pd.DataFrame:
    """One commit's tracked figures: kind (metric or cost), figure, value, its interval [lo, hi] and count."""
    return pd.DataFrame(_metric_rows(loaded) + _cost_rows(loaded), columns=COLUMNS[2:-1])


def _change(prev, cur, kind: str = "metric") -> str:
    """How a figure changed from the commit before: BEYOND (the two intervals do not overlap; a cost must also have
    moved by more than `COST_FACTOR`), MOVED (a metric without an interval that changed) or ""."""
    if any(pd.isna(x) for x in (prev["value"], cur["value"])) or prev["value"] == cur["value"]:
        return ""
    intervals = all(not pd.isna(x) for x in (prev["lo"], prev["hi"], cur["lo"], cur["hi"]))
    disjoint = intervals and (cur["lo"] > prev["hi"] or cur["hi"] < prev["lo"])
    if kind == "cost":
        low, high = sorted((abs(prev["value"]), abs(cur["value"])))
        factor = high / low if low > 0 else math.inf
        return BEYOND if factor > COST_FACTOR and (disjoint or not intervals) else ""
    if not intervals:
        return MOVED
    return BEYOND if disjoint else ""


def history(paths: list[str]) -> pd.DataFrame:
    """Every tracked figure of every commit (oldest first), each change from the commit before marked."""
    found = commits(paths)
    frames, profile = [], None
    for c in found:
        loaded = load(list(c.files))
        if profile is not None and loaded.profile != profile:
            raise ValueError(f"commit {c.commit[:12]} ({', '.join(c.files)}) is of profile {loaded.profile}, the "
                             f"others of {profile}: give one profile's runs")
        profile = loaded.profile
        frames.append(figures(loaded).assign(commit=c.commit[:12], commit_time=c.time))
    df = pd.concat(frames, ignore_index=True)
    df["change"] = ""
    for _, g in df.groupby(["kind", "figure"], sort=False):
        for (_, prev), (j, cur) in zip(g.iloc[:-1].iterrows(), g.iloc[1:].iterrows(), strict=True):
            df.loc[j, "change"] = _change(prev, cur, cur["kind"])
    return df[COLUMNS]


def regressions(baseline: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The release check: each baseline metric the current run lost or moved beyond tolerance (module docstring)."""
    base = baseline[baseline["kind"] == "metric"].set_index("figure")
    cur = current[current["kind"] == "metric"].set_index("figure")
    out = []
    for figure, b in base.iterrows():
        if pd.isna(b["value"]):
            continue
        if figure not in cur.index or pd.isna(cur.loc[figure, "value"]):
            out.append(f"{figure}: in the baseline ({b['value']:.4g}), missing now")
            continue
        now = float(cur.loc[figure, "value"])
        tolerance = max(ABS_TOLERANCE, REL_TOLERANCE * abs(b["value"]))
        inside = not pd.isna(b["lo"]) and b["lo"] <= now <= b["hi"]
        if abs(now - b["value"]) > tolerance and not inside:
            out.append(f"{figure}: {b['value']:.4g} -> {now:.4g} (tolerance ±{tolerance:.3g}"
                       + (f", baseline interval [{b['lo']:.4g}, {b['hi']:.4g}]" if not pd.isna(b["lo"]) else "")
                       + ")")
    return out


def check(baseline: Path, inputs: list[str]) -> int:
    """The release check of the newest commit among `inputs` against `baseline` (a saved run); the exit status."""
    base_runs = load([str(baseline)])
    newest = commits(inputs)[-1]
    current = load(list(newest.files))
    if current.profile != base_runs.profile:
        raise ValueError(f"the baseline {baseline} is of profile {base_runs.profile}, commit {newest.commit[:12]}'s "
                         f"runs of {current.profile}: compare one profile")
    found = regressions(figures(base_runs), figures(current))
    for line in found:
        print(f"history: regressed: {line}", file=sys.stderr)
    n = int((figures(base_runs)["kind"] == "metric").sum())
    print(f"history: release check of commit {newest.commit[:12]} against {baseline}: {n} metrics, {len(found)} "
          f"regressed (tolerance max({ABS_TOLERANCE:g}, {REL_TOLERANCE:.0%} of the baseline's value), "
          "outside its interval)")
    return 1 if found else 0


def plot(df: pd.DataFrame, out: Path) -> None:
    """history.png: each forgetting dataset's F / ceiling and each table's seconds per method, over commits; the
    headline cells that changed, as % of their first value; a red ring where a figure changed beyond the spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(dict.fromkeys(df["commit"]))
    groups = _panels(df)
    cols = min(3, len(groups)) or 1
    rows = math.ceil(len(groups) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (title, sub, log) in zip(axes.flat, groups, strict=False):
        for name, g in sub.groupby("line", sort=False):
            x = [order.index(c) for c in g["commit"]]
            ax.plot(x, g["y"], marker="o", ms=3, lw=1, label=name)
            beyond = g["change"] == BEYOND
            ax.scatter([xi for xi, b in zip(x, beyond, strict=True) if b], g["y"][beyond], s=80,
                       facecolors="none", edgecolors="red", zorder=3)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(order)), order, rotation=30, fontsize=7)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=5, ncol=2, framealpha=0.5)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.suptitle("Tracked figures over commits (red ring: changed beyond the seeds' spread)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _panels(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame, bool]]:
    """(title, frame with line / y / commit / change, log scale) per panel of `plot`."""
    panels = []
    f = df[df["figure"].str.startswith("forgetting ") & df["figure"].str.endswith(" F / ceiling")]
    for dataset, g in f.groupby(f["figure"].str.split(":").str[0], sort=False):
        panels.append((f"{dataset}: F / ceiling", g.assign(line=g["figure"].str.split(": ").str[1]
                                                           .str.removesuffix(" F / ceiling"), y=g["value"]), False))
    c = df[df["kind"] == "cost"]
    for table, g in c.groupby(c["figure"].str.split(":").str[0], sort=False):
        panels.append((f"{table}: seconds per model", g.assign(line=g["figure"].str.split(": ").str[1]
                                                               .str.removesuffix(" seconds"), y=g["value"]), True))
    head = df[(df["kind"] == "metric") & ~df.index.isin(f.index)]
    moved = head["figure"].map(head.groupby("figure")["value"].nunique() > 1).astype(bool)
    first = head["figure"].map(head.groupby("figure")["value"].first())
    h = head.assign(line=head["figure"], y=(head["value"] / first - 1) * 100)[moved]
    if len(h):
        panels.append(("headline cells that changed: % of their first value", h, False))
    return panels


def markdown(df: pd.DataFrame) -> str:
    wide = df.pivot_table(index=["kind", "figure"], columns="commit", values="value", sort=False, aggfunc="first")
    wide = wide[list(dict.fromkeys(df["commit"]))]
    changed = df[df["change"] != ""].groupby(["kind", "figure"])["change"].agg(lambda s: ", ".join(sorted(set(s))))
    wide["changes"] = changed.reindex(wide.index).fillna("")
    return wide.reset_index().to_markdown(index=False, floatfmt=".4g") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m unlearning.bench.report.history", description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="saved runs (JSON files or folders), several commits, one profile")
    ap.add_argument("--out", type=Path, default=Path(".benchmarks") / "history", help="output folder")
    ap.add_argument("--check", type=Path, default=None, metavar="BASELINE",
                    help="the release check: compare the newest commit's metrics with this baseline run")
    args = ap.parse_args(argv)
    try:
        if args.check is not None:
            return check(args.check, args.inputs)
        df = history(args.inputs)
    except (ValueError, NoInput) as exc:
        print(f"history: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "history.csv", index=False)
    (args.out / "history.md").write_text(markdown(df), encoding="utf-8")
    plot(df, args.out / "history.png")
    flagged = int((df["change"] == BEYOND).sum())
    print(f"history: {df['commit'].nunique()} commits, {df['figure'].nunique()} figures, {flagged} changes beyond "
          f"the seeds' spread; wrote history.csv, history.md, history.png to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
