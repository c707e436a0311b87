"""Paper 000 (weight pruning): Table 1 (synthetic data) and the California housing table."""

from __future__ import annotations

import pandas as pd

from .. import paper as P
from ..common import (
    NAN,
    beside,
    col,
    compare,
    covered,
    is_false,
    is_true,
    missing,
    num,
    plural,
    ratio_interval,
    rules,
    select,
    shown,
    stats,
    summary,
    summary_columns,
    versus,
)
from .base import D_NOTE, INTERVAL_NOTE, Cell, Context, Table

M000 = {"m_r": "weight_pruning", "m_o": "naive_retrain", "finetune": "finetune"}


# -- Table 1 (synthetic) ----------------------------------------------------------------------------------
T1_OURS = {"mr_epochs": ("m_r", "epochs"), "mo_epochs": ("m_o", "epochs"), "epoch_ratio": ("m_r", "epoch_ratio"),
           "mr_acc": ("m_r", "train_acc"), "mo_acc": ("m_o", "train_acc")}
T1_EXTRA = {"finetune_epochs": ("finetune", "epochs"), "finetune_ratio": ("finetune", "epoch_ratio"),
            "weights_zeroed": ("m_r", "weights_zeroed"), "mr_d": ("m_r", "d")}
# the paper's columns as displayed: key -> (label, format)
T1_SHOWN = {"mr_epochs": ("m_r epochs", "int"), "mo_epochs": ("m_o epochs", "int"),
            "epoch_ratio": ("ratio m_r/m_o", ".4f"), "mr_acc": ("m_r acc", ".3f"), "mo_acc": ("m_o acc", ".3f")}
T1_HINTS = {"epoch_ratio": " (< 1: m_r cheaper)"}      # which way is better, on our column only
T1_IN_CI = {"mr_epochs": "m_r epochs", "mo_epochs": "m_o epochs", "epoch_ratio": "ratio", "mr_acc": "m_r acc",
            "mo_acc": "m_o acc"}
IN_CI = "paper in our 95 % CI"
T1_CELLS = (("epoch_ratio", "000 synthetic: mean epoch ratio m_r/m_o", ".4f"),
            ("mr_epochs", "000 synthetic: mean m_r epochs", ".1f"),
            ("mo_epochs", "000 synthetic: mean m_o epochs", ".1f"),
            ("mr_acc", "000 synthetic: mean m_r accuracy", ".3f"),
            ("mo_acc", "000 synthetic: mean m_o accuracy", ".3f"))


class Trials:
    """Paper 000's Table 1 records, per model (m_r, m_o, finetune) and trial."""

    def __init__(self, df: pd.DataFrame):
        self.sub = select(df, "000", "table1")
        self.ours = sorted(int(t) for t in col(self.sub, "trial").dropna().unique())
        self.all = sorted(set(self.ours) | set(P.P000_TABLE1))
        self.per = {label: self.sub[self.sub["method"] == m] for label, m in M000.items()}

    def at(self, label: str, t: int) -> pd.DataFrame:
        s = self.per[label]
        return s[s["trial"] == t]

    def value(self, label: str, key: str, t: int) -> float:
        s = self.at(label, t)
        return float(col(s, key).mean()) if not s.empty else NAN

    def flags(self, t: int, key: str) -> str:
        """The models of trial t whose record has `key` (hit_cap, collapsed) set; '' when none ran."""
        found = [label for label in self.per if not self.at(label, t).empty]
        if not found:
            return ""
        hit = [label for label in found if is_true(col(self.at(label, t), key)).any()]
        return ", ".join(hit) if hit else "none"

    def counts(self, key: str) -> str:
        """"m_r 1/4, ..." over every trial: the models with `key` set at least once."""
        counts = [f"{label} {int(is_true(col(s, key)).sum())}/{len(s)}" for label, s in self.per.items()
                  if not s.empty and is_true(col(s, key)).any()]
        return ", ".join(counts) if counts else ("none" if not self.sub.empty else "")

    def row(self, t: int) -> dict:
        paper = P.P000_TABLE1.get(t, (NAN,) * 5)
        seed = col(self.sub[self.sub["trial"] == t], "seed").dropna()
        row = {"trial": str(t), "seed": float(seed.iloc[0]) if len(seed) else NAN}
        for k, ref in zip(P.P000_TABLE1_COLUMNS, paper, strict=True):       # a trial is one value: no interval
            ours = self.value(*T1_OURS[k], t)
            row.update({k: ours, f"{k}_lo": NAN, f"{k}_hi": NAN, **beside(k, ours, NAN, NAN, ref)})
        for k, (label, key) in T1_EXTRA.items():
            row.update({k: self.value(label, key, t), f"{k}_lo": NAN, f"{k}_hi": NAN})
        row.update(hit_cap=self.flags(t, "hit_cap"), collapsed=self.flags(t, "collapsed"))
        return row

    def summary(self, data: pd.DataFrame) -> list[dict]:
        """The avg (with its 95 % interval) and sd rows over our trials (the paper's avg beside ours)."""
        ours = data[data["trial"].isin([str(t) for t in self.ours])]
        avg, sd = {"trial": "avg", "seed": NAN}, {"trial": "sd", "seed": NAN}
        for k, (_, key) in {**T1_OURS, **T1_EXTRA}.items():
            s = summary(ours[k], key)
            avg.update({k: s.mean, f"{k}_lo": s.lo, f"{k}_hi": s.hi})
            sd.update({k: s.sd, f"{k}_lo": NAN, f"{k}_hi": NAN})
        for k, ref in zip(P.P000_TABLE1_COLUMNS, P.P000_TABLE1_AVG, strict=True):
            avg.update(beside(k, avg[k], avg[f"{k}_lo"], avg[f"{k}_hi"], ref))
            sd.update({f"{k}_paper": NAN, f"{k}_delta": NAN, f"{k}_paper_in_ci": ""})
        for key in ("hit_cap", "collapsed"):
            avg[key], sd[key] = self.counts(key), ""
        return [avg, sd]

    def notes(self) -> list[str]:
        if self.sub.empty:
            return ["No paper-000 Table 1 records in the input: only the paper's numbers are shown."]
        n, papers = len(self.ours), len(P.P000_TABLE1)
        notes = [f"avg [95 % CI] / sd: over our {n} {plural(n, 'trial')}; the paper's avg is over its {papers} trials. "
                 "The ratio is m_r epochs / m_o epochs per trial, averaged like the paper's 0.5396; below 1, weight "
                 "pruning converged in fewer epochs than retraining (lower is cheaper). "
                 f"{IN_CI}: whether the paper's avg lies in the 95 % interval of our avg.", INTERVAL_NOTE]
        if beyond := [t for t in self.ours if t not in P.P000_TABLE1]:
            notes.append(f"Trial(s) {', '.join(map(str, beyond))}: the paper reports {papers} trials; no paper values.")
        if absent := [t for t in self.all if t not in self.ours]:
            notes.append(f"Trial(s) {', '.join(map(str, absent))}: not in this run; only the paper's values are shown.")
        for label, m in M000.items():
            if lacking := [t for t in self.ours if self.at(label, t).empty]:
                notes.append(f"{label} ({m}) has no record for trial(s) {', '.join(map(str, lacking))}: "
                             "its cells are empty.")
        if r := rules(self.sub):
            notes.append(f"Convergence rule: {r}. Cap hits: models stopped by the epoch cap "
                         "(their epochs are a lower bound).")
        return notes


class Paper000Table1(Table):
    name = "paper000_table1"
    PAPER = True
    title = "Paper 000, Table 1: synthetic data, epochs to convergence and accuracy"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Paper000Table1:
        trials = Trials(df)
        data = pd.DataFrame([trials.row(t) for t in trials.all])
        data = pd.concat([data, pd.DataFrame(trials.summary(data))], ignore_index=True)
        notes = [*trials.notes(),
                 "acc: `train_acc`, accuracy on the synthetic training points (the paper's 10 points). "
                 "Δ = ours − paper. finetune: the warm-start ablation (fine-tuning without pruning).", D_NOTE]
        return cls.make(ctx, data, cls.show(data), notes, not trials.sub.empty)

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        ours = ((c[0] + T1_HINTS.get(k, ""), *c[1:]) if c[1] == k else c for k, (label, spec) in T1_SHOWN.items()
                for c in versus(k, label, spec, spec if spec != ".3f" else ".2f"))
        return shown(d, (("trial", "trial"), ("seed", "seed", "int"), *ours,
                         (IN_CI, [covered(r, T1_IN_CI) for _, r in d.iterrows()]),
                         ("finetune epochs", "finetune_epochs", "[int]"), ("weights zeroed", "weights_zeroed", "[int]"),
                         ("m_r d (higher is better)", "mr_d", "[.4g]"), ("cap hits", "hit_cap"),
                         ("collapsed", "collapsed")))

    @property
    def avg(self) -> pd.Series:
        return self.data[self.data["trial"] == "avg"].iloc[0]

    def sentences(self) -> list[str]:
        d, avg = self.data, self.avg
        ours = d[~d["trial"].isin(["avg", "sd"]) & d["mr_epochs"].notna()]
        if ours.empty:
            return ["No synthetic trials in this run: the table shows the paper's numbers only."]
        n, faster = len(ours), int((ours["epoch_ratio"] < 1).sum())
        paper_faster = sum(r[2] < 1 for r in P.P000_TABLE1.values())
        s = [f"Our mean m_r/m_o epoch ratio is {self._vs_paper('epoch_ratio', '.4g')} over "
             f"{n} {plural(n, 'trial')}; weight pruning converged in fewer epochs than "
             f"retraining in {faster} of {n} (the paper: {paper_faster} of {len(P.P000_TABLE1)}).",
             f"Mean epochs: m_r {self._vs_paper('mr_epochs', '.1f')}, m_o {self._vs_paper('mo_epochs', '.1f')}; mean "
             f"accuracy on the training points: m_r {self._vs_paper('mr_acc', '.3f')}, "
             f"m_o {self._vs_paper('mo_acc', '.3f')}."]
        if not missing(avg["finetune_epochs"]):
            s.append(f"The warm-start finetune ablation needed {num(avg['finetune_epochs'], '.1f')} epochs on "
                     f"average (m_r: {num(avg['mr_epochs'], '.1f')}): the part of the saving that starting warm "
                     "alone gives.")
        if avg["hit_cap"] not in ("", "none"):
            s.append(f"Runs stopped by the epoch cap: {avg['hit_cap']} (their epochs are lower bounds).")
        return s

    def _vs_paper(self, k: str, spec: str) -> str:
        """Our avg of column `k` with its interval, beside the paper's avg (`compare`)."""
        avg = self.avg
        return compare(avg[k], avg[f"{k}_paper"], spec, lo=avg[f"{k}_lo"], hi=avg[f"{k}_hi"])

    def cells(self, extended: bool = False) -> list[Cell]:
        avg = self.avg
        return [Cell(f"p000_t1_{k}", label, avg[f"{k}_paper"], avg[k], spec, avg[f"{k}_lo"], avg[f"{k}_hi"])
                for k, label, spec in T1_CELLS]


# -- California housing -----------------------------------------------------------------------------------
CAL_MODELS = (("m_o", "naive_retrain"), ("m_r", "weight_pruning"), ("m_c", "control"), ("finetune", "finetune"))
CAL_DISTANCES = ("s_to_control", "s_to_oracle", "d")
PAPER_MC = P.P000_CALIFORNIA["m_o"] / P.P000_CALIFORNIA_MO_OVER_MC
CAL_PAPER = {"m_o": P.P000_CALIFORNIA["m_o"], "m_r": P.P000_CALIFORNIA["m_r"], "m_c": PAPER_MC}
CAL_PAPER_RATIO = {"m_o": P.P000_CALIFORNIA_MO_OVER_MC, "m_c": 1.0}
CAL_NOTES = (
    f"The paper gives m_c only through the ratio m_o/m_c = {P.P000_CALIFORNIA_MO_OVER_MC}: its m_c "
    f"epochs (≈{PAPER_MC:.1f}) are derived as {P.P000_CALIFORNIA['m_o']}/{P.P000_CALIFORNIA_MO_OVER_MC}. "
    f"The paper's convergence threshold is {P.P000_CALIFORNIA_THRESHOLD}.",
    "S to control / S to oracle: logit L1 distance of the model to m_c / m_o; d = (S to control − "
    "S to oracle) / |Y|: higher is better, d > 0 means closer to m_o than to m_c. epochs / m_c: below 1, fewer "
    "epochs than training m_c from scratch. Not shown for m_o (its S to oracle is 0 by definition) nor m_c (no "
    "record of its own); m_c's rule is the same preset as m_o's.",
)


def _control(sub: pd.DataFrame) -> pd.DataFrame:
    """The control model m_c per seed, from the records that carry its epochs (`control_*`)."""
    keys = ["control_epochs", "control_converged"]
    if not set(keys) <= set(sub.columns) or sub.empty:
        return pd.DataFrame(columns=keys)
    return sub.sort_values(["seed", "method"]).groupby("seed")[keys].first()


def _model(sub: pd.DataFrame, method: str, control: pd.DataFrame) -> dict:
    """One model's epochs, counts and distances (none for m_o: S and d of m_o against itself say nothing)."""
    if method == "control":
        epochs = control["control_epochs"]
        n = int(epochs.notna().sum())
        return {"epochs": epochs, "by_seed": epochs, "n": n, "caps": int(is_false(control["control_converged"]).sum()),
                "collapsed": NAN, "distances": {}, "rule": ""}
    s = sub[sub["method"] == method]
    n = len(s)
    keep = method != "naive_retrain"
    return {"epochs": col(s, "epochs"), "by_seed": col(s, "epochs").groupby(col(s, "seed")).mean(), "n": n,
            "caps": int(is_true(col(s, "hit_cap")).sum()) if n else NAN,
            "collapsed": int(is_true(col(s, "collapsed")).sum()) if n else NAN,
            "distances": {k: col(s, k) for k in CAL_DISTANCES} if keep else {}, "rule": rules(s)}


def _ratio_to_mc(label: str, got: dict, mc: pd.Series) -> dict:
    """The model's mean epochs / m_c's, with the interval of that ratio over the seeds both have (none for m_c
    itself: 1 by definition)."""
    m, mc_mean = stats(got["epochs"])[0], stats(mc)[0]
    ratio = m / mc_mean if not missing(m) and not missing(mc_mean) and mc_mean else NAN
    pairs = pd.concat([got["by_seed"].rename("model"), mc.rename("mc")], axis=1, join="inner")
    lo, hi = ratio_interval(pairs["model"], pairs["mc"]) if label != "m_c" else (NAN, NAN)
    return {"ratio_to_mc": ratio, "ratio_to_mc_lo": lo, "ratio_to_mc_hi": hi,
            **beside("ratio_to_mc", ratio, lo, hi, CAL_PAPER_RATIO.get(label, NAN))}


def _model_row(label: str, method: str, got: dict, mc: pd.Series) -> dict:
    """One model's row; `mc`: m_c's epochs by seed."""
    e = summary(got["epochs"], "epochs")
    n, ref = got["n"], CAL_PAPER.get(label, NAN)
    row = {"model": label, "method": method, "n": n, "epochs": e.mean, "epochs_sd": e.sd, "epochs_lo": e.lo,
           "epochs_hi": e.hi, "cap_hits": got["caps"] if n else NAN, "collapsed": got["collapsed"],
           **beside("epochs", e.mean, e.lo, e.hi, ref), **_ratio_to_mc(label, got, mc)}
    for key in CAL_DISTANCES:
        row.update(summary_columns(key, got["distances"].get(key, pd.Series(dtype=float))))
    row["rule"] = got["rule"]
    return row


class Paper000California(Table):
    name = "paper000_california"
    PAPER = True
    title = "Paper 000, California housing: epochs to convergence"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Paper000California:
        sub = select(df, "000", "california")
        control = _control(sub)
        data = pd.DataFrame([_model_row(label, method, _model(sub, method, control), control["control_epochs"])
                             for label, method in CAL_MODELS])
        return cls.make(ctx, data, cls.show(data), [*cls.record_notes(sub), *CAL_NOTES], not sub.empty)

    @staticmethod
    def record_notes(sub: pd.DataFrame) -> list[str]:
        if sub.empty:
            return ["No paper-000 California records in the input: only the paper's numbers are shown."]
        notes = [f"{label} ({method}) was not run: its cells are empty." for label, method in CAL_MODELS
                 if method != "control" and sub[sub["method"] == method].empty]
        return [*notes, "epochs, S, d: mean [95 % CI] over seeds (n); epochs / m_c: the model's mean epochs / m_c's, "
                        "its interval a paired bootstrap over the seeds (BCa, seeded). Cap hits: runs stopped by the "
                        "epoch cap (m_c: runs whose training did not converge, from `control_converged`); their "
                        f"epochs are a lower bound. {IN_CI}: whether the paper's number lies in our interval.",
                INTERVAL_NOTE]

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        def of_n(key: str) -> list[str]:
            return [f"{num(c, 'int')}/{num(n, 'int')}" if n and not missing(c) else ""
                    for c, n in zip(d[key], d["n"], strict=True)]
        return shown(d, (
            ("model", "model"), ("method", "method"), ("n", d["n"].map(lambda x: num(x, "int") if x else "0")),
            ("epochs", "epochs", "[.1f]"),
            ("epochs (paper)", [("≈" if m == "m_c" else "") + num(x, ".1f") if not missing(x) else ""
                                for m, x in zip(d["model"], d["epochs_paper"], strict=True)]),
            ("Δ epochs", "epochs_delta", ".1f"), ("cap hits", of_n("cap_hits")), ("collapsed", of_n("collapsed")),
            ("epochs / m_c (< 1: fewer)", "ratio_to_mc", "[.3f]"), ("epochs / m_c (paper)", "ratio_to_mc_paper", ".3f"),
            (IN_CI, [covered(r, {"epochs": "epochs", "ratio_to_mc": "epochs / m_c"}) for _, r in d.iterrows()]),
            ("S to control", "s_to_control", "[.4g]"), ("S to oracle", "s_to_oracle", "[.4g]"),
            ("d (higher is better)", "d", "[.4g]"), ("rule", "rule")))

    @property
    def by_model(self) -> pd.DataFrame:
        return self.data.set_index("model")

    def _capped(self, m: str) -> str:
        hits, n = self.by_model.loc[m, "cap_hits"], self.by_model.loc[m, "n"]
        if missing(hits) or not hits:
            return ""
        return " (every run stopped by the cap)" if hits == n else f" ({int(hits)} of {int(n)} runs stopped by the cap)"

    def sentences(self) -> list[str]:
        if not self.has_records:
            return ["No California records in this run: the table shows the paper's numbers only."]
        by = self.by_model
        s = [f"m_r took {self._vs_paper('m_r', 'epochs', '.1f')} epochs{self._capped('m_r')} and m_o "
             f"{self._vs_paper('m_o', 'epochs', '.1f')}{self._capped('m_o')}; our m_o/m_c epoch ratio is "
             f"{self._vs_paper('m_o', 'ratio_to_mc', '.3f')}."]
        caps = [f"{m} {int(by.loc[m, 'cap_hits'])}/{int(by.loc[m, 'n'])}" for m in by.index
                if not missing(by.loc[m, "cap_hits"]) and by.loc[m, "cap_hits"] > 0]
        if caps:
            s.append(f"Runs that hit the epoch cap ({self.data['rule'].iloc[0] or 'see rule'}): {', '.join(caps)}: "
                     "those epochs are lower bounds, not epochs to convergence.")
        if not missing(by.loc["m_r", "d"]):
            s.append(f"d of m_r is {num(by.loc['m_r', 'd'])} (finetune: {num(by.loc['finetune', 'd'])}); "
                     "positive d means closer to m_o than to m_c.")
        return s

    def _vs_paper(self, model: str, key: str, spec: str) -> str:
        """The model's `key` with its interval, beside the paper's (`compare`)."""
        r = self.by_model.loc[model]
        return compare(r[key], r[f"{key}_paper"], spec, lo=r[f"{key}_lo"], hi=r[f"{key}_hi"])

    def cells(self, extended: bool = False) -> list[Cell]:
        by = self.by_model
        return [Cell(key, label, by.loc[model, f"{k}_paper"], by.loc[model, k], spec, by.loc[model, f"{k}_lo"],
                     by.loc[model, f"{k}_hi"])
                for key, label, model, k, spec in (
                    ("p000_cal_mo", "000 California: m_o epochs", "m_o", "epochs", ".1f"),
                    ("p000_cal_mr", "000 California: m_r epochs", "m_r", "epochs", ".1f"),
                    ("p000_cal_mo_mc", "000 California: m_o/m_c epoch ratio", "m_o", "ratio_to_mc", ".3f"))]
