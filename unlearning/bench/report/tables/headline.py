"""The README's headline (each table's key cells, paper beside ours) and those cells per torch version."""

from __future__ import annotations

import pandas as pd

from ..common import NAN, ci, covers, delta, num
from .base import Cell, Context, Table

IN_CI = "paper in our 95 % CI"
NOTE = ("ours [lo, hi]: our mean and its 95 % interval, from the values of the table the cell comes from (its notes "
        "say over what: seeds, trials or records); paper in our 95 % CI: whether the paper's number lies in that "
        "interval (empty: no paper number, or no interval: one value, or a number that is not a mean).")


class Headline(Table):
    name = "headline"
    title = "Headline: the papers' key numbers beside ours"

    @classmethod
    def build(cls, tables: dict[str, Table], ctx: Context) -> Headline:
        cells = [c for t in tables.values() if t.PAPER for c in t.cells()]
        columns = ["quantity", "paper", "ours", "ours_lo", "ours_hi", "delta", "paper_in_ci"]
        data = pd.DataFrame([{"quantity": c.label, "paper": c.paper, "ours": c.ours, "ours_lo": c.lo, "ours_hi": c.hi,
                              "delta": delta(c.ours, c.paper), "paper_in_ci": covers(c.lo, c.hi, c.paper)}
                             for c in cells], columns=columns)
        specs = [c.spec for c in cells]
        display = pd.DataFrame({
            "quantity": data["quantity"], "paper": [num(x, s) for x, s in zip(data["paper"], specs, strict=True)],
            "ours [95 % CI]": [ci(x, lo, hi, s) for x, lo, hi, s in
                               zip(data["ours"], data["ours_lo"], data["ours_hi"], specs, strict=True)],
            "Δ": [num(x, s) for x, s in zip(data["delta"], specs, strict=True)], IN_CI: data["paper_in_ci"]})
        notes = [NOTE, *(["Empty: not in this run."] if data["ours"].isna().any() else [])]
        return cls.make(ctx, data, display, notes)


class TorchVersions(Table):
    name = "torch_versions"
    title = "Headline cells per torch version"

    @classmethod
    def build(cls, per_torch: dict[str, dict[str, Table]], ctx: Context) -> TorchVersions | None:
        """The headline cells (and the grid's and overhead's) side by side per torch version; None for one."""
        if len(per_torch) < 2:
            return None
        first: dict[str, Cell] = {}
        cells: dict[str, dict[str, Cell]] = {}
        for version, tables in per_torch.items():
            for c in (c for t in tables.values() for c in t.cells(extended=True)):
                first.setdefault(c.key, c)
                cells.setdefault(c.key, {})[version] = c
        rows, disp = [], []
        for key, c in first.items():
            row, shown = {"quantity": c.label, "paper": c.paper}, {"quantity": c.label, "paper": num(c.paper, c.spec)}
            for v in per_torch:
                got = cells[key].get(v, Cell(key, c.label, NAN, NAN, c.spec))
                row.update({f"torch {v}": got.ours, f"torch {v}_lo": got.lo, f"torch {v}_hi": got.hi})
                shown[f"torch {v}"] = ci(got.ours, got.lo, got.hi, c.spec)
            rows.append(row)
            disp.append(shown)
        notes = [f"Each torch version's cells come from its own runs of profile {ctx.profile} (machine_info.torch), "
                 "with their 95 % interval [lo, hi] as in the headline. Empty: not in that version's runs."]
        return cls.make(ctx, pd.DataFrame(rows), pd.DataFrame(disp), notes)

    def sentences(self) -> list[str]:
        cols = [c for c in self.data.columns if c.startswith("torch ") and not c.endswith(("_lo", "_hi"))]
        spread = []
        for _, r in self.data.iterrows():
            v = pd.Series([r[c] for c in cols], dtype=float).dropna()
            if len(v) > 1 and v.abs().max() > 0:
                spread.append(((v.max() - v.min()) / v.abs().max(), r["quantity"], v.min(), v.max()))
        if not spread:
            return ["No headline cell is present under more than one torch version."]
        rel, q, lo, hi = max(spread)
        return [f"Across {len(cols)} torch versions the headline cells differ most in \"{q}\" "
                f"({num(lo)} to {num(hi)}, {rel * 100:.1f}% of the larger)."]
