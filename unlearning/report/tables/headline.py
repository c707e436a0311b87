"""The README's headline (each table's key cells, paper beside ours) and those cells per torch version."""

from __future__ import annotations

import pandas as pd

from ..common import NAN, delta, num
from .base import Cell, Context, Table


class Headline(Table):
    name = "headline"
    title = "Headline: the papers' key numbers beside ours"

    @classmethod
    def build(cls, tables: dict[str, Table], ctx: Context) -> Headline:
        cells = [c for t in tables.values() for c in t.cells()]
        data = pd.DataFrame([{"quantity": c.label, "paper": c.paper, "ours": c.ours, "delta": delta(c.ours, c.paper)}
                             for c in cells], columns=["quantity", "paper", "ours", "delta"])
        specs = [c.spec for c in cells]
        display = pd.DataFrame({"quantity": data["quantity"], **{
            label: [num(x, s) for x, s in zip(data[key], specs, strict=True)]
            for key, label in (("paper", "paper"), ("ours", "ours"), ("delta", "Δ"))}})
        notes = ["Empty: not in this run."] if data["ours"].isna().any() else []
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
        values: dict[str, dict[str, float]] = {}
        for version, tables in per_torch.items():
            for c in (c for t in tables.values() for c in t.cells(extended=True)):
                first.setdefault(c.key, c)
                values.setdefault(c.key, {})[version] = c.ours
        rows, disp = [], []
        for key, c in first.items():
            ours = {f"torch {v}": values[key].get(v, NAN) for v in per_torch}
            rows.append({"quantity": c.label, "paper": c.paper, **ours})
            disp.append({"quantity": c.label, "paper": num(c.paper, c.spec),
                         **{name: num(x, c.spec) for name, x in ours.items()}})
        notes = [f"Each torch version's cells come from its own runs of profile {ctx.profile} (machine_info.torch). "
                 "Empty: not in that version's runs."]
        return cls.make(ctx, pd.DataFrame(rows), pd.DataFrame(disp), notes)

    def sentences(self) -> list[str]:
        cols = [c for c in self.data.columns if c.startswith("torch ")]
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
