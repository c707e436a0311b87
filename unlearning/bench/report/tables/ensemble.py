"""Many models at once: `fit_many` with K models against K sequential `fit`s (one run, both sides)."""

from __future__ import annotations

import pandas as pd

from ..common import INTERVAL_NOTE, NAN, cis, num, nums, select
from .base import Cell, Context, Table
from .overhead import per_benchmark, target_words

NOTE = ("sequential: K calls of `fit`, one model after another; fit_many: the same K models (same inits, shuffling "
        "seeds and epochs) trained at once with stacked weights; best of the repeats of each side. speedup = "
        "sequential seconds / fit_many seconds, i.e. the throughput ratio. n: runs of the benchmark in the input (one "
        "record each), averaged with their 95 % CI [lo, hi]; within target: the run's flag, or how many of the n runs "
        "were within it.")
MEASURES = {"sequential_seconds": "sequential_seconds", "seconds": "seconds", "speedup": "speedup"}


class Ensemble(Table):
    name = "ensemble"
    title = "Many models at once: fit_many vs K sequential fits"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Ensemble | None:
        sub = select(df, "overhead", "ensemble")
        if sub.empty:
            return None
        data = per_benchmark(sub, ["dataset", "k"], MEASURES, "speedup_target", "speedup_within_target")
        display = pd.DataFrame({
            "dataset": data["dataset"], "K": nums(data["k"], "int"), "n": data["n"].map(str),
            "K sequential fits (s)": cis(data, "sequential_seconds", "sig4"),
            "fit_many (s)": cis(data, "seconds", "sig4"),
            "speedup (higher is better)": cis(data, "speedup", ".3g"),
            "target ≥": nums(data["speedup_target"], ".3g"), "within target": data["within_target"]})
        return cls.make(ctx, data, display, [NOTE, INTERVAL_NOTE])

    def sentences(self) -> list[str]:
        return [f"K = {num(r['k'], 'int')}: fit_many trains the models {num(r['speedup'], '.3g')}× faster than one "
                f"fit after another (target ≥ {num(r['speedup_target'], '.3g')}: {target_words(r)})."
                for _, r in self.data.iterrows()]

    def cells(self, extended: bool = False) -> list[Cell]:
        if not extended:
            return []
        return [Cell(f"ensemble_k{num(r['k'], 'int')}", f"fit_many speedup at K = {num(r['k'], 'int')}", NAN,
                     r["speedup"], ".3g", r["speedup_lo"], r["speedup_hi"]) for _, r in self.data.iterrows()]
