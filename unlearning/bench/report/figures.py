"""The report's figures (PNG, seaborn on matplotlib's Agg backend).

Each function returns a `Figure`: the file it wrote (None when the input holds no data for
it: then `note` says why) and sentences comparing ours with the paper, computed from the
plotted numbers. Per-epoch series of different lengths are aligned at epoch 0 and padded
with NaN, so a mean at epoch e is over the trials still running at e. Panels of several
datasets are ordered by dataset size (`common.dataset_order`).

What every figure keeps to: each axis that measures quality or cost says which way is better; log axes have plain
tick labels (0.002, 1, 40); a tick label that would overlap its neighbour is left blank (`_unclutter`, before every
save); records of zero cost, which a log axis cannot show, are drawn at a dashed floor below the cheapest timed
record, whose tick reads 0 (`zero_floor`); a figure has one legend, one section per encoding (colour, marker, size,
lines), drawn from the encodings themselves, not merged from the panels.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter, LogLocator, NullFormatter

from ...evaluation import verdict as V
from . import paper as P
from .common import (
    PRESET,
    ci,
    col,
    dataset_order,
    labelled,
    method_key,
    missing,
    num,
    plural,
    quality_metric,
    select,
    series_matrix,
    stats,
)
from .tables import Context
from .tables.ranking import Ranking
from .tables.sweeps import KNOBS, knob_rows

DPI = 110
OPT_ORDER = ("adadelta", "adam", "sgd")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LABEL = {"weight_pruning": "m_r (weight_pruning)", "finetune": "finetune (warm start)",
         "naive_retrain": "m_o (naive retraining)", "control": "m_c (control)"}
LOSS_METHODS = ("naive_retrain", "weight_pruning", "finetune")
HIGHER, LOWER = "higher is better", "lower is better"
FLOOR_LABEL = "0 s (drawn at floor)"
FLOOR_NOTE = ("Zero-cost records (the no-op: 0 s) cannot sit on a log axis: they are drawn at the dashed floor, a "
              "power of ten at least half a decade below the cheapest timed record; its tick reads 0.")
FLOOR_STYLE = {"color": "0.35", "lw": 0.9, "ls": (0, (4, 3))}
TICK_GAP = 3.0        # pixels between neighbouring tick labels, at least
LEGEND_ROWS = 18      # entries per legend column: beyond, the legend takes another column (a row of panels is 3.8 in)
HOLLOW_EDGE = 1.5     # outline width of hollow markers (a method at its tuned point)
# one colour per method: seaborn's "deep" (10), then black, Dark2's teal and gold and navy (hues "deep" lacks), then
# evenly spaced husl hues for any further method
EXTRA_COLOURS = ("#000000", "#1b9e77", "#e6ab02", "#000080")


@dataclass
class Figure:
    name: str
    title: str
    file: str | None = None
    note: str = ""
    sentences: list[str] = field(default_factory=list)
    error: str = ""
    dataset: str | None = None      # a figure of one dataset (the ranking's): shown in that dataset's section


# -- shared ---------------------------------------------------------------------------------------------------------
def _save(fig, folder: Path, name: str) -> str:
    fname = f"{name}.png"
    _unclutter(fig)
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


def shown_ticks(axis) -> list:
    """The major ticks of `axis` inside its view with a label shown, in axis order."""
    lo, hi = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_visible()
             and t.label1.get_text()]
    return sorted(ticks, key=lambda t: t.get_loc())


def _overlap(a, b, horizontal: bool) -> bool:
    """Whether the display boxes `a` and `b` (b after a along the axis) are closer than TICK_GAP."""
    return b.x0 < a.x1 + TICK_GAP if horizontal else b.y0 < a.y1 + TICK_GAP


def _renderer(fig):
    """`fig` drawn, and the renderer it was drawn with (an Agg canvas where pyplot has already closed it)."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def overlapping_ticks(fig) -> list[str]:
    """Pairs of neighbouring tick labels that overlap, on every axis of `fig` ("'0.002' and '0.003'"), after a draw."""
    renderer = _renderer(fig)
    out = []
    for ax in fig.axes:
        for axis, horizontal in ((ax.xaxis, True), (ax.yaxis, False)):
            ticks = shown_ticks(axis)
            boxes = [t.label1.get_window_extent(renderer) for t in ticks]
            out += [f"{ticks[i].label1.get_text()!r} and {ticks[i + 1].label1.get_text()!r}"
                    for i in range(len(ticks) - 1) if _overlap(boxes[i], boxes[i + 1], horizontal)]
    return out


def _thin(axis, renderer, horizontal: bool) -> None:
    """Blank each tick label of `axis` that would overlap the last one kept (in axis order; the first is kept)."""
    ticks = shown_ticks(axis)
    kept, last, texts = 0, None, []
    for t in ticks:
        box = t.label1.get_window_extent(renderer)
        keep = last is None or not _overlap(last, box, horizontal)
        texts.append(t.label1.get_text() if keep else "")
        if keep:
            kept, last = kept + 1, box
    if kept < len(ticks):
        axis.set_major_locator(FixedLocator([t.get_loc() for t in ticks]))
        axis.set_major_formatter(FixedFormatter(texts))


def _unclutter(fig) -> None:
    """No two tick labels of `fig` overlap: those that would are left blank (the tick mark stays)."""
    renderer = _renderer(fig)
    for ax in fig.axes:
        _thin(ax.xaxis, renderer, True)
        _thin(ax.yaxis, renderer, False)


def _log_axis(axis, floor: float | None = None) -> None:
    """Make `axis` logarithmic with plain tick labels: 1-9, or 1, 2, 5, or powers of ten (per the decades its data
    spans), no minor labels; the tick at `floor` reads 0 (zero-cost records are drawn there)."""
    ax = axis.axes
    (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
    lo, hi = ax.dataLim.intervalx if axis is ax.xaxis else ax.dataLim.intervaly
    decades = math.log10(hi / lo) if 0 < lo < hi else 0.0
    subs = tuple(range(1, 10)) if decades < 1 else (1, 2, 5) if decades < 2.5 else (1,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(
        lambda v, _pos: "0" if floor is not None and math.isclose(v, floor) else num(v, "sig3")))


def zero_floor(seconds: pd.Series) -> float | None:
    """Where records of zero cost go on a log cost axis: the power of ten at least half a decade below the cheapest
    record that costs more than 0; None when no record costs 0 or none costs more."""
    timed = seconds[seconds > 0]
    if timed.empty or not (seconds == 0).any():
        return None
    return 10.0 ** math.floor(math.log10(float(timed.min())) - 0.5)


def _better(label: str, way: str) -> str:
    return f"{label} ({way})"


def _dot(label: str, color="0.35", marker: str = "o", area: float = 50.0, hollow: bool = False) -> Line2D:
    """A legend entry for points drawn with `ax.scatter(..., s=area)` (`hollow`: an outline in `color`)."""
    return Line2D([], [], ls="", marker=marker, color=color, markeredgecolor=color if hollow else "white",
                  markerfacecolor="none" if hollow else color, markeredgewidth=HOLLOW_EDGE if hollow else 1.0,
                  markersize=math.sqrt(area), label=label)


def _key(fig, sections: list[tuple[str, list]]) -> None:
    """The figure's one legend, right of the panels: per encoding its title (bold), then its entries."""
    handles, titles = [], set()
    for title, entries in sections:
        if entries:
            handles += [Line2D([], [], ls="", label=title), *entries] if title else entries
            titles.add(title)
    legend = fig.legend(handles=handles, loc="outside right center", fontsize=8,
                        ncols=math.ceil(len(handles) / LEGEND_ROWS))
    for text in legend.get_texts():
        if text.get_text() in titles:
            text.set_fontweight("bold")


def _area(values: pd.Series, norm: tuple[float, float], sizes: tuple[float, float]) -> pd.Series:
    """Marker areas: `values` clipped to `norm` and mapped linearly onto `sizes` (points²)."""
    lo, hi = norm
    share = ((values.clip(lo, hi) - lo) / (hi - lo)) if hi > lo else values * 0 + 0.5
    return sizes[0] + share * (sizes[1] - sizes[0])


def _points(ax, s: pd.DataFrame, x: str, y: str, hue: tuple[str, dict], style: tuple[str, dict], area: pd.Series,
            hollow: frozenset = frozenset()):
    """One scatter per (colour, marker) group of `s`: `hue` = (column, colour per value), `style` = (column, marker
    per value); `area` per row; the `hue` values in `hollow` drawn as outlines in their colour."""
    (hcol, colors), (scol, markers) = hue, style
    for (h, m), g in s.groupby([hcol, scol], sort=False):
        face, edge, width = ("none", colors[h], HOLLOW_EDGE) if h in hollow else (colors[h], "white", 0.6)
        ax.scatter(g[x], g[y], s=area[g.index], facecolors=face, edgecolors=edge, marker=markers[m],
                   linewidths=width, zorder=3)


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


GRID_COLUMNS = 5      # panels per row where a figure has one panel per method


def _panel_grid(n: int):
    """`n` panels, `GRID_COLUMNS` to a row; the figure and its used axes in order (the unused ones hidden)."""
    cols = min(n, GRID_COLUMNS)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False, layout="constrained")
    flat = [a for row in axes for a in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


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
            ax.set(title=opt, xlabel="removal size", ylabel=_better("test accuracy (%)", HIGHER), ylim=(0, 100))
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
    ax.set(title=f"{ds} ({_trials(len(s))})", xlabel="fine-tune epoch",
           ylabel="logit L1 distance S (to m_o: lower is better)" if first else "")
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
           ylabel=_better("d = (S(m_r,m_c) − S(m_r,m_o)) / |Y|", HIGHER) if first else "")
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
    _log_axis(ax.yaxis)
    ax.set(title=ds, xlabel="epoch (m_o, m_c: from scratch;\nm_r, finetune: of the fine-tune)",
           ylabel=_better("training loss, log", LOWER) if first else "")
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
SIZE_AREAS = (30.0, 140.0)          # marker areas (points²) of the smallest and largest removal size


@dataclass
class _Style:
    """What every cost-vs-quality panel shares: colour per method, marker per optimizer, size per removal size."""

    methods: list[str]
    palette: dict
    optimizers: list[str]
    markers: dict
    size_norm: tuple[float, float]
    sizes: list[int]

    @classmethod
    def of(cls, sub: pd.DataFrame) -> _Style:
        methods = sorted(sub["method"].unique(), key=method_key)
        optimizers = sorted(sub["optimizer"].fillna("").unique())
        sizes = sorted({round(v) for v in col(sub, "removal_size").dropna()}) or [0]
        return cls(methods, method_colours(methods), optimizers,
                   dict(zip(optimizers, MARKERS * 3, strict=False)), (float(sizes[0]), float(sizes[-1])), sizes)

    def area(self, sizes: pd.Series) -> pd.Series:
        return _area(sizes.astype(float), self.size_norm, SIZE_AREAS)

    def legend(self, lines: list) -> list[tuple[str, list]]:
        """The legend's sections: method (colour), removal size (marker size), optimizer (marker), lines."""
        shown = self.sizes if len(self.sizes) <= 6 else [self.sizes[round(i)] for i in
                                                         np.linspace(0, len(self.sizes) - 1, 5)]
        areas = self.area(pd.Series(shown))
        return [("method", [_dot(m, self.palette[m]) for m in self.methods]),
                ("removal size", [_dot(str(n), area=a) for n, a in zip(shown, areas, strict=True)]),
                ("optimizer", [_dot(o or "none", marker=self.markers[o]) for o in self.optimizers]),
                ("", lines)]


def _cost_x(s: pd.DataFrame) -> tuple[bool, float | None]:
    """Whether the panel's seconds need a log axis (the timed records span more than ×10), and the floor its
    zero-cost records are drawn at (None: none, or a linear axis, which shows 0 as it is)."""
    timed = s["seconds"][s["seconds"] > 0]
    log = not timed.empty and timed.max() > 10 * timed.min()
    return log, zero_floor(s["seconds"]) if log else None


def _cost_panels(axes, j: int, s: pd.DataFrame, ds: str, style: _Style) -> tuple[str, bool]:
    """Dataset `ds`'s two panels (quality and d against seconds) in column j; its quality label, and whether it
    drew zero-cost records at a floor."""
    qkey, qlabel, qscale = quality_metric(s)
    s["quality"] = col(s, qkey) * qscale if qkey else np.nan
    s["optimizer"] = s["optimizer"].fillna("")
    log, floor = _cost_x(s)
    s["drawn seconds"] = s["seconds"].where(s["seconds"] > 0, floor if floor is not None else 0.0)
    area = style.area(col(s, "removal_size").fillna(style.size_norm[0]))
    quality = _better(qlabel or "quality", LOWER if qkey.endswith("_mse") else HIGHER)
    for i, (y, ylabel) in enumerate((("quality", quality), ("d", _better("deletion metric d", HIGHER)))):
        ax = axes[i][j]
        _points(ax, s, "drawn seconds", y, ("method", style.palette), ("optimizer", style.markers), area)
        if log:
            _log_axis(ax.xaxis, floor)
        if floor is not None:
            ax.axvline(floor, **FLOOR_STYLE)
        ax.set(xlabel=_better("seconds" + (", log" if log else ""), LOWER), ylabel=ylabel, title=ds if i == 0 else "")
    return qlabel, floor is not None


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
    floored = False
    with _theme():
        fig, axes = plt.subplots(2, len(datasets), figsize=(5.2 * len(datasets), 7.2), squeeze=False,
                                 layout="constrained")
        for j, ds in enumerate(datasets):
            s = sub[sub["dataset"] == ds].copy()
            qlabel, at_floor = _cost_panels(axes, j, s, ds, style)
            floored |= at_floor
            if (sentence := _cost_sentence(s, ds, qlabel)) is not None:
                out.sentences.append(sentence)
        _key(fig, style.legend([Line2D([], [], **FLOOR_STYLE, label=FLOOR_LABEL)] if floored else []))
        floor_caption = "; zero cost drawn at the dashed floor, its tick 0" if floored else ""
        _suptitle(fig, ctx, title + f" (one point per record{floor_caption})")
        out.file = _save(fig, folder, out.name)
    out.note = FLOOR_NOTE if floored else ""
    return out


# -- forgetting (the audit, its sweeps) -----------------------------------------------------------------------------
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


UTILITY_NORM, UTILITY_AREAS = (0.5, 1.1), (15.0, 170.0)   # the Pareto figure's marker size: utility / retraining's
UTILITY_SHOWN = ((0.5, "≤ 0.5"), (0.7, "0.7"), (0.9, "0.9"), (1.0, "1 (as retraining)"), (1.1, "≥ 1.1"))
NOISE_SHADE = {"color": "0.9", "zorder": 0}
NOISE_LABEL = "below 0: F above its ceiling (sampling noise)"
RETRAINING_LINE = {"color": "0.5", "lw": 0.8}


def _front(s: pd.DataFrame) -> list[str]:
    """The methods (labels: a tuned point apart from the preset) no other beats on both mean seconds and mean
    forgetting gap (the Pareto front)."""
    means = s.groupby("label")[["seconds", "forgetting gap"]].mean()
    return sorted((m for m in means.index if not any(
        means.loc[o, "seconds"] <= means.loc[m, "seconds"] and means.loc[o, "forgetting gap"] < means.loc[m,
                                                                                                      "forgetting gap"]
        for o in means.index if o != m)), key=method_key)


def _pareto_panel(ax, s: pd.DataFrame, ds: str, palette: dict, markers: dict, hollow: frozenset) -> tuple[bool, bool]:
    """One dataset's points (forgetting gap against seconds); whether it drew zero cost at a floor, and a gap
    below 0."""
    floor = zero_floor(s["seconds"])
    s["drawn seconds"] = s["seconds"].where(s["seconds"] > 0, floor if floor is not None else np.nan)
    area = _area(s["utility vs retraining"].fillna(UTILITY_NORM[0]), UTILITY_NORM, UTILITY_AREAS)
    _points(ax, s, "drawn seconds", "forgetting gap", ("label", palette), ("forget_regime", markers), area, hollow)
    ax.axhline(0, **RETRAINING_LINE)
    below = bool((s["forgetting gap"] < 0).any())
    if below:
        bottom = ax.get_ylim()[0]
        ax.axhspan(bottom, 0, **NOISE_SHADE)
        ax.set_ylim(bottom=bottom)
    _log_axis(ax.xaxis, floor)
    if floor is not None:
        ax.axvline(floor, **FLOOR_STYLE)
    ax.set(xlabel=_better("seconds per model, log", LOWER), title=ds,
           ylabel=_better("1 − F / ceiling", LOWER) if ax is ax.figure.axes[0] else "")
    return floor is not None, below


def method_colours(labels) -> dict:
    """A colour per method label (`common.label`), the same for every setting of one method, stable across panels:
    `deep`, then `EXTRA_COLOURS`, then husl hues, in `METHOD_ORDER`."""
    methods = sorted({lab.partition(" (")[0] for lab in labels}, key=method_key)
    colours = [*sns.color_palette("deep", 10), *(matplotlib.colors.to_rgb(c) for c in EXTRA_COLOURS)]
    colours += sns.color_palette("husl", max(0, len(methods) - len(colours)))
    by_method = dict(zip(methods, colours, strict=False))
    return {lab: by_method[lab.partition(" (")[0]] for lab in labels}


def _pareto_legend(sub: pd.DataFrame, palette: dict, markers: dict, floored: bool, below: bool) -> list:
    lines = [Line2D([], [], **RETRAINING_LINE, label="0: as retraining")]
    lines += [Line2D([], [], **FLOOR_STYLE, label=FLOOR_LABEL)] if floored else []
    lines += [Patch(facecolor=NOISE_SHADE["color"], label=NOISE_LABEL)] if below else []
    areas = _area(pd.Series([v for v, _ in UTILITY_SHOWN]), UTILITY_NORM, UTILITY_AREAS)
    methods = sorted(sub["method"].unique(), key=method_key)
    settings = sorted(sub["setting"].unique(), key=lambda v: (v != PRESET, v))
    return [("method", [_dot(m, palette[sub.loc[sub["method"] == m, "label"].iloc[0]]) for m in methods]),
            ("setting", [_dot(SETTING_LABELS.get(v, v), hollow=v != PRESET) for v in settings]
             if len(settings) > 1 else []),
            ("forget regime", [_dot(r, marker=mk) for r, mk in markers.items()]),
            ("test utility / retraining's", [_dot(label, area=a) for (_, label), a in zip(UTILITY_SHOWN, areas,
                                                                                           strict=True)]),
            ("", lines)]


SETTING_LABELS = {PRESET: "preset (filled)", "tuned": "tuned point (hollow)"}


def forgetting_pareto(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Forgetting: cost against the forgetting gap 1 − F / ceiling"
    out = Figure("forgetting_pareto", title)
    sub = _having(df, "forgetting", "forgetting", "forget_quality_normalised")
    untimed = int(col(sub, "seconds").isna().sum())
    sub = labelled(sub[col(sub, "seconds").notna()]) if not sub.empty else sub
    if sub.empty:
        out.note = "not drawn: no forgetting records with seconds in the input."
        return out
    datasets = dataset_order(df, sub["dataset"].dropna())
    palette = method_colours(sub["label"].unique())
    hollow = frozenset(sub.loc[sub["setting"] != PRESET, "label"])
    markers = dict(zip(sorted(sub["forget_regime"].fillna("").unique()), MARKERS * 3, strict=False))
    floored = below = False
    with _theme():
        fig, axes = _panel_row(len(datasets))
        for ax, ds in zip(axes[0], datasets, strict=True):
            s = sub[sub["dataset"] == ds].copy()
            s["forget_regime"] = s["forget_regime"].fillna("")
            s["utility vs retraining"] = _relative_utility(s)
            s["forgetting gap"] = 1 - col(s, "forget_quality_normalised")
            at_floor, under = _pareto_panel(ax, s, ds, palette, markers, hollow)
            floored, below = floored or at_floor, below or under
            out.sentences.append(f"{ds}: on average over its cells, no method is both cheaper and closer to "
                                 f"retraining than {', '.join(_front(s))} (the Pareto front).")
        _key(fig, _pareto_legend(sub, palette, markers, floored, below))
        _suptitle(fig, ctx, title + " (one point per cell" + ("; zero cost at the dashed floor, its tick 0" if floored
                                                              else "") + ")")
        out.file = _save(fig, folder, out.name)
    notes = [FLOOR_NOTE] if floored else []
    notes += ["A gap below 0 is F above its ceiling: the ceiling is itself F of a retrained group of N models, so "
              "sampling noise puts a method's F above it on some cells (F / ceiling > 1)."] if below else []
    notes += ["Hollow markers: a method at the tuned point of its search (benchmarks/tuned/<dataset>.json), beside "
              "its preset (filled), on the cells of the profile's tuned regimes."] if hollow else []
    notes += [f"{untimed} record(s) without seconds are not drawn."] if untimed else []
    out.note = " ".join(notes)
    return out


def epsilon_histograms(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Per-example ε against the retrained reference models"
    out = Figure("epsilon_histograms", title)
    sub = select(df, "forgetting", "forgetting")
    sub = labelled(sub) if not sub.empty else sub
    rows = [{"method": r["label"], "regime": r["forget_regime"], "epsilon": float(e)}
            for _, r in sub.iterrows() if isinstance(r.get("epsilon_per_example"), list)
            for e in r["epsilon_per_example"] if e is not None]
    if not rows:
        out.note = "not drawn: no per-example ε in the input."
        return out
    long = pd.DataFrame(rows)
    methods = sorted(long["method"].unique(), key=method_key)
    regimes = list(dict.fromkeys(long["regime"]))
    palette = dict(zip(regimes, sns.color_palette(n_colors=len(regimes)), strict=True))
    caps = sorted(col(sub, "epsilon_cap").dropna().unique())
    with _theme():
        fig, axes = _panel_grid(len(methods))
        for ax, m in zip(axes, methods, strict=True):
            sns.histplot(data=long[long["method"] == m].assign(epsilon=lambda d: d["epsilon"].clip(upper=EPS_SHOWN)),
                         x="epsilon", hue="regime", hue_order=regimes, palette=palette, binwidth=0.5,
                         binrange=(0, EPS_SHOWN + 0.5), element="step", stat="probability", common_norm=False,
                         legend=False, ax=ax)
            for cap in caps:
                ax.axvline(cap, color="grey", lw=0.8, ls="--")
            ax.set(title=m, xlabel=_better("ε per forget example", LOWER),
                   ylabel="share of examples" if ax.get_subplotspec().is_first_col() else "")
        _key(fig, [("forget regime", [Patch(facecolor=(*palette[r], 0.25), edgecolor=palette[r], label=r)
                                      for r in regimes]),
                   ("", [Line2D([], [], color="grey", lw=0.8, ls="--", label="cap ⌈ln(N − 1)⌉")])])
        _suptitle(fig, ctx, title + f" (dashed: the cap ⌈ln(N − 1)⌉; ε ≥ {EPS_SHOWN:g} in the last bin; all datasets "
                                    "and sizes)")
        out.file = _save(fig, folder, out.name)
    for regime, g in long.groupby("regime"):
        means = g.groupby("method")["epsilon"].mean()
        out.sentences.append(f"{regime}: mean ε " + ", ".join(f"{m} {num(means[m], '.2f')}"
                                                             for m in sorted(means.index, key=method_key)) + ".")
    return out


def _tradeoff_frame(knobs: pd.DataFrame, full: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One long frame of (knob, value, curve, utility, F / ceiling, MIA gap) from the forgetting sweeps
    and paper 002's lr sweep, and the utility's label."""
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
    return pd.concat(frames, ignore_index=True), ulabel


def tradeoff_curves(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Trade-off curves: utility and forgetting against each method's knob"
    out = Figure("tradeoff_curves", title)
    knobs = knob_rows(df)
    full = select(df, "002", "lr_sweep")
    if knobs.empty and full.empty:
        out.note = "not drawn: no sweep records in the input."
        return out
    long, ulabel = _tradeoff_frame(knobs, full)
    rows = [k for k in KNOBS if (long["knob"] == k).any()]
    ulabel += ", classification only" if ulabel.startswith("test acc") else ""
    cols = (("utility", _better(ulabel, HIGHER)), ("forget_quality_normalised", _better("F / ceiling", HIGHER)),
            ("mia_gap", _better("MIA gap", LOWER)))
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
                ax.set_xticks(ticks, [f"{v:g}" for v in ticks], fontsize=8)
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
        _suptitle(fig, ctx, title + " (mean ± sd over records; F / ceiling 1: as retraining, above 1: the ceiling's "
                                    "sampling noise)")
        out.file = _save(fig, folder, out.name)
    return out


# -- the ranking by distance from retraining ------------------------------------------------------------------------
NO_DIRECTION = "matches or cannot tell"
# a method's way of missing (the most common label over its ranked cells with a verdict): marker and colour (seaborn
# "deep" red, blue, orange, purple; grey where no direction was shown)
DIRECTIONS = {V.MEMORISED: ("^", "#C44E52", "memorised ▲ (effect > 0)"),
              V.OVER_FORGOT: ("v", "#4C72B0", "over-forgot ▼ (effect < 0)"),
              V.EVERYWHERE: ("s", "#DD8452", "shifted everywhere ■"),
              V.BOTH_WAYS: ("D", "#8172B3", "differs both ways ◆"),
              NO_DIRECTION: ("o", "0.55", "mostly matches or cannot tell ●")}
SYMLOG_ABOVE = 10.0   # a panel whose largest drawn distance exceeds this gets a symlog axis: linear to 1, log beyond
DISTANCE_LINES = {0.0: ({"color": "0.25", "lw": 1.0}, "0: as retraining"),
                  1.0: ({"color": "0.25", "lw": 1.0, "ls": (0, (4, 3))}, "1: as far as doing nothing")}
INTERVAL_STYLE = {"lw": 2.2, "alpha": 0.45}
# the largest distance a bounded effect can give (|effect| ≤ Z_CLIP, divided by at least MARGIN): a record made
# before effects were bounded can hold more (gradient ascent's collapsed models); drawn at this cap, its value written
DISTANCE_CAP = V.Z_CLIP / V.MARGIN
ROW_INCHES, PANEL_EXTRA_INCHES = 0.3, 1.6    # figure height: per method row, plus the title and the x axis


def _counts(verdicts: str) -> dict[str, int]:
    """The ranking's `verdicts` ("2 memorised, 1 over-forgot") as {label: count}, known labels only."""
    out = {}
    for part in ("" if verdicts in ("", "none") else verdicts).split(", "):
        n, _, label = part.partition(" ")
        if n.isdigit() and label in V.VERDICTS:
            out[label] = int(n)
    return out


def direction(verdicts: str, effect: float) -> str:
    """A method's way of missing retraining over its ranked cells: the label most of its cells with a verdict carry,
    "matches retraining" and "cannot tell" counted together as `NO_DIRECTION` (no direction shown). A missed label
    wins a tie with NO_DIRECTION (half the cells show it); memorised against over-forgot goes by the sign of the mean
    effect, any other tie by `verdict.MISSED`'s order."""
    counts = _counts(verdicts)
    ways = {w: counts.get(w, 0) for w in V.MISSED}
    top = max(ways.values())
    none = counts.get(V.MATCHES, 0) + counts.get(V.CANNOT_TELL, 0)
    if top == 0 or none > top:
        return NO_DIRECTION
    tied = [w for w in V.MISSED if ways[w] == top]
    if {V.MEMORISED, V.OVER_FORGOT} <= set(tied) and not missing(effect) and effect != 0:
        return V.MEMORISED if effect > 0 else V.OVER_FORGOT
    return tied[0]


def _signed(effect: float) -> str:
    """The mean signed effect as written at the right of a row: "+1.23 sd" (exponent form beyond ±10⁴)."""
    return "" if missing(effect) else f"{num(effect, '+.2f' if abs(effect) < 1e4 else '+.2e')} sd"


def ranking_rows(df: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The ranking table's rows (`Ranking.build`: the same data the table shows) that have a forgetting rank, in
    its order, with the tick label ("=1 salun (tuned)"), the direction (`direction`) and the effect as written."""
    table = Ranking.build(df, ctx)
    if table is None:
        return pd.DataFrame()
    d = table.data[table.data["forgetting_rank"].notna() & table.data["distance"].notna()].copy()
    d["tick"] = [f"{'=' if t else ''}{num(r, 'int')} {lab}{f' [{role}]' if role else ''}" for r, t, lab, role in
                 zip(d["forgetting_rank"], d["forgetting_tied"], d["label"], d["role"], strict=True)]
    d["direction"] = [direction(v, e) for v, e in zip(d["verdicts"], d["effect"], strict=True)]
    d["effect_text"] = d["effect"].map(_signed)
    return d.reset_index(drop=True)


def _distance_ticks(hi: float) -> list[float]:
    """Ticks of a symlog distance axis up to `hi` (at most `DISTANCE_CAP`): 0, 0.5, 1, then the powers of ten."""
    return [0.0, 0.5, 1.0, *(10.0 ** k for k in range(1, max(1, math.ceil(math.log10(hi))) + 1))]


def _ranking_panel(ax, g: pd.DataFrame, ds: str, first: bool) -> tuple[bool, list[str]]:
    """One dataset's methods, best on top: a dot per distance, its interval a bar, by direction; the signed effect at
    the right. Whether the axis is symlog, and the methods drawn at `DISTANCE_CAP` (their distance beyond it)."""
    y = np.arange(len(g))[::-1]                 # the first (best) row on top; the y axis is not inverted
    capped = (g["distance"] > DISTANCE_CAP).to_numpy()
    lo, hi = (g[k].clip(upper=DISTANCE_CAP) for k in ("distance_lo", "distance_hi"))
    for a, b, yy, way in zip(lo, hi, y, g["direction"], strict=True):
        if not (missing(a) or missing(b)):
            ax.hlines(yy, a, b, color=DIRECTIONS[way][1], **INTERVAL_STYLE, zorder=2)
    for way, (marker, colour, _) in DIRECTIONS.items():
        rows = (g["direction"] == way).to_numpy()
        if rows.any():
            ax.scatter(g["distance"].clip(upper=DISTANCE_CAP)[rows], y[rows], marker=marker, color=colour, s=55,
                       edgecolors="white", linewidths=0.6, zorder=3)
    for x, (style, _) in DISTANCE_LINES.items():
        ax.axvline(x, **style, zorder=1)
    top = max(1.0, float(np.nanmax(np.r_[g["distance"].clip(upper=DISTANCE_CAP), hi])))
    symlog = top > SYMLOG_ABOVE
    if symlog:
        ax.set_xscale("symlog", linthresh=1.0, linscale=1.0)
        ax.xaxis.set_major_locator(FixedLocator(_distance_ticks(top)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: num(v, "sig3")))
        ax.set_xlim(-0.05, top * 1.5)
    else:
        ax.set_xlim(-0.05 * top, top * 1.08)
    ax.set_yticks(y, list(g["tick"]), fontsize=8)
    ax.set_ylim(-0.5, len(g) - 0.5)
    ax.grid(False, axis="y")
    effects = [f"{t} ▸ {num(d, '.3g')}" if c else t for t, d, c in zip(g["effect_text"], g["distance"], capped,
                                                                        strict=True)]
    right = ax.secondary_yaxis("right")
    right.set_yticks(y, effects, fontsize=8)
    right.tick_params(length=0)
    ax.set(title=ds, ylabel="", xlabel=_better("distance from retraining" + (", symlog" if symlog else ""), LOWER))
    if first:
        ax.set_ylabel(_better("forgetting rank, method", LOWER), fontsize=9)
    return symlog, list(g.loc[capped, "label"])


def _ranking_sentence(ds: str, g: pd.DataFrame) -> str:
    """The closest unlearning method (not the floor or ceiling) and those whose cells mostly missed one way."""
    methods = g[g["role"] == ""]
    parts = []
    if not methods.empty:
        best = methods.iloc[0]
        rank = f"{'=' if best['forgetting_tied'] else ''}{num(best['forgetting_rank'], 'int')}"
        shared = [f"{r['label']}{f' [{r.role}]' if r['role'] else ''}" for _, r in g.iterrows()
                  if r["forgetting_rank"] == best["forgetting_rank"] and r["label"] != best["label"]]
        parts.append(f"closest to retraining {best['label']}, distance "
                     f"{ci(best['distance'], best['distance_lo'], best['distance_hi'], '.2f')} (rank {rank}"
                     + (f", shared with {', '.join(shared)})" if shared else ")"))
    for way in V.MISSED:
        who = [f"{r['label']} ({r['effect_text']})" for _, r in g.iterrows() if r["direction"] == way]
        if who or way in (V.OVER_FORGOT, V.EVERYWHERE):
            parts.append(f"mostly {way}: {', '.join(who) or 'none'}")
    return f"{ds}: " + "; ".join(parts) + "."


def ranking_distance(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Ranking: each method's distance from retraining, and which way it missed"
    out = Figure("ranking_distance", title)
    rows = ranking_rows(df, ctx)
    if rows.empty:
        out.note = ("not drawn: no forgetting records with a verdict's effect in the input (records made before "
                    "issue 29 carry no effect, so no distance from retraining).")
        return out
    datasets = dataset_order(df, rows["dataset"].unique())
    unranked = sorted(set(select(df, "forgetting", "forgetting")["dataset"].dropna()) - set(datasets))
    symlogs, capped = [], []
    with _theme():
        fig, axes = _panel_row(len(datasets))
        longest = max(int((rows["dataset"] == ds).sum()) for ds in datasets)
        fig.set_figheight(max(3.8, ROW_INCHES * longest + PANEL_EXTRA_INCHES))
        for ax, ds in zip(axes[0], datasets, strict=True):
            g = rows[rows["dataset"] == ds]
            symlog, over = _ranking_panel(ax, g, ds, ax is axes[0][0])
            symlogs += [ds] if symlog else []
            capped += [f"{m} on {ds}" for m in over]
            out.sentences.append(_ranking_sentence(ds, g))
        shown = [w for w in DIRECTIONS if (rows["direction"] == w).any()]
        _key(fig, [("way of missing (most cells)", [_dot(DIRECTIONS[w][2], DIRECTIONS[w][1], DIRECTIONS[w][0])
                                                    for w in shown]),
                   ("", [Line2D([], [], color=DIRECTIONS[NO_DIRECTION][1], **INTERVAL_STYLE, label="90 % interval"),
                         *(Line2D([], [], **style, label=label) for style, label in DISTANCE_LINES.values())])])
        _suptitle(fig, ctx, title + " (forgetting rank order, best on top; right: the mean signed effect)")
        out.file = _save(fig, folder, out.name)
    notes = ["The ranking table's forgetting columns (`Ranking`, the same rows): per method its distance from "
             "retraining, the mean over its ranked cells of |effect| / max(|the no-op's effect|, "
             f"{V.MARGIN:g}) (0: as retraining, 1: as far as doing nothing), a dot, with its 90 % interval (the "
             "mean of the cells' folded interval ends) as a bar; methods in forgetting-rank order, best on top, '=' a "
             "shared rank. Marker and colour: the label most of the method's ranked cells carry (matches retraining "
             "and cannot tell counted together as no direction; a missed label wins a tie with them, memorised "
             "against over-forgot goes by the mean effect's sign). At the right: the mean signed effect in "
             "retrained sd (> 0: the forget points more confident than under retraining, memorised; < 0: less, "
             "over-forgot)."]
    notes += [f"Symlog x axis (linear from 0 to 1, logarithmic beyond) on {', '.join(symlogs)}: its distances "
              f"reach beyond {SYMLOG_ABOVE:g}, orders of magnitude apart; the other panels are linear."
              if symlogs else f"Linear x axes: no distance reaches beyond {SYMLOG_ABOVE:g}."]
    notes += [f"Drawn at the axis's end, {DISTANCE_CAP:g} (the largest distance a bounded effect, at most "
              f"{V.Z_CLIP:g} sd, can give), its distance written after ▸ at the right: {', '.join(capped)} (an "
              "unbounded effect of a record made before effects were clipped)."] if capped else []
    notes += [f"Not drawn: {', '.join(unranked)} (no ranked cell has a verdict there, e.g. too few forget "
              "points)."] if unranked else []
    out.note = " ".join(notes)
    return out


FIGURES = (paper002_figure1, paper000_distance, paper000_d, paper000_loss, cost_vs_quality, forgetting_pareto,
           epsilon_histograms, tradeoff_curves, ranking_distance)
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
