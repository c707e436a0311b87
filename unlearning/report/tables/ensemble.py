"""Many models at once: `fit_many` with K models against K sequential `fit`s (one run, both sides)."""

from __future__ import annotations

import pandas as pd

from ..common import NAN, col, missing, num, nums, select
from .base import Cell, Context, Table

NOTE = ("sequential: K calls of `fit`, one model after another; fit_many: the same K models (same inits, shuffling "
        "seeds and epochs) trained at once with stacked weights; best of the repeats of each side. speedup = "
        "sequential seconds / fit_many seconds, i.e. the throughput ratio.")


class Ensemble(Table):
    name = "ensemble"
    title = "Many models at once: fit_many vs K sequential fits"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Ensemble | None:
        sub = select(df, "overhead", "ensemble")
        if sub.empty:
            return None
        sub = sub.sort_values(["dataset", "k"], kind="stable")
        data = pd.DataFrame({"dataset": sub["dataset"].values, "k": col(sub, "k").values,
                             "sequential_seconds": col(sub, "sequential_seconds").values,
                             "seconds": col(sub, "seconds").values, "speedup": col(sub, "speedup").values,
                             "speedup_target": col(sub, "speedup_target").values,
                             "within_target": [("yes" if v else "no") if not missing(v) else ""
                                               for v in col(sub, "speedup_within_target")]})
        display = pd.DataFrame({
            "dataset": data["dataset"], "K": nums(data["k"], "int"),
            "K sequential fits (s)": nums(data["sequential_seconds"], "sig4"),
            "fit_many (s)": nums(data["seconds"], "sig4"),
            "speedup (higher is better)": nums(data["speedup"], ".3g"), "target ≥": nums(data["speedup_target"], ".3g"),
            "within target": data["within_target"]})
        return cls.make(ctx, data, display, [NOTE])

    def sentences(self) -> list[str]:
        return [f"K = {num(r['k'], 'int')}: fit_many trains the models {num(r['speedup'], '.3g')}× faster than one "
                f"fit after another (target ≥ {num(r['speedup_target'], '.3g')}: "
                f"{'within' if r['within_target'] == 'yes' else 'NOT within'})." for _, r in self.data.iterrows()]

    def cells(self, extended: bool = False) -> list[Cell]:
        if not extended:
            return []
        return [Cell(f"ensemble_k{num(r['k'], 'int')}", f"fit_many speedup at K = {num(r['k'], 'int')}", NAN,
                     r["speedup"], ".3g") for _, r in self.data.iterrows()]
