"""Forgetting quality: method × dataset × forget regime × removal size (utility, MIA gap, loss AUC,
JS to the oracle, forget quality F beside its ceiling, cost, RTE) and, per method, whether it forgot."""

from __future__ import annotations

import pandas as pd

from ..common import NAN, SECONDS, col, method_key, missing, num, nums, select, stats
from .base import Cell, Context, Table

# A method forgot on a cell when its F reaches this share of the ceiling (naive retraining's
# own F against the reference group) while the no-op floor's does not. Where the no-op
# reaches it too, the metrics cannot tell forgetting from doing nothing on that forget set.
FORGOT_FRACTION = 0.5
MEASURES = ("utility", "forget_utility", "mia_gap", "loss_auc", "loss_auc_oracle", "js_to_oracle", "forget_quality",
            "forget_quality_ceiling", "forget_quality_normalised", "unlearn_score", "tow", "seconds", "rte")
NOTE = ("Each record is a mean over N models (column N) trained from N seeds; cells average the records of a "
        "cell. utility: test accuracy (%) for classification, test MSE for regression; forget: the same on the "
        "forget set with the labels the original trained on (canaries: the wrong ones). MIA gap: |MIA-efficacy "
        "of the method − of naive retraining| (SVC on the confidence, the loss for regression; 0 is best). loss "
        "AUC: ROC AUC of −loss separating forget from test points (oracle's in brackets; the closer to it the "
        "better). JS: Jensen–Shannon divergence to naive retraining from the same original on the forget set, "
        "nats (0 is best; classification only). F: NeurIPS 2023 challenge forget quality against N retrained "
        "reference models; ceiling: F of a second retrained group (naive retraining) at the same N, the most a "
        "method can score given sampling noise; F / ceiling: 1 is as good as retraining. RTE: naive retraining "
        "seconds / the method's (> 1: faster than retraining; empty for the no-op: zero cost).")


CELL = ["dataset", "regime", "removal_size"]     # one cell of the audit, across methods


def cost(g: pd.DataFrame, naive: pd.Series) -> str:
    """One method's cost in words, from its cells `g`: seconds per model (the cheapest and dearest dataset's mean) and
    the median over cells of its seconds / naive retraining's on the same cell ("" where no cell has seconds)."""
    per_dataset = g.groupby("dataset")["seconds"].mean().dropna()
    if per_dataset.empty:
        return ""
    lo, hi = per_dataset.idxmin(), per_dataset.idxmax()
    seconds = (f"{num(per_dataset[lo], SECONDS)} s per model" if per_dataset[lo] == per_dataset[hi] else
               f"{num(per_dataset[lo], SECONDS)} s ({lo}) to {num(per_dataset[hi], SECONDS)} s ({hi}) per model")
    ref = pd.Series([naive.get(tuple(k), NAN) for k in g[CELL].itertuples(index=False)], index=g.index, dtype=float)
    ratio = (g["seconds"] / ref.where(ref > 0)).dropna()
    times = f", {num(ratio.median(), '.2g')} × naive retraining's time (median over cells)" if len(ratio) else ""
    return f"; cost {seconds}{times}"


def verdict(normalised: float, noop_normalised: float) -> str:
    """`forgot`, `did not forget`, or `cannot tell` (the no-op scores as well) for one cell."""
    if missing(normalised):
        return ""
    if not missing(noop_normalised) and noop_normalised >= FORGOT_FRACTION:
        return "cannot tell"
    return "forgot" if normalised >= FORGOT_FRACTION else "did not forget"


def _utility(cell: pd.DataFrame, part: str) -> pd.Series:
    acc = col(cell, f"{part}_acc")
    return acc * 100 if acc.notna().any() else col(cell, f"{part}_mse")


class Forgetting(Table):
    name = "forgetting"
    title = "Forgetting quality: method × dataset × forget regime × removal size"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Forgetting | None:
        sub = select(df, "forgetting", "forgetting")
        if sub.empty:
            return None
        rows = []
        keys = ["dataset", "forget_regime", "removal_size", "method"]
        for (ds, regime, size, method), cell in sub.groupby(keys, sort=False, dropna=False):
            row = {"dataset": ds, "regime": regime, "removal_size": size, "method": method, "n": len(cell),
                   "n_models": stats(col(cell, "n_models"))[0], "epsilon_cap": stats(col(cell, "epsilon_cap"))[0],
                   "utility": stats(_utility(cell, "test"))[0], "forget_utility": stats(_utility(cell, "forget"))[0]}
            row.update({k: stats(col(cell, k))[0] for k in MEASURES if k not in row})
            rows.append(row)
        data = pd.DataFrame(rows)
        data = data.iloc[sorted(range(len(data)), key=lambda i: (
            data["dataset"].iloc[i], data["regime"].iloc[i], data["removal_size"].iloc[i],
            method_key(data["method"].iloc[i])))]
        data["verdict"] = cls.verdicts(data)
        return cls.make(ctx, data, cls.show(data), [NOTE, f"verdict: forgot when F / ceiling ≥ {FORGOT_FRACTION} "
                                                          "and the no-op's is not; cannot tell when the no-op's is."])

    @staticmethod
    def verdicts(data: pd.DataFrame) -> list[str]:
        noop = {(r["dataset"], r["regime"], r["removal_size"]): r["forget_quality_normalised"]
                for _, r in data[data["method"] == "noop"].iterrows()}
        return ["" if r["method"] == "naive_retrain" else
                verdict(r["forget_quality_normalised"], noop.get((r["dataset"], r["regime"], r["removal_size"]), NAN))
                for _, r in data.iterrows()]

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "dataset": d["dataset"], "regime": d["regime"], "removal size": nums(d["removal_size"], "int"),
            "method": d["method"], "N": nums(d["n_models"], "int"), "utility": nums(d["utility"], ".4g"),
            "forget": nums(d["forget_utility"], ".4g"), "MIA gap": nums(d["mia_gap"], ".3f"),
            "loss AUC (oracle)": [f"{num(a, '.3f')} ({num(o, '.3f')})"
                                  for a, o in zip(d["loss_auc"], d["loss_auc_oracle"], strict=True)],
            "JS": nums(d["js_to_oracle"], ".3g"),
            "F (ceiling)": [f"{num(f, '.3f')} ({num(c, '.3f')})"
                            for f, c in zip(d["forget_quality"], d["forget_quality_ceiling"], strict=True)],
            "F / ceiling (higher is better)": nums(d["forget_quality_normalised"], ".2f"),
            "ε cap": nums(d["epsilon_cap"], "int"),
            "score": nums(d["unlearn_score"], ".3f"), "seconds": nums(d["seconds"], SECONDS),
            "RTE (> 1: faster)": nums(d["rte"], ".3g"), "verdict": d["verdict"],
        })

    def sentences(self) -> list[str]:
        out = []
        naive = self.data[self.data["method"] == "naive_retrain"].set_index(CELL)["seconds"]
        for method, g in self.data.groupby("method", sort=False):
            if method == "naive_retrain":
                continue
            counts = g["verdict"].value_counts()
            parts = [f"{counts.get(v, 0)} {v}" for v in ("forgot", "did not forget", "cannot tell") if counts.get(v)]
            canaries = g[g["regime"] == "canaries"]["forget_quality_normalised"]
            tail = (f"; mean F / ceiling on canaries {num(stats(canaries)[0], '.2f')}" if canaries.notna().any()
                    else "")
            out.append(f"{method}: {', '.join(parts) or 'no verdict'} of {len(g)} cells{tail}{cost(g, naive)}.")
        return out

    def cells(self, extended: bool = False) -> list[Cell]:
        d = self.data[(self.data["regime"] == "canaries") & (self.data["method"] != "naive_retrain")]
        return [Cell(f"forgetting_{m}_canaries", f"forgetting: {m}, F / ceiling on canaries (1 = as retraining)",
                     NAN, stats(g["forget_quality_normalised"])[0], ".2f")
                for m, g in d.groupby("method", sort=False)]
