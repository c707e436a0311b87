"""The report's figures (PNG, seaborn on matplotlib's Agg backend).

Each function returns a `Figure`: the file it wrote (None when the input holds no data for
it: then `note` says why) and sentences comparing ours with the paper, computed from the
plotted numbers. Per-epoch series of different lengths are aligned at epoch 0 and padded
with NaN, so a mean at epoch e is over the trials still running at e. Panels of several
datasets are ordered by dataset size (`common.dataset_order`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import paper as P
from .common import col, dataset_order, method_key, missing, num, plural, quality_metric, select, series_matrix, stats
from .tables import Context
from .tables.forgetting import FORGOT_FRACTION
from .tables.sweeps import KNOBS, knob_rows

DPI = 110
OPT_ORDER = ("adadelta", "adam", "sgd")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LABEL = {"weight_pruning": "m_r (weight_pruning)", "finetune": "finetune (warm start)",
         "naive_retrain": "m_o (naive retraining)", "control": "m_c (control)"}
LOSS_METHODS = ("naive_retrain", "weight_pruning", "finetune")


@dataclass
class Figure:
    name: str
    title: str
    file: str | None = None
    note: str = ""
    sentences: list[str] = field(default_factory=list)
    error: str = ""


# -- shared ---------------------------------------------------------------------------------------------------------
def _save(fig, folder: Path, name: str) -> str:
    fname = f"{name}.png"
    fig.savefig(folder / fname, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return fname


def _suptitle(fig, ctx: Context, title: str):
    fig.suptitle(ctx.caption(title).replace(" (profile", "\n(profile", 1), fontsize=10)


def _one_legend(fig, axes, title: str | None = None):
    """One legend for the figure, right of the panels (the panels share their series)."""
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if labels:
        fig.legend([handles[lab] for lab in labels], labels, loc="outside right center", fontsize=8, title=title,
                   title_fontsize=8)


def _theme():
    return sns.axes_style("whitegrid")


def _trials(n: int) -> str:
    return f"{n} {plural(n, 'trial')}"


def _series_long(sub: pd.DataFrame, key: str, label: str, prepend: str | None = None) -> pd.DataFrame:
    """One row per (record, epoch): NaN-padded to the longest series of `sub`."""
    series = []
    for _, r in sub.iterrows():
        s = r.get(key)
        s = list(s) if isinstance(s, list) else []
        if prepend is not None and s and not missing(r.get(prepend)) and len(s) == r.get("epochs"):
            s = [r[prepend], *s]            # loss_series starts after epoch 1: put the loss before it first
        series.append(s)
    mat = series_matrix(series)
    if mat.size == 0:
        return pd.DataFrame(columns=["trial", "epoch", "value", "series"])
    trials = list(sub["trial"]) if "trial" in sub else list(range(len(sub)))
    frame = pd.DataFrame(mat, index=pd.Index(trials, name="trial")).reset_index()
    long = frame.melt(id_vars="trial", var_name="epoch", value_name="value")
    long["series"] = label
    return long


def _having(df: pd.DataFrame, paper: str, table: str, key: str) -> pd.DataFrame:
    """The records of one paper's table that have `key` set."""
    sub = select(df, paper, table)
    return sub[col(sub, key).notna()] if not sub.empty else sub


def _datasets_with(df: pd.DataFrame, sub: pd.DataFrame, key: str) -> list[str]:
    """The datasets of `sub` that have at least one record with `key` (a series) set, smallest first."""
    if sub.empty:
        return []
    return [d for d in dataset_order(df, sub["dataset"].dropna()) if col(sub[sub["dataset"] == d], key).notna().any()]


def _panel_row(n: int):
    """One row of `n` panels, one per dataset."""
    return plt.subplots(1, n, figsize=(5.2 * n, 3.8), squeeze=False, layout="constrained")


def _paper000(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([select(df, "000", "table1"), select(df, "000", "california")])


def _pruned(df: pd.DataFrame) -> pd.DataFrame:
    sub = _paper000(df)
    return sub[sub["method"] == "weight_pruning"] if not sub.empty else sub


def _first_values(series: pd.Series) -> float:
    """The mean of the series' first values (the value right after pruning)."""
    return stats([v[0] for v in series if isinstance(v, list) and v])[0]


# -- paper 002, Figure 1 ------------------------------------------------------------------------------------------
def _checkpoints(sub: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per (record, checkpoint) with accuracy in %; and the count of records without usable series."""
    rows, bad = [], 0
    for _, r in sub.iterrows():
        sizes, acc = r.get("checkpoint_sizes"), r.get("checkpoint_test_acc")
        if not isinstance(sizes, list) or not isinstance(acc, list) or len(sizes) != len(acc) or not sizes:
            bad += 1
            continue
        rows += [{"optimizer": r["optimizer"], "lr": float(r["lr"]), "seed": r["seed"], "size": int(s),
                  "acc": 100.0 * float(a)} for s, a in zip(sizes, acc, strict=True) if a is not None]
    return pd.DataFrame(rows), bad


def _draw_figure1(long: pd.DataFrame, opts: list[str], ctx: Context, out: Figure, folder: Path) -> None:
    long["lr "] = long["lr"].map(lambda x: f"{x:g}")
    lrs = [f"{x:g}" for x in sorted(long["lr"].unique(), reverse=True)]
    palette = dict(zip(lrs, sns.color_palette("viridis", len(lrs)), strict=True))
    with _theme():
        fig, axes = plt.subplots(1, len(opts), figsize=(4.2 * len(opts), 3.8), sharey=True, squeeze=False,
                                 layout="constrained")
        for ax, opt in zip(axes[0], opts, strict=True):
            sns.lineplot(data=long[long["optimizer"] == opt], x="size", y="acc", hue="lr ", hue_order=lrs,
                         palette=palette, errorbar="sd", marker="o", ax=ax)
            ax.axhline(P.P002_RANDOM_GUESS, ls="--", color="0.4", lw=1, label="random guess (10%)")
            ax.set(title=opt, xlabel="removal size", ylabel="test accuracy (%)", ylim=(0, 100))
        _one_legend(fig, axes[0], "lr")
        _suptitle(fig, ctx, out.title + " (mean ± sd over seeds)")
        out.file = _save(fig, folder, out.name)


def _figure1_sentences(long: pd.DataFrame, opts: list[str]) -> list[str]:
    largest = int(long["size"].max())
    at = long[long["size"] == largest].groupby("optimizer")["acc"].mean()
    best = max(opts, key=lambda o: at.get(o, -1))
    parts = ", ".join(f"{o} {at[o]:.1f}%" for o in opts if o in at.index)
    out = [f"After {largest} removals our mean test accuracy (over learning rates and seeds) is: "
           f"{parts}; the most robust optimizer here is {best}. The paper reports that "
           f"{P.P002_FIGURE1_FINDING} (removal sizes 50–400)."]
    near = [o for o in opts if o in at.index and at[o] <= 2 * P.P002_RANDOM_GUESS]
    if near:
        out.append(f"At {largest} removals {', '.join(near)} {'is' if len(near) == 1 else 'are'} within "
                   f"twice the random-guess rate ({P.P002_RANDOM_GUESS:.0f}%).")
    return out


def paper002_figure1(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    out = Figure("paper002_figure1", "Paper 002, Figure 1: test accuracy vs removal size")
    long, bad = _checkpoints(select(df, "002", "figure1"))
    if long.empty:
        out.note = "not drawn: the input holds no paper-002 Figure 1 records with checkpoint series."
        return out
    opts = sorted(long["optimizer"].unique(), key=lambda o: (OPT_ORDER.index(o) if o in OPT_ORDER else 9, o))
    _draw_figure1(long, opts, ctx, out, folder)
    out.sentences += _figure1_sentences(long, opts)
    if bad:
        out.note = f"{bad} record(s) without usable checkpoint series were left out."
    return out


# -- paper 000 curves ---------------------------------------------------------------------------------------------
def _distance_panel(ax, s: pd.DataFrame, ds: str, first: bool) -> str:
    """One dataset's S curves; the sentence on where m_r ends."""
    long = pd.concat([_series_long(s, "s_to_control_series", "S(m_r, m_c)"),
                      _series_long(s, "s_to_oracle_series", "S(m_r, m_o)")]).dropna(subset=["value"])
    sns.lineplot(data=long, x="epoch", y="value", hue="series", errorbar="sd", ax=ax)
    ax.set(title=f"{ds} ({_trials(len(s))})", xlabel="fine-tune epoch", ylabel="logit L1 distance S" if first else "")
    sc, so = stats(col(s, "s_to_control"))[0], stats(col(s, "s_to_oracle"))[0]
    start_o = _first_values(s["s_to_oracle_series"])
    return (f"{ds}: after the fine-tune S(m_r, m_o) is {num(so)} and S(m_r, m_c) {num(sc)} (mean over "
            f"{_trials(len(s))}), so m_r ends closer to {'m_o' if so < sc else 'm_c'}; S(m_r, m_o) went from "
            f"{num(start_o)} right after pruning to {num(so)} ({'down' if so < start_o else 'up'}).")


def _pruning_panels(df: pd.DataFrame, ctx: Context, folder: Path, out: Figure, panel, *, what: str,
                    caption: str, legend: bool) -> bool:
    """One panel per dataset with weight-pruning series of paper 000 (`panel(ax, records, dataset, first)`
    draws one and returns its sentence); False, with a note, when the input has none."""
    sub = _pruned(df)
    datasets = _datasets_with(df, sub, "d_series")
    if not datasets:
        out.note = f"not drawn: no weight_pruning records of paper 000 with {what} series in the input."
        return False
    with _theme():
        fig, axes = _panel_row(len(datasets))
        for ax, ds in zip(axes[0], datasets, strict=True):
            out.sentences.append(panel(ax, sub[sub["dataset"] == ds], ds, ax is axes[0][0]))
        if legend:
            _one_legend(fig, axes[0])
        _suptitle(fig, ctx, out.title + caption)
        out.file = _save(fig, folder, out.name)
    return True


def paper000_distance(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    out = Figure("paper000_distance", "Paper 000: logit L1 distance of m_r to m_c and m_o during the fine-tune")
    if _pruning_panels(df, ctx, folder, out, _distance_panel, what="S", caption=" (mean ± sd over trials)",
                       legend=True):
        out.sentences.append("The paper reports that pruning brings m_r's predictions closer to m_o's, and that "
                             "on California S is generally decreasing.")
    return out


def _d_panel(ax, s: pd.DataFrame, ds: str, first: bool) -> str:
    """One dataset's d curve (about 40 epochs shown); the sentence on its trend."""
    long = _series_long(s, "d_series", "d")
    width = int(long["epoch"].max()) + 1 if not long.empty else 0
    keep = set(np.unique(np.linspace(0, max(width - 1, 0), min(width, 40)).round().astype(int)))
    long = long[long["epoch"].isin(keep)].dropna(subset=["value"])
    sns.lineplot(data=long, x="epoch", y="value", errorbar="sd", err_style="bars", marker="o", ax=ax,
                 err_kws={"capsize": 2})
    ax.axhline(0, color="0.4", lw=1, ls="--")
    ax.set(title=f"{ds} ({_trials(len(s))})", xlabel="fine-tune epoch",
           ylabel="d = (S(m_r,m_c) − S(m_r,m_o)) / |Y|" if first else "")
    start = _first_values(s["d_series"])
    end, sd, n = stats(col(s, "d"))
    return (f"{ds}: our d {'rises' if end > start else 'falls'} from {num(start)} right after pruning to {num(end)}"
            f"{'' if missing(sd) else f' ± {num(sd)}'} after the fine-tune (mean over {_trials(n)}); "
            "positive d means m_r is closer to m_o than to m_c.")


def paper000_d(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    out = Figure("paper000_d", "Paper 000: deletion metric d over the fine-tune")
    if _pruning_panels(df, ctx, folder, out, _d_panel, what="d", legend=False,
                       caption=" (mean ± 1 sd over trials; about 40 epochs shown)"):
        out.sentences.append("The paper reports d becoming increasingly positive on the synthetic data.")
        out.note = "Trials stop at different epochs: a point averages the trials still fine-tuning at that epoch."
    return out


def _threshold(rule: str) -> float | None:
    m = re.search(r"<\s*([0-9.]+(?:e-?\d+)?)", rule or "")
    return float(m.group(1)) if m else None


def _loss_curves(s: pd.DataFrame) -> pd.DataFrame:
    """Every model's loss curve on one dataset (m_c's from the oracle records that carry it)."""
    parts = [_series_long(s[s["method"] == m], "loss_series", LABEL[m], prepend="initial_loss")
             for m in LOSS_METHODS if not s[s["method"] == m].empty]
    oracle = s[s["method"] == "naive_retrain"]
    if not oracle.empty and "control_loss_series" in oracle:
        parts.append(_series_long(oracle, "control_loss_series", LABEL["control"], prepend="control_initial_loss"))
    return pd.concat(parts).dropna(subset=["value"])


def _loss_panel(ax, s: pd.DataFrame, ds: str, first: bool) -> list[str]:
    """One dataset's loss curves and convergence threshold; a sentence per model."""
    sns.lineplot(data=_loss_curves(s), x="epoch", y="value", hue="series", errorbar="sd", ax=ax)
    thr = _threshold(next(iter(col(s, "rule").dropna()), ""))
    if thr is not None:
        ax.axhline(thr, color="0.4", lw=1, ls="--", label=f"threshold {thr:g}")
    ax.set(title=ds, xlabel="epoch (m_o, m_c: from scratch; m_r, finetune: of the fine-tune)",
           ylabel="training loss" if first else "", yscale="log")
    out = []
    for m in LOSS_METHODS:
        sm = s[s["method"] == m]
        if not sm.empty:
            out.append(f"{ds}, {LABEL[m]}: the loss starts at {num(stats(col(sm, 'initial_loss'))[0])} and ends at "
                       f"{num(stats(col(sm, 'final_loss'))[0])} after {num(stats(col(sm, 'epochs'))[0], '.1f')} "
                       f"epochs (means over {len(sm)} {plural(len(sm), 'run')}).")
    return out


def paper000_loss(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Paper 000: training loss of m_o, m_c and the fine-tunes of m_r and finetune"
    out = Figure("paper000_loss", title)
    sub = _paper000(df)
    sub = sub[sub["method"].isin(LOSS_METHODS)] if not sub.empty else sub
    datasets = _datasets_with(df, sub, "loss_series")
    if not datasets:
        out.note = "not drawn: no paper-000 records with loss series in the input."
        return out
    with _theme():
        fig, axes = _panel_row(len(datasets))
        for ax, ds in zip(axes[0], datasets, strict=True):
            out.sentences += _loss_panel(ax, sub[sub["dataset"] == ds], ds, ax is axes[0][0])
        _one_legend(fig, axes[0])
        _suptitle(fig, ctx, title + " (mean ± sd over trials)")
        out.file = _save(fig, folder, out.name)
    return out


# -- cost vs quality (grid) -----------------------------------------------------------------------------------------
@dataclass
class _Style:
    """What every cost-vs-quality panel shares: hue per method, marker per optimizer, size per removal size."""

    methods: list[str]
    palette: dict
    optimizers: list[str]
    markers: dict
    size_norm: tuple[float, float] | None

    @classmethod
    def of(cls, sub: pd.DataFrame) -> _Style:
        methods = sorted(sub["method"].unique(), key=method_key)
        optimizers = sorted(sub["optimizer"].fillna("").unique())
        sizes = col(sub, "removal_size")
        return cls(methods, dict(zip(methods, sns.color_palette("deep", len(methods)), strict=True)), optimizers,
                   dict(zip(optimizers, MARKERS * 3, strict=False)),
                   (float(sizes.min()), float(sizes.max())) if sizes.notna().any() else None)


def _cost_panels(axes, j: int, s: pd.DataFrame, ds: str, style: _Style) -> str:
    """Dataset `ds`'s two panels (quality and d against seconds) in column j; returns the quality label."""
    qkey, qlabel, qscale = quality_metric(s)
    s["quality"] = col(s, qkey) * qscale if qkey else np.nan
    s["removal size"] = col(s, "removal_size").fillna(0).round().astype(int)
    s["optimizer"] = s["optimizer"].fillna("")
    log = s["seconds"].max() > 10 * s["seconds"].min()
    for i, (y, ylabel) in enumerate((("quality", qlabel or "quality"), ("d", "deletion metric d"))):
        ax = axes[i][j]
        sns.scatterplot(data=s, x="seconds", y=y, hue="method", hue_order=style.methods, palette=style.palette,
                        style="optimizer", style_order=style.optimizers, markers=style.markers, size="removal size",
                        size_norm=style.size_norm, sizes=(30, 140), ax=ax)
        ax.set(xscale="log" if log else "linear", xlabel="seconds" + (" (log)" if log else ""),
               ylabel=ylabel, title=ds if i == 0 else "")
    return qlabel


def _cost_sentence(s: pd.DataFrame, ds: str, qlabel: str) -> str | None:
    """The fastest unlearning method on one dataset against naive retraining (None: only naive retraining)."""
    naive = s[s["method"] == "naive_retrain"]
    t_naive, q_naive = stats(naive["seconds"])[0], stats(naive["quality"])[0]
    means = s[s["method"] != "naive_retrain"].groupby("method")[["seconds", "quality", "d"]].mean()
    if means.empty:
        return None
    fastest = means.loc[means["seconds"].idxmin()]
    than = "faster" if fastest["seconds"] < t_naive else "not faster"
    return (f"{ds}: the fastest unlearning method on average is {fastest.name} ({num(fastest['seconds'], '.3g')}"
            f" s, {than} than naive retraining's {num(t_naive, '.3g')} s), with {qlabel} "
            f"{num(fastest['quality'])} (naive: {num(q_naive)}) and d {num(fastest['d'])}.")


def cost_vs_quality(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Comparison grid: cost vs quality"
    out = Figure("cost_vs_quality", title)
    sub = _having(df, "grid", "grid", "seconds")
    if sub.empty:
        out.note = "not drawn: no grid records in the input."
        return out
    datasets = dataset_order(df, sub["dataset"].dropna())
    style = _Style.of(sub)
    with _theme():
        fig, axes = plt.subplots(2, len(datasets), figsize=(5.2 * len(datasets), 7.2), squeeze=False,
                                 layout="constrained")
        for j, ds in enumerate(datasets):
            s = sub[sub["dataset"] == ds].copy()
            qlabel = _cost_panels(axes, j, s, ds, style)
            if (sentence := _cost_sentence(s, ds, qlabel)) is not None:
                out.sentences.append(sentence)
        _one_legend(fig, [a for row in axes for a in row])
        _suptitle(fig, ctx, title + " (one point per record)")
        out.file = _save(fig, folder, out.name)
    return out


# -- forgetting (the audit, its sweeps) -----------------------------------------------------------------------------
FLOOR = 1e-3      # seconds at which zero-cost runs (the no-op) are drawn on the log cost axis
EPS_SHOWN = 8.0   # the ε histograms' last bin holds every ε at or above this (ε is clipped at 50)


def _utility(s: pd.DataFrame) -> tuple[pd.Series, str]:
    """Test accuracy (%) where the records have it, else −MSE (larger is better either way), and its label."""
    acc = col(s, "test_acc")
    return (acc * 100, "test acc %") if acc.notna().any() else (-col(s, "test_mse"), "−test MSE")


def _relative_utility(s: pd.DataFrame) -> pd.Series:
    """Each record's test utility against naive retraining's on the same cell (accuracy ratio, or
    retraining's MSE / the record's): 1 is as good as retraining, on one scale for every dataset."""
    keys = ["dataset", "forget_regime", "removal_size"]
    acc = col(s, "test_acc").notna().any()
    u = col(s, "test_acc") if acc else col(s, "test_mse")
    ref = s.assign(u=u)[s["method"] == "naive_retrain"].groupby(keys)["u"].mean()
    base = pd.Series([ref.get(k, np.nan) for k in zip(*(s[c] for c in keys), strict=True)], index=s.index)
    return u / base if acc else base / u


def forgetting_pareto(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Forgetting: cost against the forgetting gap 1 − F / ceiling"
    out = Figure("forgetting_pareto", title)
    sub = _having(df, "forgetting", "forgetting", "forget_quality_normalised")
    if sub.empty:
        out.note = "not drawn: no forgetting records in the input."
        return out
    datasets = dataset_order(df, sub["dataset"].dropna())
    methods = sorted(sub["method"].unique(), key=method_key)
    palette = dict(zip(methods, sns.color_palette("deep", len(methods)), strict=True))
    regimes = sorted(sub["forget_regime"].dropna().unique())
    with _theme():
        fig, axes = _panel_row(len(datasets))
        for ax, ds in zip(axes[0], datasets, strict=True):
            s = sub[sub["dataset"] == ds].copy()
            s["utility vs retraining"] = _relative_utility(s).clip(0.5, 1.1)
            s["seconds"] = col(s, "seconds").fillna(0).clip(lower=FLOOR)
            s["forgetting gap"] = 1 - col(s, "forget_quality_normalised")
            sns.scatterplot(data=s, x="seconds", y="forgetting gap", hue="method", hue_order=methods, palette=palette,
                            style="forget_regime", style_order=regimes, size="utility vs retraining",
                            size_norm=(0.5, 1.1), sizes=(15, 170), ax=ax)
            ax.axhline(1 - FORGOT_FRACTION, color="grey", lw=0.8, ls="--")
            ax.set(xscale="log", xlabel=f"seconds per model (log; zero cost at {FLOOR:g})",
                   ylabel="1 − F / ceiling (0: as retraining)", title=ds)
            means = s.groupby("method")[["seconds", "forgetting gap"]].mean()
            front = [m for m in means.index if not any(
                (means.loc[o, "seconds"] <= means.loc[m, "seconds"]) and (means.loc[o, "forgetting gap"]
                                                                          < means.loc[m, "forgetting gap"])
                for o in means.index if o != m)]
            out.sentences.append(f"{ds}: on average over its cells, no method is both cheaper and closer to "
                                 f"retraining than {', '.join(sorted(front, key=method_key))} (the Pareto front).")
        _one_legend(fig, axes[0])
        _suptitle(fig, ctx, title + f" (one point per cell; dashed: 1 − {FORGOT_FRACTION}; marker size: test "
                                    "utility / retraining's, clipped to 0.5–1.1)")
        out.file = _save(fig, folder, out.name)
    return out


def epsilon_histograms(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Per-example ε against the retrained reference models"
    out = Figure("epsilon_histograms", title)
    sub = select(df, "forgetting", "forgetting")
    rows = [{"method": r["method"], "regime": r["forget_regime"], "epsilon": float(e)}
            for _, r in sub.iterrows() if isinstance(r.get("epsilon_per_example"), list)
            for e in r["epsilon_per_example"] if e is not None]
    if not rows:
        out.note = "not drawn: no per-example ε in the input."
        return out
    long = pd.DataFrame(rows)
    methods = sorted(long["method"].unique(), key=method_key)
    caps = sorted(col(sub, "epsilon_cap").dropna().unique())
    with _theme():
        fig, axes = _panel_row(len(methods))
        for ax, m in zip(axes[0], methods, strict=True):
            sns.histplot(data=long[long["method"] == m].assign(epsilon=lambda d: d["epsilon"].clip(upper=EPS_SHOWN)),
                         x="epsilon", hue="regime", binwidth=0.5, binrange=(0, EPS_SHOWN + 0.5),
                         element="step", stat="probability", common_norm=False, ax=ax)
            for cap in caps:
                ax.axvline(cap, color="grey", lw=0.8, ls="--")
            ax.set(title=m, xlabel="ε per forget example", ylabel="share of examples")
        _suptitle(fig, ctx, title + f" (dashed: the cap ⌈ln(N − 1)⌉; ε ≥ {EPS_SHOWN:g} in the last bin; all datasets "
                                    "and sizes)")
        out.file = _save(fig, folder, out.name)
    for regime, g in long.groupby("regime"):
        means = g.groupby("method")["epsilon"].mean()
        out.sentences.append(f"{regime}: mean ε " + ", ".join(f"{m} {num(means[m], '.2f')}"
                                                             for m in sorted(means.index, key=method_key)) + ".")
    return out


def tradeoff_curves(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Trade-off curves: utility and forgetting against each method's knob"
    out = Figure("tradeoff_curves", title)
    knobs = knob_rows(df)
    full = select(df, "002", "lr_sweep")
    if knobs.empty and full.empty:
        out.note = "not drawn: no sweep records in the input."
        return out
    frames, ulabel = [], "test acc %"
    if not knobs.empty:
        k = knobs.copy()
        k["utility"], ulabel = _utility(k)
        k["curve"] = k["dataset"] + " " + k["forget_regime"]
        frames.append(k[["knob", "value", "curve", "utility", "forget_quality_normalised", "mia_gap"]])
    if not full.empty:
        f = full.assign(knob="lr", value=col(full, "lr"), curve="mnist full (Table 1 seeds)",
                        utility=col(full, "test_acc") * 100, forget_quality_normalised=np.nan,
                        mia_gap=col(full, "mia_gap"))
        frames.append(f[["knob", "value", "curve", "utility", "forget_quality_normalised", "mia_gap"]])
    long = pd.concat(frames, ignore_index=True)
    rows = [k for k in KNOBS if (long["knob"] == k).any()]
    ulabel += " (classification only)" if ulabel.startswith("test acc") else ""
    cols = (("utility", ulabel), ("forget_quality_normalised", "F / ceiling"),
            ("mia_gap", "MIA gap"))
    with _theme():
        fig, axes = plt.subplots(len(rows), len(cols), figsize=(15, 3.8 * len(rows)), squeeze=False,
                                 layout="constrained")
        curves = sorted(long["curve"].unique())
        palette = dict(zip(curves, sns.color_palette("tab10", len(curves)), strict=True))
        for i, knob in enumerate(rows):
            g = long[long["knob"] == knob]
            for j, (key, label) in enumerate(cols):
                ax = axes[i][j]
                sns.lineplot(data=g, x="value", y=key, hue="curve", palette=palette, marker="o", errorbar="sd", ax=ax)
                ticks = sorted(g["value"].dropna().unique())
                ax.set(xscale="log", xlabel=f"{KNOBS[knob][1]}: {KNOBS[knob][0]} (log)", ylabel=label)
                ax.set_xticks(ticks, [f"{v:g}" for v in ticks], rotation=45, fontsize=7)
                ax.minorticks_off()
            for curve, c in g.groupby("curve"):
                means = c.groupby("value")[["utility", "forget_quality_normalised"]].mean()
                if means["forget_quality_normalised"].notna().any():
                    best = means["forget_quality_normalised"].idxmax()
                    out.sentences.append(f"{KNOBS[knob][1]}, {curve}: F / ceiling is highest, "
                                         f"{num(means.loc[best, 'forget_quality_normalised'], '.2f')}, at "
                                         f"{KNOBS[knob][0]} {num(best, 'g')} (utility "
                                         f"{num(means.loc[best, 'utility'], '.4g')}).")
        _one_legend(fig, [a for row in axes for a in row])
        _suptitle(fig, ctx, title + " (mean ± sd over records)")
        out.file = _save(fig, folder, out.name)
    return out


FIGURES = (paper002_figure1, paper000_distance, paper000_d, paper000_loss, cost_vs_quality, forgetting_pareto,
           epsilon_histograms, tradeoff_curves)
NAMES = tuple(fn.__name__ for fn in FIGURES)


def build(df: pd.DataFrame, ctx: Context, folder: Path) -> list[Figure]:
    """Every figure; one that fails on unexpected data is reported (`error`), not drawn, and the rest go on."""
    out = []
    for fn in FIGURES:
        try:
            out.append(fn(df, ctx, folder))
        except Exception as exc:       # a figure must not cost the whole report
            plt.close("all")
            (folder / f"{fn.__name__}.png").unlink(missing_ok=True)
            msg = f"{type(exc).__name__}: {exc}"
            out.append(Figure(fn.__name__, fn.__name__, note=f"not drawn: the figure failed on this input ({msg}).",
                              error=msg))
    return out
