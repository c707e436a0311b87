"""Harness overhead: our training loop and relabeling requests against plain torch."""

from __future__ import annotations

import pandas as pd

from ..common import NAN, col, missing, num, nums, select
from .base import Cell, Context, Table

NOTE = ("ours / bare: best of the repeats of each side (seconds of the whole run); fit_vs_bare_loop: our training "
        "loop vs a plain torch loop; relabel_request_vs_step: relabeling requests vs plain optimizer steps.")
COLUMNS = {"optimizer": "optimizer", "size": "removal_size", "seconds": "seconds", "bare_seconds": "bare_seconds",
           "overhead_ratio": "overhead_ratio", "overhead_target": "overhead_target"}


class Overhead(Table):
    name = "overhead"
    title = "Harness overhead: our code vs plain torch"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Overhead | None:
        sub = select(df, "overhead", "overhead")
        if sub.empty:
            return None
        sub = sub.sort_values(["method", "dataset"], kind="stable")
        data = pd.DataFrame({"benchmark": sub["method"].values, "dataset": sub["dataset"].values,
                             **{name: col(sub, key).values for name, key in COLUMNS.items()},
                             "within_target": [("yes" if v else "no") if not missing(v) else ""
                                               for v in col(sub, "overhead_within_target")]})
        display = pd.DataFrame({
            "benchmark": data["benchmark"], "dataset": data["dataset"],
            "ours (s)": nums(data["seconds"], "sig4"), "bare torch (s)": nums(data["bare_seconds"], "sig4"),
            "ratio ours / bare (lower is better)": nums(data["overhead_ratio"], ".3f"),
            "target ≤": nums(data["overhead_target"], ".2f"),
            "within target": data["within_target"]})
        return cls.make(ctx, data, display, [NOTE])

    def sentences(self) -> list[str]:
        return [f"{r['benchmark']}: {num(r['overhead_ratio'], '.3f')}× plain torch (target ≤ "
                f"{num(r['overhead_target'], '.2f')}: {'within' if r['within_target'] == 'yes' else 'NOT within'})."
                for _, r in self.data.iterrows()]

    def cells(self, extended: bool = False) -> list[Cell]:
        if not extended:
            return []
        return [Cell(f"overhead_{r['benchmark']}", f"overhead: {r['benchmark']} ratio", NAN, r["overhead_ratio"], ".3f")
                for _, r in self.data.iterrows()]
