"""Harness overhead: our code vs plain torch."""

from __future__ import annotations

import pandas as pd

from ..common import INTERVAL_NOTE, NAN, cis, col, is_true, num, nums, select, stats, summary_columns
from .base import Cell, Context, Table

NOTE = ("ours / bare: best of the repeats of each side (seconds of the whole run); fit_vs_bare_loop: our training "
        "loop vs a plain torch loop; relabel_request_vs_step: relabeling requests vs plain optimizer steps. n: runs "
        "of the benchmark in the input (one record each), averaged with their 95 % CI [lo, hi]; within target: the "
        "run's flag, or how many of the n runs were within it.")
MEASURES = {"seconds": "seconds", "bare_seconds": "bare_seconds", "overhead_ratio": "overhead_ratio"}


def per_benchmark(sub: pd.DataFrame, keys: list[str], measures: dict[str, str], target: str, flag: str) -> pd.DataFrame:
    """One row per benchmark (`keys`): the runs' count, the mean [95 % CI] of each of `measures` (column -> record
    key), the target and `within_target` ("yes"/"no" for one run, "k/n" for several)."""
    rows = []
    for values, g in sub.groupby(keys, sort=True, dropna=False):
        flags = col(g, flag).dropna()
        within = ("" if flags.empty else ("yes" if is_true(flags).all() else "no") if len(g) == 1
                  else f"{int(is_true(flags).sum())}/{len(flags)}")
        rows.append({**dict(zip(keys, values, strict=True)), "n": len(g),
                     **{c: v for name, key in measures.items() for c, v in summary_columns(name, col(g, key)).items()},
                     target: stats(col(g, target))[0], "within_target": within})
    return pd.DataFrame(rows)


def target_words(r: pd.Series) -> str:
    """"within" / "NOT within" the target, or "within in k of n runs"."""
    w = r["within_target"]
    if "/" in w:
        k, n = w.split("/")
        return f"within in {k} of {n} runs"
    return "within" if w == "yes" else "NOT within"


class Overhead(Table):
    name = "overhead"
    title = "Harness overhead: our code vs plain torch"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Overhead | None:
        sub = select(df, "overhead", "overhead")
        if sub.empty:
            return None
        sub = sub.assign(benchmark=sub["method"], optimizer=col(sub, "optimizer").fillna(""),
                         size=col(sub, "removal_size"))
        data = per_benchmark(sub, ["benchmark", "dataset", "optimizer", "size"], MEASURES, "overhead_target",
                             "overhead_within_target")
        display = pd.DataFrame({
            "benchmark": data["benchmark"], "dataset": data["dataset"], "n": data["n"].map(str),
            "ours (s)": cis(data, "seconds", "sig4"), "bare torch (s)": cis(data, "bare_seconds", "sig4"),
            "ratio ours / bare (lower is better)": cis(data, "overhead_ratio", ".3f"),
            "target ≤": nums(data["overhead_target"], ".2f"),
            "within target": data["within_target"]})
        return cls.make(ctx, data, display, [NOTE, INTERVAL_NOTE])

    def sentences(self) -> list[str]:
        return [f"{r['benchmark']}: {num(r['overhead_ratio'], '.3f')}× plain torch (target ≤ "
                f"{num(r['overhead_target'], '.2f')}: {target_words(r)})." for _, r in self.data.iterrows()]

    def cells(self, extended: bool = False) -> list[Cell]:
        if not extended:
            return []
        return [Cell(f"overhead_{r['benchmark']}", f"overhead: {r['benchmark']} ratio", NAN, r["overhead_ratio"], ".3f",
                     r["overhead_ratio_lo"], r["overhead_ratio_hi"])
                for _, r in self.data.iterrows()]
