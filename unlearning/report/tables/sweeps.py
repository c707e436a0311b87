"""The trade-off sweeps: paper 002's relabel lr on full MNIST (`RelabelLr`) and, on the forgetting
audit's panels, each swept knob against utility and forgetting (`Tradeoff`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .. import paper as P
from ..common import NAN, SECONDS, col, num, nums, pm, select, stats
from .base import RELABEL_COST, Cell, Context, Table
from .forgetting import FORGOT_FRACTION, _utility

# The paper's Table 1: relabel 600 loses this many points of test accuracy against the original.
_P002 = {(m, n): test for m, n, test, _, _ in P.P002_TABLE1}
PAPER_DROP = _P002[("random_relabel", 600)] - _P002[("original", 0)]
# knob record key -> (label, the method it belongs to, the preset's value: the main cells' records)
KNOBS = {"lr": ("relabel lr", "random_relabel", 1e-3), "threshold_scale": ("threshold ×", "weight_pruning", 1.0)}
LR_NOTE = ("Random relabeling (AdaDelta) at each lr on the largest Table 1 forget set of each seed, from the Table 1 "
           "originals; the oracle is the Table 1 naive retraining of the same seed. Δ test: points of test accuracy "
           "against those original models' mean; the paper's relabel 600 row loses {drop} points. MIA gap: "
           "|MIA-efficacy − the oracle's| (0 is best); loss AUC: forget vs test points (the oracle's in brackets); "
           "JS to the oracle on the forget set (nats, 0 is best). F / ceiling: per-example ε over N models needs one "
           "forget set across models; it comes from the forgetting audit's MNIST subset panels at the same lr (table "
           "`tradeoff`), per regime.")
TRADEOFF_NOTE = ("Each row: one method at one value of its knob on one forgetting panel (N models; means over them). "
                 "The preset's value (relabel lr 1e-3, threshold × 1) is the main forgetting table's record of the "
                 "same panel. utility / forget: test and forget-set accuracy (%) or MSE; F / ceiling: 1 is as good as "
                 "retraining (higher is better). epochs: training epochs of the operation. " + RELABEL_COST)


def knob_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The sweep records with their knob (`knob`, `value`), and the main table's preset records of the same
    panels as the preset value's row."""
    sweep = select(df, "forgetting", "forgetting_sweep")
    if sweep.empty:
        return sweep
    frames, main = [], select(df, "forgetting", "forgetting")
    for knob, (_, method, preset) in KNOBS.items():
        rows = sweep[(sweep["method"] == method) & col(sweep, knob).notna()]
        if rows.empty:
            continue
        panels = set(zip(rows["dataset"], rows["forget_regime"], col(rows, "removal_size"), strict=True))
        cells = zip(main["dataset"], main["forget_regime"], col(main, "removal_size"), strict=True)
        same = pd.Series([p in panels for p in cells], index=main.index, dtype=bool)
        frames.append(rows.assign(knob=knob, value=col(rows, knob)))
        frames.append(main[(main["method"] == method) & same].assign(knob=knob, value=preset))
    return pd.concat(frames, ignore_index=True) if frames else sweep.iloc[0:0]


class Tradeoff(Table):
    name = "tradeoff"
    title = "Trade-off sweeps: each method's knob against utility and forgetting"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Tradeoff | None:
        sub = knob_rows(df)
        if sub.empty:
            return None
        rows = []
        for (knob, ds, regime, size, value), g in sub.groupby(
                ["knob", "dataset", "forget_regime", "removal_size", "value"], sort=True):
            rows.append({"method": KNOBS[knob][1], "knob": knob, "dataset": ds, "regime": regime,
                         "removal_size": size, "value": value, "n_models": stats(col(g, "n_models"))[0],
                         "utility": stats(_utility(g, "test"))[0], "forget_utility": stats(_utility(g, "forget"))[0],
                         **{k: stats(col(g, k))[0] for k in ("mia_gap", "js_to_oracle", "forget_quality_normalised",
                                                              "seconds", "epochs", "weights_zeroed")}})
        data = pd.DataFrame(rows)
        display = pd.DataFrame({
            "method": data["method"], "knob": [KNOBS[k][0] for k in data["knob"]],
            "value": nums(data["value"], "g"), "dataset": data["dataset"], "regime": data["regime"],
            "removal size": nums(data["removal_size"], "int"), "N": nums(data["n_models"], "int"),
            "utility": nums(data["utility"], ".4g"), "forget": nums(data["forget_utility"], ".4g"),
            "MIA gap": nums(data["mia_gap"], ".3f"), "JS": nums(data["js_to_oracle"], ".3g"),
            "F / ceiling (higher is better)": nums(data["forget_quality_normalised"], ".2f"),
            "weights zeroed": nums(data["weights_zeroed"], "sig3"), "epochs": nums(data["epochs"], "sig3"),
            "seconds": nums(data["seconds"], SECONDS)})
        return cls.make(ctx, data, display, [TRADEOFF_NOTE])

    def sentences(self) -> list[str]:
        out = []
        for (method, ds, regime), g in self.data.groupby(["method", "dataset", "regime"], sort=False):
            g = g.sort_values("value")
            best = g.loc[g["forget_quality_normalised"].idxmax()] if g["forget_quality_normalised"].notna().any() \
                else None
            if best is None:
                continue
            label = KNOBS[g["knob"].iloc[0]][0]
            f = g["forget_quality_normalised"]
            reached = "reaches" if best["forget_quality_normalised"] >= FORGOT_FRACTION else "stays below"
            out.append(f"{method} on {ds} ({regime}): F / ceiling {num(f.iloc[0], '.2f')} at {label} "
                       f"{num(g['value'].iloc[0], 'g')}, {num(f.iloc[-1], '.2f')} at {num(g['value'].iloc[-1], 'g')}; "
                       f"best {num(best['forget_quality_normalised'], '.2f')} at {num(best['value'], 'g')} (utility "
                       f"{num(best['utility'], '.4g')}), which {reached} {FORGOT_FRACTION}.")
        return out


@dataclass
class RelabelLr(Table):
    name = "paper002_lr_sweep"
    title = "Paper 002's open question: random relabeling's lr at the largest removal size, full MNIST"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> RelabelLr | None:
        sub = select(df, "002", "lr_sweep")
        if sub.empty:
            return None
        # Δ against the swept models' own originals; records made before that key existed use Table 1's
        base = stats(col(sub, "control_test_acc"))[0] * 100
        if pd.isna(base):
            original = select(df, "002", "table1")
            base = stats(col(original[original["method"] == "original"], "test_acc"))[0] * 100
        panel = knob_rows(df)
        panel = panel[(panel["knob"] == "lr") & (panel["dataset"] == "mnist")] if not panel.empty else panel
        rows = []
        for (lr, size), g in sub.groupby([col(sub, "lr"), col(sub, "removal_size")], sort=True):
            test, test_sd, n = stats(col(g, "test_acc") * 100)
            row = {"lr": lr, "removal_size": size, "n": n, "test_acc": test, "test_acc_sd": test_sd,
                   "delta_test": test - base, "forget_acc": stats(col(g, "forget_acc") * 100)[0],
                   **{k: stats(col(g, k))[0] for k in ("mia_efficacy", "mia_efficacy_oracle", "mia_gap", "loss_auc",
                                                        "loss_auc_oracle", "js_to_oracle", "seconds")}}
            for regime, pg in (panel.groupby("forget_regime") if not panel.empty else []):
                row[f"f_normalised_{regime}"] = stats(col(pg[pg["value"] == lr], "forget_quality_normalised"))[0]
            rows.append(row)
        data = pd.DataFrame(rows)
        regimes = sorted(c.removeprefix("f_normalised_") for c in data.columns if c.startswith("f_normalised_"))
        display = pd.DataFrame({
            "lr": nums(data["lr"], "g"), "removal size": nums(data["removal_size"], "int"), "n": nums(data["n"], "int"),
            "test acc (%)": [pm(a, b, ".2f") for a, b in zip(data["test_acc"], data["test_acc_sd"], strict=True)],
            "Δ test": nums(data["delta_test"], "+.2f"), "forget acc (%)": nums(data["forget_acc"], ".2f"),
            "MIA (oracle)": [f"{num(a, '.3f')} ({num(o, '.3f')})"
                             for a, o in zip(data["mia_efficacy"], data["mia_efficacy_oracle"], strict=True)],
            "MIA gap": nums(data["mia_gap"], ".3f"),
            "loss AUC (oracle)": [f"{num(a, '.3f')} ({num(o, '.3f')})"
                                  for a, o in zip(data["loss_auc"], data["loss_auc_oracle"], strict=True)],
            "JS": nums(data["js_to_oracle"], ".3g"),
            **{f"F / ceiling ({r}, subset; higher is better)": nums(data[f"f_normalised_{r}"], ".2f")
               for r in regimes},
            "seconds": nums(data["seconds"], SECONDS)})
        return cls.make(ctx, data, display, [LR_NOTE.format(drop=num(PAPER_DROP, '.2f'))], base=base)

    base: float = NAN         # the original models' mean test accuracy (%), what Δ test is against

    def closest(self) -> pd.Series | None:
        """The swept lr whose test-accuracy drop is closest to the paper's."""
        d = self.data.dropna(subset=["delta_test"])
        return None if d.empty else d.loc[(d["delta_test"] - PAPER_DROP).abs().idxmin()]

    def sentences(self) -> list[str]:
        best = self.closest()
        if best is None:
            return []
        lrs = self.data["lr"]
        out = [f"The original models' test accuracy is {num(self.base, '.2f')} %. Across lr {num(lrs.min(), 'g')}–"
               f"{num(lrs.max(), 'g')}, {num(best['removal_size'], 'int')} relabel requests change it by "
               f"{num(self.data['delta_test'].max(), '+.2f')} to "
               f"{num(self.data['delta_test'].min(), '+.2f')} points.",
               f"The paper's {num(PAPER_DROP, '+.2f')} points are closest at lr {num(best['lr'], 'g')} "
               f"({num(best['delta_test'], '+.2f')}; test {num(best['test_acc'], '.2f')} %, forget set "
               f"{num(best['forget_acc'], '.2f')} %). There the MIA gap to naive retraining is "
               f"{num(best['mia_gap'], '.3f')}, the loss AUC {num(best['loss_auc'], '.3f')} (oracle "
               f"{num(best['loss_auc_oracle'], '.3f')}) and JS to the oracle {num(best['js_to_oracle'], '.3g')} nats."]
        cols = sorted(c for c in self.data.columns if c.startswith("f_normalised_"))
        swept = self.data.dropna(subset=cols, how="all") if cols else self.data.iloc[0:0]
        if not swept.empty:        # the subset panels' F at that lr, else at the swept lrs on either side of it
            lo, hi = swept[swept["lr"] <= best["lr"]].tail(1), swept[swept["lr"] >= best["lr"]].head(1)
            near = pd.concat([lo, hi]).drop_duplicates(subset="lr")
            where = "at that lr" if len(near) == 1 and near["lr"].iloc[0] == best["lr"] else \
                "at the swept lrs around it (" + ", ".join(num(v, "g") for v in near["lr"]) + ")"
            out.append(f"On the MNIST subset panels (N models, F needs one forget set) {where}, F / ceiling is "
                       + "; ".join(f"{c.removeprefix('f_normalised_')} " + " → ".join(num(v, ".2f") for v in near[c])
                                   for c in cols) + ".")
        return out

    def cells(self, extended: bool = False) -> list[Cell]:
        best = self.closest()
        if best is None:
            return []
        return [Cell("relabel_lr_paper_drop", "paper 002: the relabel lr whose test drop is nearest the paper's",
                     NAN, best["lr"], "g"),
                Cell("relabel_lr_paper_drop_delta", "paper 002: that lr's test-accuracy change (points)",
                     PAPER_DROP, best["delta_test"], "+.2f")]
