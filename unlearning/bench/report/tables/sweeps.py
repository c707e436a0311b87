"""The trade-off sweeps: paper 002's relabel lr on full MNIST (`RelabelLr`) and, on the forgetting
audit's panels, each swept knob against utility and forgetting (`Tradeoff`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .. import paper as P
from ..common import NAN, PRESET, SECONDS, ci, col, covers, num, select, settings_of, shown, stats, summary_columns
from .base import INTERVAL_NOTE, RELABEL_COST, Cell, Context, Table
from .forgetting import _utility

# The paper's Table 1: relabel 600 loses this many points of test accuracy against the original.
_P002 = {(m, n): test for m, n, test, _, _ in P.P002_TABLE1}
PAPER_DROP = _P002[("random_relabel", 600)] - _P002[("original", 0)]
# knob record key -> (label, the method it belongs to, the preset's value: the main cells' records)
KNOBS = {"lr": ("relabel lr", "random_relabel", 1e-3), "threshold_scale": ("threshold ×", "weight_pruning", 1.0)}
LR_NOTE = ("Random relabeling (AdaDelta) at each lr on the largest Table 1 forget set of each seed, from the Table 1 "
           "originals; the oracle is the Table 1 naive retraining of the same seed. Every number: mean [95 % CI] over "
           "the n seeds. Δ test: points of test accuracy against each seed's own original model (records without "
           "it: against the originals' mean); the paper's relabel 600 row loses {drop} points. MIA-efficacy: SalUn's, "
           "an SVC on the confidence at its own threshold (the oracle's beside it); MIA gap: |MIA-efficacy − the "
           "oracle's| (0 is best); loss AUC: the threshold-free attack, ROC AUC of −loss separating forget from test "
           "points (0.5: cannot tell them apart; the oracle's beside it). JS to the oracle on the forget set (nats, 0 "
           "is best). F / ceiling: per-example ε over N models needs one forget set across models; it comes from the "
           "forgetting audit's MNIST subset panels at the same lr (table `tradeoff`, one record each: no interval), "
           "per regime.")
TRADEOFF_NOTE = ("Each row: one method at one value of its knob on one forgetting panel (N models; means over them), "
                 "averaged over its n records with their 95 % CI [lo, hi]; a record keeps only its N models' means "
                 "(no per-model MIA or AUC), so a row of one record has no interval. The preset's value (relabel lr "
                 "1e-3, threshold × 1) is the main forgetting table's record of the same panel. utility / forget: test "
                 "and forget-set accuracy (%) or MSE; MIA gap: |MIA-efficacy − naive retraining's| (SalUn's SVC "
                 "attack, 0 is best); loss AUC: the threshold-free attack, ROC AUC of −loss separating forget from "
                 "test points (naive retraining's beside it; the closer the better); F / ceiling: 1 is as good as "
                 "retraining (higher is better). verdict: the record's own (`unlearning.evaluation.verdict`, "
                 "this panel alone, p not adjusted across cells: the forgetting table's are; memorised: forget "
                 "points more confident than under retraining, over-forgot: less, shifted everywhere: the whole "
                 "model moved; the forgetting table's notes say every label). epochs: training epochs of the "
                 "operation. " + RELABEL_COST)
TRADEOFF_MEASURES = ("n_models", "mia_gap", "loss_auc", "loss_auc_oracle", "js_to_oracle", "forget_quality_normalised",
                     "seconds", "epochs", "weights_zeroed")
LR_MEASURES = ("forget_acc", "mia_efficacy", "mia_efficacy_oracle", "mia_gap", "loss_auc", "loss_auc_oracle",
               "js_to_oracle", "seconds")


def _one_verdict(g: pd.DataFrame) -> str:
    """The records' verdict (`unlearning.evaluation.verdict`, this panel alone, unadjusted); `mixed` where they
    differ."""
    found = set(col(g, "verdict").dropna())
    return "" if not found else found.pop() if len(found) == 1 else "mixed"


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
        preset_rows = (main["method"] == method) & (settings_of(main) == PRESET)      # a tuned cell is not the preset
        frames.append(main[preset_rows & same].assign(knob=knob, value=preset))
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
                         "removal_size": size, "value": value, "n": len(g),
                         **summary_columns("utility", _utility(g, "test")),
                         **summary_columns("forget_utility", _utility(g, "forget")),
                         **{c: v for k in TRADEOFF_MEASURES for c, v in summary_columns(k, col(g, k)).items()},
                         "p_value": col(g, "p_value").max(), "verdict": _one_verdict(g)})
        data = pd.DataFrame(rows)
        return cls.make(ctx, data, cls.show(data), [TRADEOFF_NOTE, INTERVAL_NOTE])

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        return shown(d, (
            ("method", "method"), ("knob", [KNOBS[k][0] for k in d["knob"]]), ("value", "value", "g"),
            ("dataset", "dataset"), ("regime", "regime"), ("removal size", "removal_size", "int"), ("n", "n", "int"),
            ("N", "n_models", "[int]"), ("utility", "utility", "[.4g]"), ("forget", "forget_utility", "[.4g]"),
            ("MIA gap", "mia_gap", "[.3f]"), ("loss AUC", "loss_auc", "[.3f]"),
            ("loss AUC (oracle)", "loss_auc_oracle", "[.3f]"), ("JS", "js_to_oracle", "[.3g]"),
            ("F / ceiling (higher is better)", "forget_quality_normalised", "[.2f]"),
            ("weights zeroed", "weights_zeroed", "[sig3]"), ("epochs", "epochs", "[sig3]"),
            ("seconds", "seconds", f"[{SECONDS}]"), ("p", "p_value", ".3g"), ("verdict", "verdict")))

    def sentences(self) -> list[str]:
        out = []
        for (method, ds, regime), g in self.data.groupby(["method", "dataset", "regime"], sort=False):
            g, f = g.sort_values("value"), g.sort_values("value")["forget_quality_normalised"]
            if f.isna().all():
                continue
            best, label = g.loc[f.idxmax()], KNOBS[g["knob"].iloc[0]][0]
            verdict = f"; its verdict on this panel alone: {best['verdict']}" if best["verdict"] else ""
            out.append(f"{method} on {ds} ({regime}): F / ceiling {num(f.iloc[0], '.2f')} at {label} "
                       f"{num(g['value'].iloc[0], 'g')}, {num(f.iloc[-1], '.2f')} at {num(g['value'].iloc[-1], 'g')}; "
                       f"best {num(best['forget_quality_normalised'], '.2f')} at {num(best['value'], 'g')} (utility "
                       f"{num(best['utility'], '.4g')}{verdict}).")
        return out


@dataclass
class RelabelLr(Table):
    name = "paper002_lr_sweep"
    PAPER = True
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
        data = pd.DataFrame([cls.row(lr, size, g, base, panel) for (lr, size), g in
                             sub.groupby([col(sub, "lr"), col(sub, "removal_size")], sort=True)])
        return cls.make(ctx, data, cls.show(data), [LR_NOTE.format(drop=num(PAPER_DROP, '.2f')), INTERVAL_NOTE],
                        base=base)

    @staticmethod
    def row(lr: float, size: float, g: pd.DataFrame, base: float, panel: pd.DataFrame) -> dict:
        """One swept lr: the seeds' means with their intervals, and the subset panels' F / ceiling at that lr."""
        test = col(g, "test_acc") * 100
        row = {"lr": lr, "removal_size": size, "n": int(test.notna().sum()),
               **summary_columns("test_acc", col(g, "test_acc"), scale=100),
               **summary_columns("delta_test", test - (col(g, "control_test_acc") * 100).fillna(base), sd=False),
               **{c: v for k in LR_MEASURES for c, v in
                  summary_columns(k, col(g, k), sd=False, scale=100 if k == "forget_acc" else 1).items()}}
        for regime, pg in (panel.groupby("forget_regime") if not panel.empty else []):
            f = col(pg[pg["value"] == lr], "forget_quality_normalised")
            row.update(summary_columns(f"f_normalised_{regime}", f, sd=False, key="forget_quality_normalised"))
        return row

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        regimes = sorted(c.removeprefix("f_normalised_") for c in d.columns
                         if c.startswith("f_normalised_") and not c.endswith(("_lo", "_hi")))
        return shown(d, (
            ("lr", "lr", "g"), ("removal size", "removal_size", "int"), ("n", "n", "int"),
            ("test acc (%)", "test_acc", "[.2f]"), ("Δ test", "delta_test", "[+.2f]"),
            ("forget acc (%)", "forget_acc", "[.2f]"), ("MIA-efficacy", "mia_efficacy", "[.3f]"),
            ("MIA-efficacy (oracle)", "mia_efficacy_oracle", "[.3f]"), ("MIA gap", "mia_gap", "[.3f]"),
            ("loss AUC (threshold-free)", "loss_auc", "[.3f]"), ("loss AUC (oracle)", "loss_auc_oracle", "[.3f]"),
            ("JS", "js_to_oracle", "[.3g]"),
            *((f"F / ceiling ({r}, subset; higher is better)", f"f_normalised_{r}", "[.2f]") for r in regimes),
            ("seconds", "seconds", f"[{SECONDS}]")))

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
        def at(key: str, spec: str) -> str:
            return ci(best[key], best[f"{key}_lo"], best[f"{key}_hi"], spec)
        inside = covers(best["delta_test_lo"], best["delta_test_hi"], PAPER_DROP)
        inside = f"; the paper's lies {'inside' if inside == 'yes' else 'outside'} our 95 % CI" if inside else ""
        out = [f"The original models' test accuracy is {num(self.base, '.2f')} %. Across lr {num(lrs.min(), 'g')}–"
               f"{num(lrs.max(), 'g')}, {num(best['removal_size'], 'int')} relabel requests change it by "
               f"{num(self.data['delta_test'].max(), '+.2f')} to "
               f"{num(self.data['delta_test'].min(), '+.2f')} points.",
               f"The paper's {num(PAPER_DROP, '+.2f')} points are closest at lr {num(best['lr'], 'g')} "
               f"({at('delta_test', '+.2f')} over {num(best['n'], 'int')} seeds{inside}; test "
               f"{at('test_acc', '.2f')} %, forget set {at('forget_acc', '.2f')} %). There SalUn's MIA-efficacy "
               f"is {at('mia_efficacy', '.3f')} (oracle {at('mia_efficacy_oracle', '.3f')}; gap "
               f"{at('mia_gap', '.3f')}), the threshold-free loss AUC {at('loss_auc', '.3f')} (oracle "
               f"{at('loss_auc_oracle', '.3f')}) and JS to the oracle {at('js_to_oracle', '.3g')} nats."]
        cols = sorted(c for c in self.data.columns if c.startswith("f_normalised_") and not c.endswith(("_lo", "_hi")))
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
                     PAPER_DROP, best["delta_test"], "+.2f", best["delta_test_lo"], best["delta_test_hi"])]
