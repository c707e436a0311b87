"""Harness overhead: our code vs plain torch (`Overhead`); many models at once: `fit_many` with K models against K
sequential `fit`s, one run, both sides (`Ensemble`)."""

from __future__ import annotations

import pandas as pd

from ..common import NAN, col, is_true, num, select, shown, stats, summary_columns
from .base import INTERVAL_NOTE, Cell, Context, Table

RUNS = ("n: runs of the benchmark in the input (one record each), averaged with their 95 % CI [lo, hi]; within "
        "target: the run's flag, or how many of the n runs were within it.")
NOTE = ("ours / bare: best of the repeats of each side (seconds of the whole run); fit_vs_bare_loop: our training "
        "loop vs a plain torch loop; relabel_request_vs_step: relabeling requests vs plain optimizer steps. " + RUNS)
ENSEMBLE_NOTE = ("sequential: K calls of `fit`, one model after another; fit_many: the same K models (same inits, "
                 "shuffling seeds and epochs) trained at once with stacked weights; best of the repeats of each side. "
                 "speedup = sequential seconds / fit_many seconds, i.e. the throughput ratio. " + RUNS)


def per_benchmark(sub: pd.DataFrame, keys: list[str], measures: tuple, target: str, flag: str) -> pd.DataFrame:
    """One row per benchmark (`keys`): the runs' count, the mean [95 % CI] of each of the record keys `measures`, the
    target and `within_target` ("yes"/"no" for one run, "k/n" for several)."""
    rows = []
    for values, g in sub.groupby(keys, sort=True, dropna=False):
        flags = col(g, flag).dropna()
        within = ("" if flags.empty else ("yes" if is_true(flags).all() else "no") if len(g) == 1
                  else f"{int(is_true(flags).sum())}/{len(flags)}")
        rows.append({**dict(zip(keys, values, strict=True)), "n": len(g),
                     **{c: v for key in measures for c, v in summary_columns(key, col(g, key)).items()},
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
        data = per_benchmark(sub, ["benchmark", "dataset", "optimizer", "size"],
                             ("seconds", "bare_seconds", "overhead_ratio"), "overhead_target", "overhead_within_target")
        return cls.make(ctx, data, shown(data, (
            ("benchmark", "benchmark"), ("dataset", "dataset"), ("n", data["n"].map(str)),
            ("ours (s)", "seconds", "[sig4]"), ("bare torch (s)", "bare_seconds", "[sig4]"),
            ("ratio ours / bare (lower is better)", "overhead_ratio", "[.3f]"), ("target ≤", "overhead_target", ".2f"),
            ("within target", "within_target"))), [NOTE, INTERVAL_NOTE])

    def sentences(self) -> list[str]:
        return [f"{r['benchmark']}: {num(r['overhead_ratio'], '.3f')}× plain torch (target ≤ "
                f"{num(r['overhead_target'], '.2f')}: {target_words(r)})." for _, r in self.data.iterrows()]

    def cells(self, extended: bool = False) -> list[Cell]:
        if not extended:
            return []
        return [Cell(f"overhead_{r['benchmark']}", f"overhead: {r['benchmark']} ratio", NAN, r["overhead_ratio"], ".3f",
                     r["overhead_ratio_lo"], r["overhead_ratio_hi"])
                for _, r in self.data.iterrows()]


class Ensemble(Table):
    name = "ensemble"
    title = "Many models at once: fit_many vs K sequential fits"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Ensemble | None:
        sub = select(df, "overhead", "ensemble")
        if sub.empty:
            return None
        data = per_benchmark(sub, ["dataset", "k"], ("sequential_seconds", "seconds", "speedup"), "speedup_target",
                             "speedup_within_target")
        return cls.make(ctx, data, shown(data, (
            ("dataset", "dataset"), ("K", "k", "int"), ("n", data["n"].map(str)),
            ("K sequential fits (s)", "sequential_seconds", "[sig4]"), ("fit_many (s)", "seconds", "[sig4]"),
            ("speedup (higher is better)", "speedup", "[.3g]"), ("target ≥", "speedup_target", ".3g"),
            ("within target", "within_target"))), [ENSEMBLE_NOTE, INTERVAL_NOTE])

    def sentences(self) -> list[str]:
        return [f"K = {num(r['k'], 'int')}: fit_many trains the models {num(r['speedup'], '.3g')}× faster than one "
                f"fit after another (target ≥ {num(r['speedup_target'], '.3g')}: {target_words(r)})."
                for _, r in self.data.iterrows()]

    def cells(self, extended: bool = False) -> list[Cell]:
        if not extended:
            return []
        return [Cell(f"ensemble_k{num(r['k'], 'int')}", f"fit_many speedup at K = {num(r['k'], 'int')}", NAN,
                     r["speedup"], ".3g", r["speedup_lo"], r["speedup_hi"]) for _, r in self.data.iterrows()]
