"""The comparison grid: method × dataset × removal size (cost, speedup over naive retraining, quality, d)."""

from __future__ import annotations

import pandas as pd

from ..common import (
    NAN,
    SECONDS,
    col,
    is_false,
    is_true,
    method_key,
    missing,
    num,
    quality_metric,
    select,
    shown,
    stats,
    summary_columns,
)
from .base import D_NOTE, INTERVAL_NOTE, RELABEL_COST, Cell, Context, Table

MEASURES = ("seconds", "samples_processed", "speedup_vs_naive", "quality", "d")
NOTE = ("mean [95 % CI] over seeds (n). speedup vs naive: naive retraining's seconds / the method's on the "
        "same forget set, only over the records where neither side stopped at its epoch cap (a capped run's "
        "seconds measure the cap, not convergence); hit cap: records (of n) where the method or its oracle "
        "stopped at the cap. quality: test accuracy (%) for classification; MSE for regression (test MSE, "
        "or train MSE where the dataset has no test set). optimizer/lr: the relabeling optimizer for "
        "random_relabel, else the training optimizer. Cost: seconds (wall time of the unlearning operation) and "
        "samples processed (rows through a training step). " + RELABEL_COST + " " + D_NOTE)


def _configs(sm: pd.DataFrame) -> list[tuple[str, float]]:
    """The (optimizer, lr) pairs one method ran with, by optimizer, then largest lr first."""
    pairs = zip(sm["optimizer"].fillna(""), col(sm, "lr").fillna(NAN), strict=True)
    return sorted({(str(o), float(lr)) for o, lr in pairs}, key=lambda c: (c[0], -c[1] if not missing(c[1]) else 0))


def _cell(sm: pd.DataFrame, size: float, opt: str, lr: float, quality: tuple) -> tuple[dict, pd.DataFrame]:
    """The means, sds and intervals of one grid cell (method, dataset, size, optimizer, lr) and its records."""
    cell = sm[(sm["removal_size"] == size) & (sm["optimizer"].fillna("") == opt)]
    cell = cell[col(cell, "lr") == lr] if not missing(lr) else cell
    qkey, _, qscale = quality
    capped = capped_rows(cell)
    row = {"hit_cap": int(capped.sum())}
    for key in MEASURES:
        if key == "quality":
            row.update(summary_columns(key, col(cell, qkey) if qkey else pd.Series(dtype=float), key=qkey or None,
                                       scale=qscale))
        else:
            values = col(cell, key)
            row.update(summary_columns(key, values[~capped] if key == "speedup_vs_naive" else values))
    return row, cell


def capped_rows(cell: pd.DataFrame) -> pd.Series:
    """Records whose method hit its epoch cap, or whose oracle did not converge (a boolean per row)."""
    hit = cell["hit_cap"] if "hit_cap" in cell else pd.Series(False, index=cell.index)
    oracle = cell["oracle_converged"] if "oracle_converged" in cell else pd.Series(True, index=cell.index)
    return is_true(hit) | is_false(oracle)


class Grid(Table):
    name = "grid"
    title = "Comparison grid: method × dataset × removal size"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Grid | None:
        sub = select(df, "grid", "grid")
        if sub.empty:
            return None
        methods = sorted(sub["method"].dropna().unique(), key=method_key)
        rows, notes = [], []
        for ds in sorted(sub["dataset"].dropna().unique()):
            cls.dataset_rows(sub[sub["dataset"] == ds], ds, methods, rows, notes)
        data = pd.DataFrame(rows)
        for c in ("hit_cap", *(f"{key}{part}" for key in MEASURES for part in ("", "_sd", "_lo", "_hi"))):
            if c not in data.columns:       # a dataset whose methods all lack records
                data[c] = NAN
        return cls.make(ctx, data, cls.show(data), [*notes, NOTE, INTERVAL_NOTE])

    @staticmethod
    def dataset_rows(sd_: pd.DataFrame, ds: str, methods: list[str], rows: list[dict], notes: list[str]) -> None:
        """Append one dataset's rows (every method × size × config) and the notes on its empty cells."""
        quality = quality_metric(sd_)
        sizes = sorted(col(sd_, "removal_size").dropna().unique())
        for method in methods:
            sm = sd_[sd_["method"] == method]
            base = {"dataset": ds, "method": method}
            if sm.empty:
                rows.append({**base, "optimizer": "", "lr": NAN, "removal_size": NAN, "n": 0, "metric": quality[1]})
                notes.append(f"{method} on {ds}: no records (the method does not apply there or was not run; "
                             "the benchmark lists such cases as skipped): empty cells.")
                continue
            for size in sizes:
                for opt, lr in _configs(sm):
                    measured, cell = _cell(sm, size, opt, lr, quality)
                    rows.append({**base, "optimizer": opt, "lr": lr, "removal_size": size, "n": len(cell),
                                 "metric": quality[1], **measured})
                    if cell.empty:
                        notes.append(f"{method} ({opt}, lr {num(lr, 'g')}) on {ds} at n={num(size, 'int')}: "
                                     "not run, empty cells.")

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        return shown(d, (
            ("dataset", "dataset"), ("method", "method"), ("optimizer", "optimizer"), ("lr", "lr", "g"),
            ("removal size", "removal_size", "int"), ("n", "n", "int"), ("hit cap", "hit_cap", "int"),
            ("seconds", "seconds", f"[{SECONDS}]"), ("samples processed", "samples_processed", "[.6g]"),
            ("speedup vs naive (> 1: faster)", "speedup_vs_naive", "[.3g]"), ("quality metric", "metric"),
            ("quality", "quality", "[.4g]"), ("d (higher is better)", "d", "[.4g]")))

    def sentences(self) -> list[str]:
        s = []
        for ds, g in self.data.groupby("dataset", sort=True):
            parts, capped = [], []
            for (method, opt, lr), h in g.groupby(["method", "optimizer", "lr"], sort=False, dropna=False):
                if method == "naive_retrain":
                    continue
                lab = method if method != "random_relabel" else f"{method} ({opt}, lr {num(lr, 'g')})"
                if h["speedup_vs_naive"].isna().all():
                    if h["hit_cap"].sum() > 0:
                        capped.append(lab)
                    continue
                parts.append(f"{lab} ×{num(stats(h['speedup_vs_naive'])[0], '.3g')}")
            if parts:
                s.append(f"{ds}: mean speedup over naive retraining across removal sizes: {', '.join(parts)}.")
            if capped:
                s.append(f"{ds}: no speedup for {', '.join(capped)}: in every cell the method or its oracle stopped "
                         "at the epoch cap, so their seconds measure the cap, not convergence.")
        return s

    def cells(self, extended: bool = False) -> list[Cell]:
        if not extended:
            return []
        return [Cell(f"grid_{ds}_{method}_speedup", f"grid {ds}: {method} mean speedup vs naive", NAN,
                     stats(s["speedup_vs_naive"])[0], ".3g")
                for (ds, method), s in self.data.groupby(["dataset", "method"], sort=False)
                if method != "naive_retrain"]
