"""Tracked figures across commits: the history view and the release check (when to use which: docs/clusters.md).

    python -m unlearning.bench.report.history RUNS_OR_FOLDERS... --out DIR   # history.csv, history.md, history.png
    python -m unlearning.bench.report.history --check BASELINE.json RUNS...   # the release check (exit 1: regressed)

Saved runs of one profile are grouped by commit (`commit_info.id`; a commit's runs read together, as the report reads
them), oldest first. A commit's figures (`figures`): **metrics**, the report's headline cells and per forgetting
dataset and method the mean F / ceiling; **costs**, per table, dataset and method the mean seconds per model; each
with its 95 % interval (`common.summary`). Between consecutive commits a metric changed **beyond the spread** when
both intervals exist and do not overlap ("moved (no interval)": it moved without one); a cost must also move by more
than `COST_FACTOR`. The release check compares the newest commit's metrics (timings: pytest-benchmark's own compare)
with a baseline run: one **regressed** when it moved by more than max(`ABS_TOLERANCE`, `REL_TOLERANCE` × |baseline|)
outside the baseline's interval, or is missing. Exit status 0: none regressed; 1: each named; 2: bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from .common import col, labelled, summary
from .figures import DPI, plt
from .load import Loaded, NoInput, expand, load
from .pipeline import build_tables, context

REL_TOLERANCE = 0.05          # the release check: 5 % of the baseline's value ...
ABS_TOLERANCE = 0.01          # ... or 0.01 (a point of accuracy, 1 % of F / ceiling), whichever is larger
BEYOND, MOVED = "beyond spread", "moved (no interval)"
# A cost's interval is over the seeds and models of one run, which time alike (a batch's seconds are shared): it holds
# none of the run-to-run noise of a shared machine, so a cost is marked only when it also moved by this factor.
COST_FACTOR = 1.5
COLUMNS = ["commit", "commit_time", "kind", "figure", "value", "lo", "hi", "n", "change"]


def commits(paths: list[str]) -> list[tuple[str, str, list[str]]]:
    """(commit, commit time, files) per commit the inputs were made from, oldest first (ValueError: none readable)."""
    files, problems = expand(paths)
    by: dict[str, tuple[str, list[str]]] = {}
    for path, label in files:
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            info = run.get("commit_info") or {}
            when = str(info.get("time") or run.get("datetime") or "")
        except (OSError, ValueError, AttributeError):
            continue             # the loader names it when the commit's runs are read
        by.setdefault(str(info.get("id") or "unknown"), (when, []))[1].append(label)
    if not by:
        raise ValueError("no saved run to read in " + ", ".join(paths) + "".join(f"; {p}" for p in problems))
    return [(c, when, labels) for c, (when, labels) in sorted(by.items(), key=lambda kv: kv[1][0])]


def figures(loaded: Loaded) -> pd.DataFrame:
    """One commit's tracked figures (module docstring): kind, figure, value, its interval [lo, hi] and count."""
    tables, _ = build_tables(loaded, context(loaded))
    rows = [("metric", c.label, c.ours, c.lo, c.hi, math.nan) for t in tables.values() for c in t.cells()]
    df = labelled(loaded.records)
    forgetting = df[(df["table"] == "forgetting") & col(df, "forget_quality_normalised").notna()]
    for (dataset, method), g in forgetting.groupby(["dataset", "label"]):
        s = summary(g["forget_quality_normalised"])
        rows.append(("metric", f"forgetting {dataset}: {method} F / ceiling", s.mean, s.lo, s.hi, s.n))
    for (paper, table, dataset, method), g in df[df["seconds"].notna()].groupby(["paper", "table", "dataset", "label"],
                                                                                  dropna=False):
        s = summary(g["seconds"], key="seconds")
        where = table if not paper or table.startswith(paper) else f"{paper} {table}"
        rows.append(("cost", f"{where} {dataset}: {method} seconds", s.mean, s.lo, s.hi, s.n))
    return pd.DataFrame(rows, columns=COLUMNS[2:-1])


def _change(prev, cur, kind: str = "metric") -> str:
    """How a figure changed from the commit before (module docstring): BEYOND, MOVED or ""."""
    if pd.isna(prev["value"]) or pd.isna(cur["value"]) or prev["value"] == cur["value"]:
        return ""
    intervals = not any(pd.isna(x) for x in (prev["lo"], prev["hi"], cur["lo"], cur["hi"]))
    disjoint = intervals and (cur["lo"] > prev["hi"] or cur["hi"] < prev["lo"])
    if kind == "cost":          # it must also have moved by more than COST_FACTOR, either way
        low, high = sorted((abs(prev["value"]), abs(cur["value"])))
        return BEYOND if high > COST_FACTOR * low and (disjoint or not intervals) else ""
    return BEYOND if disjoint else "" if intervals else MOVED


NEW, GONE = "new", "gone"


def moved(previous: pd.DataFrame, current: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """What moved between two reports' tracked figures (`figures` of each): every figure that changed beyond the
    spread (`_change`), moved without an interval, is new or is gone, as rows of kind, figure, before [lo, hi], after
    [lo, hi], change; and how many figures both have (the rest of them moved within the spread or not at all)."""
    key = ["kind", "figure"]
    both = previous.drop_duplicates(key).merge(current.drop_duplicates(key), on=key, how="outer",
                                               suffixes=("_before", "_after"), indicator=True)
    rows = []
    for _, r in both.iterrows():
        before = {k: r[f"{k}_before"] for k in ("value", "lo", "hi")}
        after = {k: r[f"{k}_after"] for k in ("value", "lo", "hi")}
        had, has = not pd.isna(before["value"]), not pd.isna(after["value"])
        change = NEW if has and not had else GONE if had and not has else _change(before, after, r["kind"])
        if change:
            rows.append({"kind": r["kind"], "figure": r["figure"], "before": before["value"], "before_lo": before["lo"],
                         "before_hi": before["hi"], "after": after["value"], "after_lo": after["lo"],
                         "after_hi": after["hi"], "change": change})
    columns = ["kind", "figure", "before", "before_lo", "before_hi", "after", "after_lo", "after_hi", "change"]
    return pd.DataFrame(rows, columns=columns), int((both["_merge"] == "both").sum())


def history(paths: list[str]) -> pd.DataFrame:
    """Every tracked figure of every commit (oldest first), each change from the commit before marked."""
    frames, profile = [], None
    for commit, when, files in commits(paths):
        loaded = load(files)
        if profile is not None and loaded.profile != profile:
            raise ValueError(f"commit {commit[:12]} ({', '.join(files)}) is of profile {loaded.profile}, the "
                             f"others of {profile}: give one profile's runs")
        profile = loaded.profile
        frames.append(figures(loaded).assign(commit=commit[:12], commit_time=when))
    df = pd.concat(frames, ignore_index=True).assign(change="")
    for _, g in df.groupby(["kind", "figure"], sort=False):
        for (_, prev), (j, cur) in zip(g.iloc[:-1].iterrows(), g.iloc[1:].iterrows(), strict=True):
            df.loc[j, "change"] = _change(prev, cur, cur["kind"])
    return df[COLUMNS]


def regressions(baseline: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The release check: each baseline metric the current run lost or moved beyond tolerance (module docstring)."""
    cur, out = current[current["kind"] == "metric"].set_index("figure")["value"], []
    base = baseline[(baseline["kind"] == "metric") & baseline["value"].notna()].set_index("figure")
    for figure, b in base.iterrows():
        now, tolerance = cur.get(figure, math.nan), max(ABS_TOLERANCE, REL_TOLERANCE * abs(b["value"]))
        spread = "" if pd.isna(b["lo"]) else f", baseline interval [{b['lo']:.4g}, {b['hi']:.4g}]"
        if pd.isna(now):
            out.append(f"{figure}: in the baseline ({b['value']:.4g}), missing now")
        elif abs(now - b["value"]) > tolerance and not (spread and b["lo"] <= now <= b["hi"]):
            out.append(f"{figure}: {b['value']:.4g} -> {now:.4g} (tolerance ±{tolerance:.3g}{spread})")
    return out


def check(baseline: Path, inputs: list[str]) -> int:
    """The release check of the newest commit among `inputs` against `baseline` (a saved run); the exit status."""
    base_runs, (commit, _, files) = load([str(baseline)]), commits(inputs)[-1]
    current = load(files)
    if current.profile != base_runs.profile:
        raise ValueError(f"the baseline {baseline} is of profile {base_runs.profile}, commit {commit[:12]}'s "
                         f"runs of {current.profile}: compare one profile")
    base = figures(base_runs)
    found = regressions(base, figures(current))
    for line in found:
        print(f"history: regressed: {line}", file=sys.stderr)
    print(f"history: release check of commit {commit[:12]} against {baseline}: "
          f"{int((base['kind'] == 'metric').sum())} metrics, {len(found)} regressed (tolerance max({ABS_TOLERANCE:g}, "
          f"{REL_TOLERANCE:.0%} of the baseline's value), outside its interval)")
    return 1 if found else 0


def plot(df: pd.DataFrame, out: Path) -> None:
    """history.png: each forgetting dataset's F / ceiling and each table's seconds per method, over commits; the
    headline cells that changed, as % of their first value; a red ring where a figure changed beyond the spread."""
    f = df[df["figure"].str.startswith("forgetting ") & df["figure"].str.endswith(" F / ceiling")]
    panels = []            # (title, frame with line / y / commit / change, log scale)
    for part, suffix, what, log in ((f, " F / ceiling", "F / ceiling", False),
                                    (df[df["kind"] == "cost"], " seconds", "seconds per model", True)):
        for name, g in part.groupby(part["figure"].str.split(":").str[0], sort=False):
            line = g["figure"].str.split(": ").str[1].str.removesuffix(suffix)
            panels.append((f"{name}: {what}", g.assign(line=line, y=g["value"]), log))
    head = df[(df["kind"] == "metric") & ~df.index.isin(f.index)]
    head = head[head.groupby("figure")["value"].transform("nunique") > 1]
    if len(head):
        first = head.groupby("figure")["value"].transform("first")
        panels.append(("headline cells that changed: % of their first value",
                       head.assign(line=head["figure"], y=(head["value"] / first - 1) * 100), False))
    position = {c: i for i, c in enumerate(dict.fromkeys(df["commit"]))}
    rows, cols = math.ceil(len(panels) / 3) or 1, min(3, len(panels)) or 1
    fig = plt.figure(figsize=(5.2 * cols, 3.4 * rows))
    for k, (title, sub, log) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        for name, g in sub.groupby("line", sort=False):
            x, beyond = g["commit"].map(position), g["change"] == BEYOND
            ax.plot(x, g["y"], marker="o", ms=3, lw=1, label=name)
            ax.scatter(x[beyond], g["y"][beyond], s=80, facecolors="none", edgecolors="red", zorder=3)
        ax.set(title=title, yscale="log" if log else "linear")
        ax.title.set_fontsize(9)
        ax.set_xticks(range(len(position)), list(position), rotation=30, fontsize=7)
        ax.legend(fontsize=5, ncol=2, framealpha=0.5)
    fig.suptitle("Tracked figures over commits (red ring: changed beyond the seeds' spread)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


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
    ap.add_argument("--check", type=Path, metavar="BASELINE", help="the release check against this baseline run")
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
    print(f"history: {df['commit'].nunique()} commits, {df['figure'].nunique()} figures, {sum(df['change'] == BEYOND)} "
          f"changes beyond the seeds' spread; wrote history.csv, history.md, history.png to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
