"""Forgetting quality: method × dataset × forget regime × removal size (utility, MIA gap, loss AUC,
JS to the oracle, forget quality F against its null and its ceiling, cost, RTE) and, per cell, the
verdict of `unlearning.evaluation.verdict` — computed in the library and stored in each record; this table
only adjusts the cells' p-values across the report (`verdict.adjust`) and displays them. Beside it:
the verdict rule's measured error rates (`VerdictErrorRates`) and how many models each cell needs
(`ModelsNeeded`)."""

from __future__ import annotations

import pandas as pd
from scipy import stats as sps

from ....evaluation import audit, ulira
from ....evaluation import verdict as V
from ..common import NAN, PRESET, SECONDS, cis, col, labelled, method_key, missing, num, ordered, select, shown, stats
from .base import Cell, Context, Table

MEASURES = ("utility", "forget_utility", "mia_gap", "loss_auc", "loss_auc_oracle", "js_to_oracle", "forget_quality",
            "forget_quality_ceiling", "forget_quality_normalised", "forget_quality_vs_null", "unlearn_score", "tow",
            "seconds", "rte", "training_seconds")
ULIRA_KEYS = tuple(p + m for p in ulira.PREFIXES for m in ulira.MEASURES)
# per cell over its records (normally one: a record is a group of N models): the effect's mean, the widest
# interval, the largest p-value, the least power — where several records disagree the cell claims the least
LOWEST, HIGHEST = ("effect_lo", "forget_quality_lo", "forget_quality_ceiling_lo", "power", "matches_attainable",
                   *(f"{k}_lo" for k in ULIRA_KEYS)), (
    "effect_hi", "forget_quality_hi", "forget_quality_ceiling_hi", "p_value", "noop_p_value", "p_value_shift",
    "p_value_control", "p_value_excess", *(f"{k}_hi" for k in ULIRA_KEYS))
MEANS = ("effect_control", "effect_retain", "effect_test", "effect_excess", "model_share", *ULIRA_KEYS)
UNATTAINABLE = 0.5      # cells where a copy of retraining is called `matches retraining` less often are marked
NOTE = ("Each record is a mean over N models (column N) trained from N seeds; cells average the records of a "
        "cell (normally one). [lo, hi]: utility, forget, MIA gap, loss AUC, JS and seconds: the record's 95 % t "
        "interval over its N models (where a cell holds several records, the lowest lo and the highest hi). "
        "utility: test accuracy (%) for classification, test MSE for "
        "regression; forget: the same on the forget set with the labels the original trained on (canaries: the "
        "wrong ones). MIA gap: |MIA-efficacy of the method − of naive retraining| (SVC on the confidence, the loss "
        "for regression; 0 is best). loss AUC: ROC AUC of −loss separating forget from test points, threshold-free "
        "(oracle's in brackets; the closer to it the better). JS: Jensen–Shannon divergence to naive retraining "
        "from the same original on the forget set, nats (0 is best; classification only). F [lo, hi]: NeurIPS "
        "2023 challenge forget quality against N retrained reference models, 95 % bootstrap interval over the "
        "forget examples; F / null: F over its mean when the two groups are exchangeable (from N alone: 0.106 at "
        "N = 32, 0.199 at N = 8 (MNIST's ConvNets); 1 is as good as retraining on average); ceiling: F of a "
        "second retrained group (naive retraining) at the same N, one noisy sample of that null. RTE: naive "
        "retraining seconds / the method's (> 1: faster than retraining; empty for the no-op: zero cost).")
VERDICT_NOTE = (
    "verdict (`unlearning.evaluation.verdict`): a permutation test "
    f"({V.N_PERMUTATIONS} seeded resamples of the 2N models) of "
    "'unlearned and retrained models are exchangeable' on the mean and the mean square of each example's "
    f"standardised shift of φ (each clipped to ±{V.Z_CLIP:g} retrained sd, so a collapsed model's effect stays "
    "finite); "
    "p (BH): its p-value adjusted by Benjamini–Hochberg across every cell of this table "
    f"(FDR {V.ALPHA:g}). effect: the mean standardised shift of the forget points' φ, in retrained sd — **> 0: more "
    "confident than under retraining (memorised); < 0: less confident (over-forgot; an unusually low confidence "
    "marks a point as removed, a leak too)**. retain / test: the same shift on "
    f"{audit.CONTROL_ROWS} retain and {audit.CONTROL_ROWS} test rows of the same models (the control rows; "
    "'not recorded' in cells run before they were). Labels: "
    + "; ".join(f"**{k}**: {v}" for k, v in V.MEANINGS.items()) + ". In order: p (BH) ≤ "
    f"{V.ALPHA:g} gives a miss: 'differs both ways' where the shift test alone does not reject (p_shift > α/2), "
    "'shifted everywhere' where the control rows moved (their test at α) and the forget set not beyond them (beyond: "
    "the excess over the control rows' shift significant, the same way and at least one margin), else "
    "memorised or over-forgot by the effect's sign; otherwise 'cannot tell' where the cell's no-op is not told apart "
    f"from retraining; 'matches retraining' where the effect's {V.CONFIDENCE * 100:g} % bootstrap interval (models "
    f"and examples resampled) lies inside ±{V.MARGIN:g} retrained sd (`verdict.MARGIN`). P(match): the share of "
    f"{V.ATTAIN_PANELS} simulated panels of retraining itself at this cell's N, M and measured ρ that the rule calls "
    f"'matches retraining' (`verdict.attainable`); † marks cells below {UNATTAINABLE:g}, where 'matches' was hardly "
    "attainable whatever the method did. power: the test's chance to reject a shift of one margin in every "
    "example — a normal approximation, optimistic at small N (the simulated rates in the next table are measured). "
    "The measured error rates of this rule are the next table.")
ULIRA_NOTE = (
    "U-LiRA (`unlearning.evaluation.ulira`, Hayes et al. SaTML 2025; RULI, USENIX Security 2025): a per-example "
    "likelihood-ratio attack telling an unlearned model from a retrained one by its φ on each forget point, each "
    "model scored by Gaussian fits to the two groups that leave it out; AUC over every (model, point) pair (0.5: "
    "retraining's equal) and TPR at 1 % FPR, with 95 % bootstrap intervals (models and points resampled); vuln.: "
    "the same on the most vulnerable tenth of the forget points (the originals' φ furthest from retraining's); "
    "retain AUC: the same attack on the control retain rows (unlearning can make retain points identifiable). "
    "'' where not computed: TPR at an FPR the negatives cannot resolve, retain rows not recorded.")

SETTING_NOTE = ("method: the method at its preset settings; `method (tuned)`: the same method at the point its "
                "search chose for the cell's regime (seeded TPE, the same trials for every method, minimising the "
                "distance from retraining on validation panels apart from these cells, the winners re-scored on "
                "second panels; benchmarks/tuned/<dataset>.json, docs/tuning.md). The points and their search: table "
                "`tuned_points`.")
TRAINING = "training s (SISA, once)"
TRAINING_NOTE = (f"{TRAINING}: SISA's amortised cost, the seconds of training its shard models (paid once, before any "
                 "request, in place of the original's training; its record's `training_seconds`); its seconds and RTE "
                 "are the removal's alone (retraining the shards a request touches).")

CELL = ["dataset", "regime", "removal_size"]     # one cell of the audit, across methods
OVER_MODELS = ("mia_gap", "loss_auc", "js_to_oracle", "seconds")    # records carry their interval over the models


def cost(g: pd.DataFrame, data: pd.DataFrame) -> str:
    """One method's cost in words, from its cells `g`: seconds per model (the cheapest and dearest dataset's mean) and
    the median over cells of its seconds / naive retraining's on the same cell ("" where no cell has seconds)."""
    per_dataset = g.groupby("dataset")["seconds"].mean().dropna()
    if per_dataset.empty:
        return ""
    lo, hi = per_dataset.idxmin(), per_dataset.idxmax()
    seconds = (f"{num(per_dataset[lo], SECONDS)} s per model" if per_dataset[lo] == per_dataset[hi] else
               f"{num(per_dataset[lo], SECONDS)} s ({lo}) to {num(per_dataset[hi], SECONDS)} s ({hi}) per model")
    ref = on_cell(g, data, "naive_retrain", "seconds")
    ratio = (g["seconds"] / ref.where(ref > 0)).dropna()
    times = f", {num(ratio.median(), '.2g')} × naive retraining's time (median over cells)" if len(ratio) else ""
    return f"; cost {seconds}{times}"


def _given(v):
    return None if missing(v) else float(v)


def verdicts(data: pd.DataFrame) -> pd.DataFrame:
    """`p_adjusted` (BH across every row with a p-value), the no-op's of each cell, and each row's `verdict`
    (`verdict.decide` with the row's direction, spread and control tests; '' for records made before verdicts
    were recorded)."""
    out = data.copy()
    out["p_adjusted"] = V.adjust(out["p_value"].astype(float))
    out["noop_p_adjusted"] = on_cell(out, out, "noop", "p_adjusted")
    out["verdict"] = ["" if missing(r["p_adjusted"]) else V.decide(
        r["p_adjusted"], r["effect_lo"], r["effect_hi"], int(r["removal_size"]), _given(r["noop_p_adjusted"]),
        effect=_given(r["effect"]), p_shift=_given(r["p_value_shift"]), p_control=_given(r["p_value_control"]),
        p_excess=_given(r["p_value_excess"]), excess=_given(r["effect_excess"])) for _, r in out.iterrows()]
    return out


def controls(d: pd.DataFrame) -> list[str]:
    """The control rows' shifts, `retain / test` in retrained sd, or 'not recorded'."""
    return ["not recorded" if missing(a) else f"{num(a, '+.2f')} / {num(b, '+.2f')}"
            for a, b in zip(d["effect_retain"], d["effect_test"], strict=True)]


def _utility(cell: pd.DataFrame, part: str, end: str = "") -> pd.Series:
    """Accuracy in % (else MSE) on `part`; `end` "_lo" / "_hi": the ends of its interval over the models."""
    acc = col(cell, f"{part}_acc{end}")
    return acc * 100 if col(cell, f"{part}_acc").notna().any() else col(cell, f"{part}_mse{end}")


def reference(data: pd.DataFrame, method: str) -> pd.Series:
    """The rows of `data` (the table's) of `method` at its preset: the no-op's, naive retraining's."""
    return (data["method"] == method) & (data["setting"] == PRESET)


def on_cell(rows: pd.DataFrame, data: pd.DataFrame, method: str, key: str) -> pd.Series:
    """Column `key` of `method`'s preset row (`reference`) on each of `rows`' cells; NaN where it has none."""
    ref = data[reference(data, method)].set_index(CELL)[key]
    return pd.Series([ref.get(k, NAN) for k in rows[CELL].itertuples(index=False, name=None)], index=rows.index,
                     dtype=float)


def _row(key: tuple, cell: pd.DataFrame) -> dict:
    ds, regime, size, method, setting, label = key
    row = {"dataset": ds, "regime": regime, "removal_size": size, "method": method, "setting": setting,
           "label": label, "n": len(cell), "utility_mse": bool(col(cell, "test_acc").isna().all()),
           "n_models": stats(col(cell, "n_models"))[0], "utility": stats(_utility(cell, "test"))[0],
           "forget_utility": stats(_utility(cell, "forget"))[0], "effect": stats(col(cell, "effect"))[0]}
    row.update({k: stats(col(cell, k))[0] for k in MEASURES + MEANS if k not in row})
    row.update({k: col(cell, k).min() for k in LOWEST})
    row.update({k: col(cell, k).max() for k in HIGHEST})
    for name, part in (("utility", "test"), ("forget_utility", "forget")):
        row.update({f"{name}_lo": _utility(cell, part, "_lo").min(), f"{name}_hi": _utility(cell, part, "_hi").max()})
    row.update({f"{k}_lo": col(cell, f"{k}_lo").min() for k in OVER_MODELS})
    row.update({f"{k}_hi": col(cell, f"{k}_hi").max() for k in OVER_MODELS})
    return row


def epsilon_means(sub: pd.DataFrame) -> list[str]:
    """Per forget regime, each method's mean per-example ε over every forget example of its cells (all datasets and
    sizes; the records' `epsilon_per_example`): one note per regime, none where no record holds ε."""
    rows = [(r["label"], r["forget_regime"], float(e)) for _, r in sub.iterrows()
            if isinstance(r.get("epsilon_per_example"), list) for e in r["epsilon_per_example"] if e is not None]
    if not rows:
        return []
    long = pd.DataFrame(rows, columns=["method", "regime", "epsilon"])
    out = []
    for regime, g in long.groupby("regime"):
        means = g.groupby("method")["epsilon"].mean()
        out.append(f"Mean per-example ε, {regime} (every dataset and size): " + ", ".join(
            f"{m} {num(means[m], '.2f')}" for m in sorted(means.index, key=method_key)) + ".")
    return out


class Forgetting(Table):
    name = "forgetting"
    title = "Forgetting quality: method × dataset × forget regime × removal size"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Forgetting | None:
        sub = select(df, "forgetting", "forgetting")
        if sub.empty:
            return None
        keys = ["dataset", "forget_regime", "removal_size", "method", "setting", "label"]
        data = pd.DataFrame([_row(k, cell) for k, cell in labelled(sub).groupby(keys, sort=False, dropna=False)])
        data = verdicts(ordered(data, lambda r: (r["dataset"], r["regime"], r["removal_size"],
                                                 method_key(r["label"]))).reset_index(drop=True))
        notes = [NOTE, VERDICT_NOTE, ULIRA_NOTE, SETTING_NOTE]
        notes += [TRAINING_NOTE] if data["training_seconds"].notna().any() else []
        return cls.make(ctx, data, cls.show(data), notes + epsilon_means(labelled(sub)))

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        return shown(d, (
            ("dataset", "dataset"), ("regime", "regime"), ("removal size", "removal_size", "int"),
            ("method", "label"), ("N", "n_models", "int"), ("utility", "utility", "[.4g]"),
            ("forget", "forget_utility", "[.4g]"), ("MIA gap", "mia_gap", "[.3f]"),
            ("loss AUC (oracle)", [f"{a} ({num(o, '.3f')})" for a, o in
                                   zip(cis(d, "loss_auc", ".3f"), d["loss_auc_oracle"], strict=True)]),
            ("JS", "js_to_oracle", "[.3g]"), ("F [95 % CI]", "forget_quality", "[.3f]"),
            ("F / null", "forget_quality_vs_null", ".2f"), ("ceiling [95 % CI]", "forget_quality_ceiling", "[.3f]"),
            ("F / ceiling", "forget_quality_normalised", ".2f"), ("effect, sd [90 % CI]", "effect", "[+.2f]"),
            ("retain / test, sd", controls(d)), ("p (BH)", "p_adjusted", ".3g"), ("verdict", "verdict"),
            ("P(match)", [f"{num(a, '.2f')}{' †' if not missing(a) and a < UNATTAINABLE else ''}"
                          for a in d["matches_attainable"]]),
            ("power (approx.)", "power", ".2f"), ("U-LiRA AUC [95 % CI]", "ulira_auc", "[.3f]"),
            ("TPR @1 % FPR", "ulira_tpr_1pct", "[.3f]"), ("vuln. TPR @1 %", "ulira_vulnerable_tpr_1pct", ".3f"),
            ("retain AUC", "ulira_retain_auc", ".3f"), ("score", "unlearn_score", ".3f"),
            ("seconds", "seconds", f"[{SECONDS}]"), ("RTE (> 1: faster)", "rte", ".3g"),
            *([(TRAINING, "training_seconds", SECONDS)] if d["training_seconds"].notna().any() else [])))

    def sentences(self) -> list[str]:
        out = []
        for method, g in sorted(self.data.groupby("label", sort=False), key=lambda kv: method_key(kv[0])):
            counts = g["verdict"].value_counts()
            parts = [f"{counts.get(v, 0)} {v}" for v in V.VERDICTS if counts.get(v)]
            tail = "" if method == "naive_retrain" else cost(g, self.data)
            check = (" (a second retrained group: any miss here is a false rejection)"
                     if method == "naive_retrain" else "")
            out.append(f"{method}: {', '.join(parts) or 'no verdict'} of {len(g)} cells{check}{tail}.")
        hard = self.data[self.data["matches_attainable"].astype(float) < UNATTAINABLE]
        if len(hard):
            where = sorted({f"{r.dataset} {r.regime} n={num(r.removal_size, 'int')}" for r in hard.itertuples()})
            out.append(f"'matches retraining' was attainable in fewer than half the simulated panels of retraining "
                       f"itself (†) on {len(where)} cells: {', '.join(where)}.")
        return out

    def cells(self, extended: bool = False) -> list[Cell]:
        d = self.data[~reference(self.data, "naive_retrain")]
        groups = sorted(d.groupby("label", sort=False), key=lambda kv: method_key(kv[0]))
        return [Cell(f"forgetting_{m}_matches", f"forgetting: {m}, cells matching retraining (of those with a "
                     "verdict)", NAN, float((g["verdict"] == V.MATCHES).sum()), "int") for m, g in groups]


class VerdictErrorRates(Table):
    name = "verdict_error_rates"
    title = "The verdict rule's error rates on simulated panels of known truth"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> VerdictErrorRates | None:
        sub = select(df, "forgetting", "verdict_error_rates")
        if sub.empty:
            return None
        rows = []
        sub = sub.assign(model_share=col(sub, "model_share"))
        for (n, m, rho, scenario), g in sub.groupby(["n_models", "removal_size", "model_share", "scenario"],
                                                    sort=False, dropna=False):
            panels = int(g["panels"].sum())
            truth = V.SCENARIOS[scenario].truth if scenario in V.SCENARIOS else ""
            row = {"n_models": n, "removal_size": m, "model_share": rho, "scenario": scenario, "truth": truth,
                   "shift_sd": g["shift_sd"].iloc[0], "panels": panels}
            for v in V.VERDICTS:
                k = round(float((col(g, _rate_key(v)).fillna(0) * g["panels"]).sum()))
                lo, hi = sps.binomtest(k, panels).proportion_ci(0.95, method="exact")
                row.update({v: k / panels, f"{v}_lo": lo, f"{v}_hi": hi})
            rows.append(row)
        order = {name: i for i, name in enumerate(V.SCENARIOS)}     # the scenarios' own order, whatever the runs'
        data = pd.DataFrame(rows)
        data = data.assign(_rank=data["scenario"].map(lambda s: order.get(s, len(order)))).sort_values(
            ["n_models", "model_share", "removal_size", "_rank"], ascending=[False, True, True, True],
            kind="stable").drop(columns="_rank").reset_index(drop=True)
        return cls.make(ctx, data, cls.show(data), [
            "Simulated panels (`unlearning.evaluation.verdict.simulated_panel`): N unlearned and N retrained models, "
            f"M forget examples and {' + '.join(map(str, V.SIM_CONTROL_ROWS))} control rows (retain, test), "
            "φ normal with a per-model effect holding ρ of each row's variance (measured on the paper "
            "panels' reference models: California 0.00–0.06, digits 0.02–0.09 (classwise 0.23–0.37), MNIST "
            "0.12–0.20 (classwise 0.64)); the unlearned group moved as the scenario says (`verdict.SCENARIOS`: a "
            "shift of the forget rows in retrained sd; 'shifted everywhere': the control rows too; 'spread 1.5x': "
            "the unlearned models' deviations 1.5× wider, the mean unchanged). Each judged by the audit's rule (no "
            "no-op gate, no adjustment across cells). Rates in % with their 95 % Clopper–Pearson intervals; "
            "**bold**: the scenario's true label. Targets: any miss label under no difference (the size) ≤ "
            f"{V.ALPHA * 100:g} %; 'matches retraining' at a shift of one margin ({V.MARGIN:g} sd) ≤ "
            f"{V.ALPHA * 100:g} %."])

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        def rate(v: str) -> list[str]:
            return [f"**{c}**" if t == v else c
                    for c, t in zip(cis(d[[v, f"{v}_lo", f"{v}_hi"]] * 100, v, ".1f"), d["truth"], strict=True)]
        return shown(d, (("N", "n_models", "int"), ("M", "removal_size", "int"), ("ρ", "model_share", "g"),
                         ("truth", "scenario"), ("panels", "panels", "int"),
                         *((f"{v} %", rate(v)) for v in V.VERDICTS if v != V.TOO_FEW)))

    def summary(self) -> str:
        """The error rates in one sentence (the report's page): the size's and the margin's ranges over the designs
        simulated, against their targets."""
        d = self.data
        null = d[d["scenario"] == "no difference"]
        size = sum(null[v] for v in V.MISSED) * 100
        margin = d.loc[d["shift_sd"] == V.MARGIN, V.MATCHES] * 100
        designs = len(d.groupby(["n_models", "removal_size", "model_share"], dropna=False))

        def span(v: pd.Series) -> str:
            return "none simulated" if v.empty else (f"{num(v.min(), '.1f')}–{num(v.max(), '.1f')} %"
                                                     if v.min() != v.max() else f"{num(v.min(), '.1f')} %")
        return (f"On {num(d['panels'].sum(), 'int')} simulated panels of known truth ({designs} designs of N, M and "
                f"ρ), the verdict rule calls a copy of retraining a miss in {span(size)} of panels (target ≤ "
                f"{V.ALPHA * 100:g} %) and a shift of one margin ({V.MARGIN:g} sd) 'matches retraining' in "
                f"{span(margin)} (target ≤ {V.ALPHA * 100:g} %).")

    def sentences(self) -> list[str]:
        out = []
        for (n, m, rho), g in self.data.groupby(["n_models", "removal_size", "model_share"], sort=False,
                                                dropna=False):
            by = g.set_index("scenario")
            parts = []
            if "no difference" in by.index:
                null = by.loc["no difference"]
                parts.append(f"size {num(sum(null[v] for v in V.MISSED) * 100, '.1f')} %")
            margin = by[by["shift_sd"] == V.MARGIN]
            if len(margin):
                parts.append(f"'matches' at the margin {num(margin[V.MATCHES].iloc[0] * 100, '.1f')} %")
            parts += [f"{name}: {num(by.loc[name, V.SCENARIOS[name].truth] * 100, '.0f')} % {V.SCENARIOS[name].truth}"
                      for name in by.index if name in V.SCENARIOS and name != "no difference"
                      and V.SCENARIOS[name].shift != V.MARGIN]
            out.append(f"N = {num(n, 'int')}, M = {num(m, 'int')}, ρ = {num(rho, 'g')}: {', '.join(parts)}.")
        return out


def _rate_key(verdict: str) -> str:
    return "rate_" + verdict.replace(" ", "_").replace("-", "_")


class ModelsNeeded(Table):
    name = "models_needed"
    title = "How many models are enough: the no-op told apart from retraining, by N"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> ModelsNeeded | None:
        sub = select(df, "forgetting", "forgetting")
        sub = sub[(sub["method"] == "noop") & col(sub, "power_curve").notna()] if not sub.empty else sub
        if sub.empty:
            return None
        rows = []
        for _, r in sub.iterrows():
            curve = dict(zip(r["power_curve_models"], r["power_curve"], strict=True))
            rows.append({"dataset": r["dataset"], "regime": r["forget_regime"], "removal_size": r["removal_size"],
                         "n_models": r["n_models"], "p_value": r["p_value"], "models_needed": r["models_needed"],
                         "curve": curve,
                         "enough": cls.enough(r["n_models"], r["models_needed"], curve, r["p_value"])})
        data = pd.DataFrame(rows).sort_values(["dataset", "regime", "removal_size"], kind="stable")
        return cls.make(ctx, data.drop(columns="curve"), cls.show(data), [
            f"The no-op's models (the originals) and the reference models subsampled without replacement to N′ "
            f"each ({V.NEEDED_DRAWS} draws per N′, {V.NEEDED_PERMUTATIONS} permutations each); power: the share "
            f"whose difference test rejects at {V.ALPHA:g} (unadjusted). needed: the smallest N′ reaching "
            f"{V.TARGET_POWER:g}. p: the full panel's own p-value (unadjusted)."])

    @staticmethod
    def enough(n, needed, curve: dict, p_value) -> str:
        """Whether the panel's N tells the no-op apart from retraining with `TARGET_POWER` power, in words."""
        told = not missing(p_value) and p_value <= V.ALPHA
        if not missing(needed):
            return f"yes: N′ = {num(needed, 'int')} already reaches power {V.TARGET_POWER:g}"
        if not curve:
            return "not measured"
        top = max(curve)
        if told:
            return (f"just: N = {num(n, 'int')} tells them apart, but N′ = {top} has power {num(curve[top], '.2f')}; "
                    "more models would make it sure")
        return (f"no: N = {num(n, 'int')} does not tell them apart and N′ = {top} has power {num(curve[top], '.2f')}: "
                "no memorisation this N can see (it may need far more models, or be none)")

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        return shown(d, (("dataset", "dataset"), ("regime", "regime"), ("removal size", "removal_size", "int"),
                         ("N", "n_models", "int"), ("p (no-op, N)", "p_value", ".3g"),
                         ("power at N′", [", ".join(f"{k}: {num(v, '.2f')}" for k, v in c.items())
                                          for c in d["curve"]]),
                         ("needed", "models_needed", "int"), ("is N enough?", "enough")))
