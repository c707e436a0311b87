"""The report's tables: built from the records with pandas, written as Markdown, CSV and LaTeX.

Every table has a numeric frame (`data`, written as CSV: means, standard deviations and
counts in separate columns, the paper's values and the deviation ours - paper) and a
formatted frame (`display`, written as Markdown and LaTeX: "mean ± sd", fixed digits).
Cells that have no record are empty (NaN), never zero, and a note says why. Rows are
sorted and numbers formatted with fixed rules, so the same input gives the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import paper as P

NAN = float("nan")
M000 = {"m_r": "weight_pruning", "m_o": "naive_retrain", "finetune": "finetune"}
METHOD_ORDER = ("original", "naive_retrain", "weight_pruning", "finetune", "random_relabel")
LATEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "≈": r"$\approx$", "—": "---", "–": "--", "×": r"$\times$",
                 "≤": r"$\leq$", "→": r"$\to$", "−": "$-$", "∪": r"$\cup$", "↔": r"$\leftrightarrow$"}


# -- formatting -----------------------------------------------------------------------------------------
def missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (not isinstance(x, str) and pd.isna(x))


def num(x, spec: str = ".4g") -> str:
    """A number in a fixed format; '' when missing. spec "int" prints integral values without decimals
    (others with one); any other spec is a format spec."""
    if missing(x):
        return ""
    x = float(x)
    if spec == "int":
        s = f"{int(round(x))}" if x.is_integer() else f"{x:.1f}"
    else:
        s = format(x, spec)
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s


def pm(mean, sd, spec: str = ".4g") -> str:
    """"mean ± sd" (just the mean when sd is missing: one value)."""
    if missing(mean):
        return ""
    return num(mean, spec) if missing(sd) else f"{num(mean, spec)} ± {num(sd, spec)}"


def delta(ours, ref) -> float:
    return NAN if missing(ours) or missing(ref) else float(ours) - float(ref)


def stats(values) -> tuple[float, float, int]:
    """mean, sample sd (NaN for fewer than 2) and count of the non-missing values."""
    v = pd.Series(values, dtype=float).dropna()
    n = len(v)
    return (float(v.mean()) if n else NAN, float(v.std(ddof=1)) if n > 1 else NAN, n)


def col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column `name`, or all-missing when no record has the key."""
    return df[name] if name in df.columns else pd.Series(NAN, index=df.index, dtype=float)


def is_true(s: pd.Series) -> pd.Series:
    return s.map(lambda v: v is True or v == 1 if not missing(v) else False).astype(bool)


def is_false(s: pd.Series) -> pd.Series:
    return s.map(lambda v: v is False or v == 0 if not missing(v) else False).astype(bool)


def method_key(m: str) -> tuple:
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m)


def latex_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        elif ch in "<>":
            out.append(f"${ch}$")
        elif ch in "~^":
            out.append({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}[ch])
        else:
            out.append(LATEX_SYMBOLS.get(ch, ch))
    return "".join(out)


# -- the table object -----------------------------------------------------------------------------------
@dataclass
class Context:
    profile: str
    torch: str
    device: str

    @property
    def is_paper(self) -> bool:
        return self.profile == "paper"

    def caption(self, title: str) -> str:
        prof = f"profile: {self.profile}" + ("" if self.is_paper else " — not the paper reproduction")
        return f"{title} ({prof}; torch {self.torch}; {self.device or 'device unknown'})"


@dataclass
class Table:
    name: str
    title: str
    caption: str
    data: pd.DataFrame
    display: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    has_records: bool = True

    def markdown(self) -> str:
        lines = [f"**{self.caption}**", "", self.display.to_markdown(index=False, disable_numparse=True)]
        if self.notes:
            lines += ["", *(f"- {n}" for n in self.notes)]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        return self.data.to_csv(index=False, float_format="%.6g", lineterminator="\n", na_rep="")

    def latex(self) -> str:
        disp = self.display.map(lambda v: latex_escape(str(v)))
        disp.columns = [latex_escape(str(c)) for c in disp.columns]
        tex = disp.to_latex(index=False, escape=False, caption=latex_escape(self.caption), label=f"tab:{self.name}",
                            position="htbp")
        if self.notes:
            notes = "\n".join(r"\par\footnotesize " + latex_escape(n) for n in self.notes)
            tex = tex.replace("\\end{table}", notes + "\n\\end{table}")
        return tex

    def write(self, folder: Path) -> list[str]:
        files = {f"{self.name}.md": self.markdown(), f"{self.name}.csv": self.csv(), f"{self.name}.tex": self.latex()}
        for fname, text in files.items():
            (folder / fname).write_text(text, encoding="utf-8", newline="\n")
        return sorted(files)


def make_table(name: str, title: str, ctx: Context, data: pd.DataFrame, display: pd.DataFrame,
               notes: list[str], has_records: bool = True) -> Table:
    data = data.reset_index(drop=True)
    data.insert(0, "profile", ctx.profile)
    return Table(name, title, ctx.caption(title), data, display.reset_index(drop=True), notes, has_records)


def select(df: pd.DataFrame, paper: str, table: str) -> pd.DataFrame:
    if df.empty or "paper" not in df.columns:
        return df.iloc[0:0]
    return df[(df["paper"] == paper) & (df["table"] == table)]


def rules(s: pd.DataFrame) -> str:
    return "; ".join(sorted(set(col(s, "rule").dropna().astype(str))))


# -- paper 000, Table 1 (synthetic) -----------------------------------------------------------------------
def paper000_table1(df: pd.DataFrame, ctx: Context) -> Table:
    sub = select(df, "000", "table1")
    notes = []
    ours_trials = sorted(int(t) for t in col(sub, "trial").dropna().unique())
    trials = sorted(set(ours_trials) | set(P.P000_TABLE1))
    per = {label: sub[sub["method"] == m] for label, m in M000.items()}

    def value(label, key, t):
        s = per[label]
        s = s[s["trial"] == t]
        return float(col(s, key).mean()) if not s.empty else NAN

    def flags(t, key):
        found = [label for label, s in per.items() if not s[s["trial"] == t].empty]
        if not found:
            return ""
        hit = [label for label in found if is_true(col(per[label][per[label]["trial"] == t], key)).any()]
        return ", ".join(hit) if hit else "none"

    rows = []
    for t in trials:
        paper = P.P000_TABLE1.get(t, (NAN,) * 5)
        seed = col(sub[sub["trial"] == t], "seed").dropna()
        row = {"trial": str(t), "seed": float(seed.iloc[0]) if len(seed) else NAN}
        ours = {"mr_epochs": value("m_r", "epochs", t), "mo_epochs": value("m_o", "epochs", t),
                "epoch_ratio": value("m_r", "epoch_ratio", t), "mr_acc": value("m_r", "train_acc", t),
                "mo_acc": value("m_o", "train_acc", t)}
        for k, ref in zip(P.P000_TABLE1_COLUMNS, paper):
            row.update({k: ours[k], f"{k}_paper": ref, f"{k}_delta": delta(ours[k], ref)})
        row.update(finetune_epochs=value("finetune", "epochs", t), finetune_ratio=value("finetune", "epoch_ratio", t),
                   weights_zeroed=value("m_r", "weights_zeroed", t), mr_d=value("m_r", "d", t),
                   hit_cap=flags(t, "hit_cap"), collapsed=flags(t, "collapsed"))
        rows.append(row)
    data = pd.DataFrame(rows)
    ours_rows = data[data["trial"].isin([str(t) for t in ours_trials])]
    numeric = ["mr_epochs", "mo_epochs", "epoch_ratio", "mr_acc", "mo_acc", "finetune_epochs", "finetune_ratio",
               "weights_zeroed", "mr_d"]
    avg = {"trial": "avg", "seed": NAN}
    sd = {"trial": "sd", "seed": NAN}
    for k in numeric:
        m, s, _ = stats(ours_rows[k])
        avg[k], sd[k] = m, s
    for k, ref in zip(P.P000_TABLE1_COLUMNS, P.P000_TABLE1_AVG):
        avg.update({f"{k}_paper": ref, f"{k}_delta": delta(avg[k], ref)})
        sd.update({f"{k}_paper": NAN, f"{k}_delta": NAN})
    for key in ("hit_cap", "collapsed"):
        counts = [f"{label} {int(is_true(col(s, key)).sum())}/{len(s)}" for label, s in per.items()
                  if not s.empty and is_true(col(s, key)).any()]
        avg[key] = ", ".join(counts) if counts else ("none" if not sub.empty else "")
        sd[key] = ""
    data = pd.concat([data, pd.DataFrame([avg, sd])], ignore_index=True)

    d = data
    display = pd.DataFrame({"trial": d["trial"], "seed": d["seed"].map(lambda x: num(x, "int"))})
    spec = {"mr_epochs": ("m_r epochs", "int"), "mo_epochs": ("m_o epochs", "int"),
            "epoch_ratio": ("ratio m_r/m_o", ".4f"), "mr_acc": ("m_r acc", ".3f"), "mo_acc": ("m_o acc", ".3f")}
    for k, (label, fmt) in spec.items():
        f = fmt if fmt != "int" else "int"
        display[label] = d[k].map(lambda x: num(x, f))
        display[f"{label} (paper)"] = d[f"{k}_paper"].map(lambda x: num(x, f if f != ".3f" else ".2f"))
        display[f"Δ {label}"] = d[f"{k}_delta"].map(lambda x: num(x, f))
    display["finetune epochs"] = d["finetune_epochs"].map(lambda x: num(x, "int"))
    display["weights zeroed"] = d["weights_zeroed"].map(lambda x: num(x, "int"))
    display["m_r d"] = d["mr_d"].map(lambda x: num(x, ".4g"))
    display["cap hits"] = d["hit_cap"]
    display["collapsed"] = d["collapsed"]

    if sub.empty:
        notes.append("No paper-000 Table 1 records in the input: only the paper's numbers are shown.")
    else:
        n = len(ours_trials)
        notes.append(f"avg / sd: over our {n} trial{'s' if n != 1 else ''}; the paper's avg is over its "
                     f"{len(P.P000_TABLE1)} trials. "
                     "The ratio is m_r epochs / m_o epochs per trial, averaged like the paper's 0.5396.")
        beyond = [t for t in ours_trials if t not in P.P000_TABLE1]
        if beyond:
            notes.append(f"Trial(s) {', '.join(map(str, beyond))}: the paper reports {len(P.P000_TABLE1)} trials; "
                         "no paper values.")
        absent = [t for t in trials if t not in ours_trials]
        if absent:
            notes.append(f"Trial(s) {', '.join(map(str, absent))}: not in this run; only the paper's values are shown.")
        for label, m in M000.items():
            lacking = [t for t in ours_trials if per[label][per[label]["trial"] == t].empty]
            if lacking:
                notes.append(f"{label} ({m}) has no record for trial(s) {', '.join(map(str, lacking))}: "
                             "its cells are empty.")
        if r := rules(sub):
            notes.append(f"Convergence rule: {r}. Cap hits: models stopped by the epoch cap "
                         "(their epochs are a lower bound).")
    notes.append("acc: `train_acc`, accuracy on the synthetic training points (the paper's 10 points). "
                 "Δ = ours − paper. finetune: the warm-start ablation (fine-tuning without pruning).")
    return make_table("paper000_table1", "Paper 000, Table 1: synthetic data, epochs to convergence and accuracy",
                      ctx, data, display, notes, not sub.empty)


# -- paper 000, California --------------------------------------------------------------------------------
def paper000_california(df: pd.DataFrame, ctx: Context) -> Table:
    sub = select(df, "000", "california")
    notes = []
    control = (sub.sort_values(["seed", "method"]).groupby("seed")[["control_epochs", "control_converged"]].first()
               if {"control_epochs", "control_converged"} <= set(sub.columns) and not sub.empty
               else pd.DataFrame(columns=["control_epochs", "control_converged"]))
    mc_mean, _, _ = stats(control["control_epochs"])
    paper_mc = P.P000_CALIFORNIA["m_o"] / P.P000_CALIFORNIA_MO_OVER_MC
    rows = []
    for label, method in (("m_o", "naive_retrain"), ("m_r", "weight_pruning"), ("m_c", "control"),
                          ("finetune", "finetune")):
        if method == "control":
            epochs = control["control_epochs"]
            n = int(epochs.notna().sum())
            caps = int(is_false(control["control_converged"]).sum())
            collapsed = NAN
            s_c = s_o = dd = pd.Series(dtype=float)
            rule = ""
        else:
            s = sub[sub["method"] == method]
            epochs, n = col(s, "epochs"), len(s)
            caps = int(is_true(col(s, "hit_cap")).sum()) if n else NAN
            collapsed = int(is_true(col(s, "collapsed")).sum()) if n else NAN
            keep = method != "naive_retrain"          # S/d of m_o against itself say nothing
            s_c, s_o, dd = ((col(s, "s_to_control"), col(s, "s_to_oracle"), col(s, "d")) if keep
                            else (pd.Series(dtype=float),) * 3)
            rule = rules(s)
        m, sd, _ = stats(epochs)
        ref = {"m_o": P.P000_CALIFORNIA["m_o"], "m_r": P.P000_CALIFORNIA["m_r"], "m_c": paper_mc}.get(label, NAN)
        ratio = m / mc_mean if not missing(m) and not missing(mc_mean) and mc_mean else NAN
        ref_ratio = {"m_o": P.P000_CALIFORNIA_MO_OVER_MC, "m_c": 1.0}.get(label, NAN)
        row = {"model": label, "method": method, "n": n, "epochs": m, "epochs_sd": sd,
               "cap_hits": caps if n else NAN, "collapsed": collapsed, "epochs_paper": ref,
               "epochs_delta": delta(m, ref), "ratio_to_mc": ratio, "ratio_to_mc_paper": ref_ratio,
               "ratio_to_mc_delta": delta(ratio, ref_ratio)}
        for key, series in (("s_to_control", s_c), ("s_to_oracle", s_o), ("d", dd)):
            mm, ss, _ = stats(series)
            row.update({key: mm, f"{key}_sd": ss})
        row["rule"] = rule
        rows.append(row)
    data = pd.DataFrame(rows)
    d = data
    display = pd.DataFrame({
        "model": d["model"], "method": d["method"], "n": d["n"].map(lambda x: num(x, "int") if x else "0"),
        "epochs": [pm(a, b, ".1f") for a, b in zip(d["epochs"], d["epochs_sd"])],
        "epochs (paper)": [("≈" if m == "m_c" else "") + num(x, ".1f") if not missing(x) else ""
                           for m, x in zip(d["model"], d["epochs_paper"])],
        "Δ epochs": d["epochs_delta"].map(lambda x: num(x, ".1f")),
        "cap hits": [f"{num(c, 'int')}/{num(n, 'int')}" if n and not missing(c) else "" for c, n in zip(d["cap_hits"], d["n"])],
        "collapsed": [f"{num(c, 'int')}/{num(n, 'int')}" if n and not missing(c) else "" for c, n in zip(d["collapsed"], d["n"])],
        "epochs / m_c": d["ratio_to_mc"].map(lambda x: num(x, ".3f")),
        "epochs / m_c (paper)": d["ratio_to_mc_paper"].map(lambda x: num(x, ".3f")),
        "S to control": [pm(a, b) for a, b in zip(d["s_to_control"], d["s_to_control_sd"])],
        "S to oracle": [pm(a, b) for a, b in zip(d["s_to_oracle"], d["s_to_oracle_sd"])],
        "d": [pm(a, b) for a, b in zip(d["d"], d["d_sd"])],
        "rule": d["rule"],
    })
    if sub.empty:
        notes.append("No paper-000 California records in the input: only the paper's numbers are shown.")
    else:
        for label, method in (("m_o", "naive_retrain"), ("m_r", "weight_pruning"), ("finetune", "finetune")):
            if sub[sub["method"] == method].empty:
                notes.append(f"{label} ({method}) was not run: its cells are empty.")
        notes.append("epochs: mean ± sd over seeds (n). Cap hits: runs stopped by the epoch cap (m_c: runs whose "
                     "training did not converge, from `control_converged`); their epochs are a lower bound.")
    notes.append(f"The paper gives m_c only through the ratio m_o/m_c = {P.P000_CALIFORNIA_MO_OVER_MC}: its m_c "
                 f"epochs (≈{paper_mc:.1f}) are derived as {P.P000_CALIFORNIA['m_o']}/{P.P000_CALIFORNIA_MO_OVER_MC}. "
                 f"The paper's convergence threshold is {P.P000_CALIFORNIA_THRESHOLD}.")
    notes.append("S to control / S to oracle: logit L1 distance of the model to m_c / m_o; d = (S to control − "
                 "S to oracle) / |Y|. Not shown for m_o (its S to oracle is 0 by definition) nor m_c (no record of its "
                 "own); m_c's rule is the same preset as m_o's.")
    return make_table("paper000_california", "Paper 000, California housing: epochs to convergence", ctx, data,
                      display, notes, not sub.empty)


# -- paper 002, Table 1 (MNIST) -----------------------------------------------------------------------------
def paper002_table1(df: pd.DataFrame, ctx: Context) -> Table:
    sub = select(df, "002", "table1")
    notes = []
    removed = sub[sub["method"] != "original"] if not sub.empty else sub
    sizes = sorted(int(x) for x in col(removed, "removal_size").dropna().unique())
    if not sizes:
        sizes = list(P.P002_SIZES)
    specs = [("original", 0, P.P002_TABLE1[0])]
    for i, size in enumerate(sizes):
        for method in ("naive_retrain", "random_relabel"):
            ref = next((r for r in P.P002_TABLE1 if i < len(P.P002_SIZES) and r[0] == method
                        and r[1] == P.P002_SIZES[i]), None)
            specs.append((method, size, ref))
    short = {"original": "original", "naive_retrain": "naive", "random_relabel": "relabel"}
    rows = []
    for method, size, ref in specs:
        s = sub[sub["method"] == method] if not sub.empty else sub
        if method != "original" and not s.empty:
            s = s[s["removal_size"] == size]
        label = short[method] if method == "original" else f"{short[method]} {size}"
        row = {"row": label, "method": method, "removal_size": size,
               "paper_row": "" if ref is None else (short[ref[0]] if ref[0] == "original"
                                                   else f"{short[ref[0]]} {ref[1]}"),
               "n": len(s)}
        for key, ref_val in zip(("test_acc", "forget_acc", "total_acc"), ref[2:] if ref else (NAN,) * 3):
            m, sd, _ = stats(col(s, key) * 100)
            row.update({key: m, f"{key}_sd": sd, f"{key}_paper": ref_val, f"{key}_delta": delta(m, ref_val)})
        rows.append(row)
    data = pd.DataFrame(rows)
    d = data
    display = pd.DataFrame({"row": d["row"], "paper row": d["paper_row"], "n": d["n"].map(lambda x: num(x, "int"))})
    for key, label in (("test_acc", "test acc %"), ("forget_acc", "unlearned acc %"), ("total_acc", "total acc %")):
        display[label] = [pm(a, b, ".2f") for a, b in zip(d[key], d[f"{key}_sd"])]
        display[f"{label} (paper)"] = d[f"{key}_paper"].map(lambda x: num(x, ".2f"))
        display[f"Δ {label}"] = d[f"{key}_delta"].map(lambda x: num(x, ".2f"))
    if sub.empty:
        notes.append("No paper-002 Table 1 records in the input: only the paper's numbers are shown "
                     "(rows labelled with the paper's sizes).")
    else:
        for r in rows:
            if r["n"] == 0:
                notes.append(f"{r['row']}: not run, its cells are empty.")
        if sizes[:2] != list(P.P002_SIZES):
            notes.append(f"This run removes {'/'.join(map(str, sizes))} points where the paper removes "
                         f"{'/'.join(map(str, P.P002_SIZES))}: rows are matched by position (first size ↔ 100, "
                         "second ↔ 600), so the paper columns are a reference, not a like-for-like comparison.")
        if len(sizes) > len(P.P002_SIZES):
            notes.append("Sizes beyond the second have no paper row.")
        if r := rules(sub):
            notes.append(f"Rules: {r}.")
    notes.append("Accuracy in %, mean ± sd over seeds (n): standard test set, the unlearned (forget) set with its "
                 "true labels, and the total (test ∪ forget). The original row is measured on the largest forget set.")
    return make_table("paper002_table1", "Paper 002, Table 1: MNIST accuracy after unlearning", ctx, data, display,
                      notes, not sub.empty)


# -- the comparison grid ------------------------------------------------------------------------------------
QUALITY = (("test_acc", "test acc %", 100.0), ("train_acc", "train acc %", 100.0),
           ("test_mse", "test MSE", 1.0), ("train_mse", "train MSE", 1.0), ("total_mse", "total MSE", 1.0))


def quality_metric(s: pd.DataFrame) -> tuple[str, str, float]:
    """The dataset's quality column: test accuracy, else MSE (test, else train where there is no test set)."""
    for key, label, scale in QUALITY:
        if col(s, key).notna().any():
            return key, label, scale
    return "", "", 1.0


def grid(df: pd.DataFrame, ctx: Context) -> Table | None:
    sub = select(df, "grid", "grid")
    if sub.empty:
        return None
    notes = []
    datasets = sorted(sub["dataset"].dropna().unique())
    methods = sorted(sub["method"].dropna().unique(), key=method_key)
    rows = []
    for ds in datasets:
        sd_ = sub[sub["dataset"] == ds]
        qkey, qlabel, qscale = quality_metric(sd_)
        sizes = sorted(col(sd_, "removal_size").dropna().unique())
        for method in methods:
            sm = sd_[sd_["method"] == method]
            if sm.empty:
                rows.append({"dataset": ds, "method": method, "optimizer": "", "lr": NAN, "removal_size": NAN, "n": 0,
                             "metric": qlabel})
                notes.append(f"{method} on {ds}: no records (the method does not apply there or was not run; "
                             "the benchmark lists such cases as skipped): empty cells.")
                continue
            configs = sorted({(str(o), float(lr)) for o, lr in zip(sm["optimizer"].fillna(""), col(sm, "lr").fillna(NAN))},
                             key=lambda c: (c[0], -c[1] if not missing(c[1]) else 0))
            for size in sizes:
                for opt, lr in configs:
                    cell = sm[(sm["removal_size"] == size) & (sm["optimizer"].fillna("") == opt)]
                    cell = cell[col(cell, "lr") == lr] if not missing(lr) else cell
                    row = {"dataset": ds, "method": method, "optimizer": opt, "lr": lr, "removal_size": size,
                           "n": len(cell), "metric": qlabel}
                    for key, values in (("seconds", col(cell, "seconds")),
                                        ("samples_processed", col(cell, "samples_processed")),
                                        ("speedup_vs_naive", col(cell, "speedup_vs_naive")),
                                        ("quality", col(cell, qkey) * qscale if qkey else pd.Series(dtype=float)),
                                        ("d", col(cell, "d"))):
                        m, s, _ = stats(values)
                        row.update({key: m, f"{key}_sd": s})
                    if cell.empty:
                        notes.append(f"{method} ({opt}, lr {num(lr, 'g')}) on {ds} at n={num(size, 'int')}: "
                                     "not run, empty cells.")
                    rows.append(row)
    data = pd.DataFrame(rows)
    for key in ("seconds", "samples_processed", "speedup_vs_naive", "quality", "d"):
        for c in (key, f"{key}_sd"):
            if c not in data.columns:
                data[c] = NAN
    d = data
    display = pd.DataFrame({
        "dataset": d["dataset"], "method": d["method"], "optimizer": d["optimizer"],
        "lr": d["lr"].map(lambda x: num(x, "g")), "removal size": d["removal_size"].map(lambda x: num(x, "int")),
        "n": d["n"].map(lambda x: num(x, "int")),
        "seconds": [pm(a, b, ".3g") for a, b in zip(d["seconds"], d["seconds_sd"])],
        "samples processed": [pm(a, b, ".6g") for a, b in zip(d["samples_processed"], d["samples_processed_sd"])],
        "speedup vs naive": [pm(a, b, ".3g") for a, b in zip(d["speedup_vs_naive"], d["speedup_vs_naive_sd"])],
        "quality metric": d["metric"],
        "quality": [pm(a, b, ".4g") for a, b in zip(d["quality"], d["quality_sd"])],
        "d": [pm(a, b, ".4g") for a, b in zip(d["d"], d["d_sd"])],
    })
    notes.append("mean ± sd over seeds (n). speedup vs naive: naive retraining's seconds / the method's on the "
                 "same forget set. quality: test accuracy (%) for classification; MSE for regression (test MSE, "
                 "or train MSE where the dataset has no test set). optimizer/lr: the relabeling optimizer for "
                 "random_relabel, else the training optimizer.")
    return make_table("grid", "Comparison grid: method × dataset × removal size", ctx, data, display, notes)


# -- overhead ---------------------------------------------------------------------------------------------------
def overhead(df: pd.DataFrame, ctx: Context) -> Table | None:
    sub = select(df, "overhead", "overhead")
    if sub.empty:
        return None
    sub = sub.sort_values(["method", "dataset"], kind="stable")
    data = pd.DataFrame({"benchmark": sub["method"].values, "dataset": sub["dataset"].values,
                         "optimizer": col(sub, "optimizer").values, "size": col(sub, "removal_size").values,
                         "seconds": col(sub, "seconds").values, "bare_seconds": col(sub, "bare_seconds").values,
                         "overhead_ratio": col(sub, "overhead_ratio").values,
                         "overhead_target": col(sub, "overhead_target").values,
                         "within_target": [("yes" if v else "no") if not missing(v) else ""
                                           for v in col(sub, "overhead_within_target")]})
    d = data
    display = pd.DataFrame({
        "benchmark": d["benchmark"], "dataset": d["dataset"],
        "ours (s)": d["seconds"].map(lambda x: num(x, ".4g")), "bare torch (s)": d["bare_seconds"].map(lambda x: num(x, ".4g")),
        "ratio": d["overhead_ratio"].map(lambda x: num(x, ".3f")), "target ≤": d["overhead_target"].map(lambda x: num(x, ".2f")),
        "within target": d["within_target"]})
    notes = ["ours / bare: best of the repeats of each side (seconds of the whole run); fit_vs_bare_loop: our training "
             "loop vs a plain torch loop; relabel_request_vs_step: relabeling requests vs plain optimizer steps."]
    return make_table("overhead", "Harness overhead: our code vs plain torch", ctx, data, display, notes)


# -- headline quantities and the torch-version comparison -------------------------------------------------------
@dataclass
class Headline:
    key: str
    label: str
    paper: float
    ours: float
    spec: str


def headline(tables: dict[str, Table], extended: bool = False) -> list[Headline]:
    """The key cells of each table (ours beside the paper's); `extended` adds grid and overhead cells."""
    out = []
    t1 = tables.get("paper000_table1")
    if t1 is not None:
        avg = t1.data[t1.data["trial"] == "avg"].iloc[0]
        for k, label, spec in (("epoch_ratio", "000 synthetic: mean epoch ratio m_r/m_o", ".4f"),
                               ("mr_epochs", "000 synthetic: mean m_r epochs", ".1f"),
                               ("mo_epochs", "000 synthetic: mean m_o epochs", ".1f"),
                               ("mr_acc", "000 synthetic: mean m_r accuracy", ".3f"),
                               ("mo_acc", "000 synthetic: mean m_o accuracy", ".3f")):
            out.append(Headline(f"p000_t1_{k}", label, avg[f"{k}_paper"], avg[k], spec))
    cal = tables.get("paper000_california")
    if cal is not None:
        by = cal.data.set_index("model")
        out.append(Headline("p000_cal_mo", "000 California: m_o epochs", by.loc["m_o", "epochs_paper"],
                            by.loc["m_o", "epochs"], ".1f"))
        out.append(Headline("p000_cal_mr", "000 California: m_r epochs", by.loc["m_r", "epochs_paper"],
                            by.loc["m_r", "epochs"], ".1f"))
        out.append(Headline("p000_cal_mo_mc", "000 California: m_o/m_c epoch ratio",
                            by.loc["m_o", "ratio_to_mc_paper"], by.loc["m_o", "ratio_to_mc"], ".3f"))
    t2 = tables.get("paper002_table1")
    if t2 is not None:
        for _, r in t2.data.iterrows():
            paper_row = f" (paper: {r['paper_row']})" if r["paper_row"] and r["paper_row"] != r["row"] else ""
            out.append(Headline(f"p002_t1_{r['method']}_{r['removal_size']}_test",
                                f"002 MNIST: {r['row']}{paper_row} test acc %", r["test_acc_paper"], r["test_acc"], ".2f"))
        last = t2.data[t2.data["method"] == "random_relabel"].tail(1)
        if not last.empty:
            r = last.iloc[0]
            paper_row = f" (paper: {r['paper_row']})" if r["paper_row"] and r["paper_row"] != r["row"] else ""
            out.append(Headline("p002_t1_relabel_last_forget", f"002 MNIST: {r['row']}{paper_row} unlearned acc %",
                                r["forget_acc_paper"], r["forget_acc"], ".2f"))
    if extended:
        g = tables.get("grid")
        if g is not None:
            for (ds, method), s in g.data.groupby(["dataset", "method"], sort=False):
                if method == "naive_retrain":
                    continue
                out.append(Headline(f"grid_{ds}_{method}_speedup", f"grid {ds}: {method} mean speedup vs naive",
                                    NAN, stats(s["speedup_vs_naive"])[0], ".3g"))
        o = tables.get("overhead")
        if o is not None:
            for _, r in o.data.iterrows():
                out.append(Headline(f"overhead_{r['benchmark']}", f"overhead: {r['benchmark']} ratio",
                                    NAN, r["overhead_ratio"], ".3f"))
    return out


def headline_table(tables: dict[str, Table], ctx: Context) -> Table:
    """The README's opening comparison: the key cells, paper vs ours."""
    rows = headline(tables)
    data = pd.DataFrame([{"quantity": h.label, "paper": h.paper, "ours": h.ours, "delta": delta(h.ours, h.paper)}
                         for h in rows], columns=["quantity", "paper", "ours", "delta"])
    specs = [h.spec for h in rows]
    display = pd.DataFrame({"quantity": data["quantity"],
                            "paper": [num(x, s) for x, s in zip(data["paper"], specs)],
                            "ours": [num(x, s) for x, s in zip(data["ours"], specs)],
                            "Δ": [num(x, s) for x, s in zip(data["delta"], specs)]})
    notes = ["Empty: not in this run."] if data["ours"].isna().any() else []
    return make_table("headline", "Headline: the papers' key numbers beside ours", ctx, data, display, notes)


def torch_versions(per_torch: dict[str, dict[str, Table]], ctx: Context) -> Table | None:
    """The headline cells side by side per torch version; None for a single version."""
    if len(per_torch) < 2:
        return None
    lines: dict[str, Headline] = {}
    values: dict[str, dict[str, float]] = {}
    for version, tables in per_torch.items():
        for h in headline(tables, extended=True):
            lines.setdefault(h.key, h)
            values.setdefault(h.key, {})[version] = h.ours
    versions = list(per_torch)
    rows, disp = [], []
    for key, h in lines.items():
        rows.append({"quantity": h.label, "paper": h.paper, **{f"torch {v}": values[key].get(v, NAN) for v in versions}})
        disp.append({"quantity": h.label, "paper": num(h.paper, h.spec),
                     **{f"torch {v}": num(values[key].get(v, NAN), h.spec) for v in versions}})
    data, display = pd.DataFrame(rows), pd.DataFrame(disp)
    notes = [f"Each torch version's cells come from its own runs of profile {ctx.profile} (machine_info.torch). "
             "Empty: not in that version's runs."]
    return make_table("torch_versions", "Headline cells per torch version", ctx, data, display, notes)


def build(df: pd.DataFrame, ctx: Context) -> dict[str, Table]:
    """Every table the records support (the paper tables always: the paper's numbers at least)."""
    out = {"paper000_table1": paper000_table1(df, ctx), "paper000_california": paper000_california(df, ctx),
           "paper002_table1": paper002_table1(df, ctx)}
    for name, fn in (("grid", grid), ("overhead", overhead)):
        t = fn(df, ctx)
        if t is not None:
            out[name] = t
    return out


def series_matrix(series: list) -> np.ndarray:
    """Series of different lengths as one array, aligned at index 0 and padded with NaN."""
    series = [list(s) if isinstance(s, (list, tuple, np.ndarray)) else [] for s in series]
    width = max((len(s) for s in series), default=0)
    out = np.full((len(series), width), np.nan)
    for i, s in enumerate(series):
        out[i, :len(s)] = [NAN if v is None else float(v) for v in s]
    return out
