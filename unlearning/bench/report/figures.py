"""The report's figures (PNG, seaborn on matplotlib's Agg backend), drawn for a README that shows them ~700 px wide.

Each figure function returns a `Figure` (the ranking's a list, one per dataset): the file it wrote (None when the
input holds no data for it: then `note` says why) and sentences computed from the plotted numbers. Series of
different lengths are aligned at epoch 0 and padded with NaN, so a mean at epoch e is over the trials still running at
e. Panels of several datasets are ordered by dataset size (`common.dataset_order`).

Every axis that measures quality or cost says which way is better; log axes have plain tick labels (0.001, 1, 10);
records of zero cost, which a log axis cannot show, are drawn at a floor below the cheapest timed record, its tick
named; a mark or a curve is named by a label beside it, not by a legend of many colours, and no label
overlaps another or a mark (`place_labels` scores positions around each mark; `label_clashes` checks a drawn figure).

The ranking figure (`ranking`, one per dataset) draws the ranking table's rows (`tables.ranking.Ranking`): per
method x = its seconds per model / naive retraining's (log), y = its distance from retraining (0: as retraining,
1: as far as doing nothing) with its 90 % interval as a bar, and its way of missing as the marker.
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
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox, offset_copy

from ...evaluation import verdict as V
from . import paper as P
from .common import PRESET, ci, col, dataset_order, missing, num, plural, select, series_matrix, stats
from .tables import Context
from .tables.ranking import NO_DIRECTION, Ranking
from .tables.sweeps import KNOBS, knob_rows

DPI = 110
PANEL_ROW = (7.0, 3.0)             # inches: a row of panels, as wide as the README shows it (~700 px)
OPT_ORDER = ("adadelta", "adam", "sgd")
LABEL = {"weight_pruning": "m_r (weight_pruning)", "finetune": "finetune (warm start)",
         "naive_retrain": "m_o (naive retraining)", "control": "m_c (control)"}
LOSS_METHODS = ("naive_retrain", "weight_pruning", "finetune")
HIGHER, LOWER = "(higher is better)", "(lower is better)"
LABEL_FONT = 8                     # points: the names beside marks and curve ends
LABEL_GID = "label"                # the gid of every placed label (`label_clashes` finds them by it)
MARK_GID = "marks"                 # the gid of every scatter whose points labels must keep clear of
MARK_AREA = 55.0                   # points²: a ranking mark
CLEAR = 1.5                        # pixels between a label's box and anything it must not touch
NEAR = 8.0                         # pixels: a label is nearer its own point than any other by at least this


@dataclass
class Figure:
    name: str
    title: str
    file: str | None = None
    note: str = ""
    sentences: list[str] = field(default_factory=list)
    error: str = ""
    dataset: str = ""              # the dataset the figure is of (the ranking's): shown in that dataset's section


# -- shared ---------------------------------------------------------------------------------------------------------
def _save(fig, folder: Path, name: str) -> str:
    fig.savefig(folder / f"{name}.png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return f"{name}.png"


def _suptitle(fig, ctx: Context, title: str):
    fig.suptitle(ctx.caption(title).replace(" (profile", "\n(profile", 1), fontsize=9)


def _one_legend(fig, axes, title: str | None = None):
    """One legend for the figure, below the panels, naming each series the panels draw once."""
    named = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            named.setdefault(name, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if named:
        fig.legend(named.values(), named.keys(), loc="outside lower center", fontsize=8, title=title, title_fontsize=8,
                   ncols=min(len(named), 4), frameon=False)


def _renderer(fig):
    """`fig` drawn, and the renderer it was drawn with (an Agg canvas where pyplot has already closed it)."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _tick_names(axis, names: dict) -> None:
    """Plain tick labels (`num` "sig3"); a tick at a key of `names` reads its value."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: next(
        (s for k, s in names.items() if k is not None and math.isclose(v, k)), num(v, "sig3"))))


def _log_axis(axis, names: dict | None = None) -> None:
    """Make `axis` logarithmic with plain tick labels (`_tick_names`): 1-9, or 1, 2, 5, or powers of ten (per the
    decades its data spans), no minor labels."""
    ax = axis.axes
    (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
    lo, hi = ax.dataLim.intervalx if axis is ax.xaxis else ax.dataLim.intervaly
    decades = math.log10(hi / lo) if 0 < lo < hi else 0.0
    axis.set_major_locator(LogLocator(base=10, subs=tuple(range(1, 10)) if decades < 1 else (1, 2, 5)
                                      if decades < 2.5 else (1,)))
    axis.set_minor_formatter(NullFormatter())
    _tick_names(axis, names or {})


def _trials(n: int) -> str:
    return f"{n} {plural(n, 'trial')}"


# -- labels beside marks --------------------------------------------------------------------------------------------
# label positions (ring, points right, points up from the mark), nearest ring first; in a ring: right of the mark,
# left, a little above or below either side, then above, below and the diagonals. Curve ends: right of the end only.
RINGS = (6.0, 12.0, 20.0, 30.0, 42.0)
AROUND = ((1, 0), (-1, 0), (1, .5), (1, -.5), (-1, .5), (-1, -.5), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))
MARK_OFFSETS = [(ring, r * dx, r * dy) for ring, r in enumerate(RINGS) for dx, dy in AROUND]
END_OFFSETS = [(0, 5.0, 0.0)] + [(ring, 5.0, s * dy) for ring, dy in enumerate(range(6, 80, 6), 1) for s in (1, -1)]
LEADER_FROM = 10.0        # points: a label placed farther than this from its mark gets a thin line to it
LEADER = {"color": "0.4", "lw": 0.7}


def _hits(box: Bbox, boxes: list[Bbox]) -> int:
    return sum(box.overlaps(b) for b in boxes)


def _mark_boxes(ax, renderer) -> list[Bbox]:
    """A box around every point of the axes' marks (scatters with gid `MARK_GID`), in pixels."""
    out = []
    for c in ax.collections:
        if c.get_gid() == MARK_GID:
            half = math.sqrt(float(np.max(c.get_sizes()))) / 2 * renderer.points_to_pixels(1.0) + CLEAR
            out += [Bbox.from_extents(x - half, y - half, x + half, y + half)
                    for x, y in ax.transData.transform(c.get_offsets())]
    return out


def _line_boxes(ax) -> list[Bbox]:
    """A box around each segment of the axes' lines and line collections (error bars, curves, reference lines)."""
    segments = [line.get_transform().transform(line.get_xydata()) for line in ax.lines]
    segments += [c.get_transform().transform(seg) for c in ax.collections if isinstance(c, LineCollection)
                 for seg in c.get_segments()]
    return [Bbox([p.min(0) - 1, p.max(0) + 1]) for seg in segments for p in (seg[i:i + 2] for i in range(len(seg) - 1))
            if np.isfinite(p).all()]


def _gap(box: Bbox, point) -> float:
    """Pixels from `point` to the nearest edge of `box` (0 inside it)."""
    return math.hypot(max(box.x0 - point[0], 0, point[0] - box.x1), max(box.y0 - point[1], 0, point[1] - box.y1))


def place_labels(ax, points: list[tuple[float, float]], texts: list[str], offsets=MARK_OFFSETS) -> None:
    """Write each text beside its point (data coordinates) at the best of `offsets`, by in turn: inside the axes and
    clear of every placed label and mark; nearer its own point than any other; the nearest ring; crossing fewest
    lines (error bars, curves, reference lines). The most crowded points are placed first; a label away from its
    point, or as near another, gets a leader line to it."""
    renderer = _renderer(ax.figure)
    ax.figure.set_layout_engine("none")            # the layout as drawn: later draws must not move what was measured
    frame, marks, lines, placed = ax.get_window_extent(renderer), _mark_boxes(ax, renderer), _line_boxes(ax), []
    where = ax.transData.transform(np.asarray(points, dtype=float).reshape(-1, 2))
    crowd = [int(np.sum(np.hypot(*(where - p).T) < 40)) for p in where]
    for i in sorted(range(len(texts)), key=lambda k: (-crowd[k], k)):
        t = ax.text(*points[i], texts[i], fontsize=LABEL_FONT, gid=LABEL_GID, zorder=5)

        def put(k, t=t, i=i):       # the label at offsets[k]: its score (lower is better) and its box
            ring, dx, dy = offsets[k]
            t.set(transform=offset_copy(ax.transData, ax.figure, x=dx, y=dy, units="points"),
                  ha=("right", "center", "left")[int(np.sign(dx)) + 1],
                  va=("top", "center", "bottom")[int(np.sign(dy)) + 1])
            box = t.get_window_extent(renderer).padded(CLEAR)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            gaps = [_gap(box, p) for p in where]
            nearer = sum(g < gaps[i] + NEAR for g in gaps) - 1      # other points the label could seem to name
            return ((not inside) + _hits(box, placed) + _hits(box, marks), nearer, ring, _hits(box, lines), k), box

        best = min(range(len(offsets)), key=lambda k: put(k)[0])
        score, box = put(best)
        placed.append(box)
        _, dx, dy = offsets[best]
        if math.hypot(dx, dy) > LEADER_FROM or score[1]:          # away from its mark, or as near another one
            ax.annotate("", xy=points[i], xytext=(dx, dy), textcoords="offset points", zorder=4,
                        arrowprops={"arrowstyle": "-", "shrinkA": 0, "shrinkB": 4, **LEADER})


def label_clashes(fig) -> list[str]:
    """Every pair of placed labels whose boxes overlap, and every label over a mark, after a draw ("'a' and 'b'")."""
    renderer = _renderer(fig)
    out = []
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_gid() == LABEL_GID]
        boxes = [t.get_window_extent(renderer) for t in labels]
        out += [f"{labels[i].get_text()!r} and {labels[j].get_text()!r}" for i in range(len(boxes))
                for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
        marks = _mark_boxes(ax, renderer)
        out += [f"{t.get_text()!r} over a mark" for t, b in zip(labels, boxes, strict=True)
                if _hits(b.padded(-CLEAR), marks)]
    return out


# -- rows of panels -------------------------------------------------------------------------------------------------
def _series_long(sub: pd.DataFrame, key: str, label: str, prepend: str | None = None) -> pd.DataFrame:
    """One row per (record, epoch) of the series `key`, NaN-padded to the longest; `prepend`: a value put first
    (loss_series starts after epoch 1: the loss before it)."""
    series = []
    for _, r in sub.iterrows():
        s = list(r.get(key)) if isinstance(r.get(key), list) else []
        if prepend is not None and s and not missing(r.get(prepend)) and len(s) == r.get("epochs"):
            s = [r[prepend], *s]
        series.append(s)
    trials = list(sub["trial"]) if "trial" in sub else list(range(len(sub)))
    frame = pd.DataFrame(series_matrix(series), index=pd.Index(trials, name="trial")).reset_index()
    return frame.melt(id_vars="trial", var_name="epoch", value_name="value").assign(series=label)


def _panel_figure(out: Figure, ctx: Context, folder: Path, panels: dict[str, pd.DataFrame], draw, caption: str,
                  legend: str | None = "", **kw) -> None:
    """One row of panels, `draw(ax, frame, name, first)` drawing each and returning its sentences; one legend below
    (titled `legend`; None: none); saved as `out`'s file."""
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(panels), figsize=PANEL_ROW, squeeze=False, layout="constrained", dpi=DPI, **kw)
        for ax, (name, frame) in zip(axes[0], panels.items(), strict=True):
            out.sentences += draw(ax, frame, name, ax is axes[0][0])
        if legend is not None:
            _one_legend(fig, axes[0], legend or None)
        _suptitle(fig, ctx, out.title + caption)
        out.file = _save(fig, folder, out.name)


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


def _figure1_sentences(long: pd.DataFrame, opts: list[str]) -> list[str]:
    largest = int(long["size"].max())
    at = long[long["size"] == largest].groupby("optimizer")["acc"].mean()
    best = max(opts, key=lambda o: at.get(o, -1))
    parts = ", ".join(f"{o} {at[o]:.1f}%" for o in opts if o in at.index)
    out = [f"After {largest} removals our mean test accuracy (over learning rates and seeds) is: "
           f"{parts}; the most robust optimizer here is {best}. The paper reports that "
           f"{P.P002_FIGURE1_FINDING} (removal sizes 50–400)."]
    if near := [o for o in opts if o in at.index and at[o] <= 2 * P.P002_RANDOM_GUESS]:
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
    long["lr "] = long["lr"].map(lambda x: f"{x:g}")
    lrs = [f"{x:g}" for x in sorted(long["lr"].unique(), reverse=True)]
    palette = dict(zip(lrs, sns.color_palette("viridis", len(lrs)), strict=True))

    def panel(ax, g: pd.DataFrame, opt: str, first: bool) -> list[str]:
        sns.lineplot(data=g, x="size", y="acc", hue="lr ", hue_order=lrs, palette=palette, errorbar="sd", marker="o",
                     ax=ax)
        ax.axhline(P.P002_RANDOM_GUESS, ls="--", color="0.4", lw=1, label="random guess (10%)")
        ax.set(title=opt, xlabel="removal size", ylabel=f"test accuracy (%) {HIGHER}", ylim=(0, 100))
        return []
    _panel_figure(out, ctx, folder, {o: long[long["optimizer"] == o] for o in opts}, panel,
                  " (mean ± sd over seeds)", legend="lr", sharey=True)
    out.sentences += _figure1_sentences(long, opts)
    if bad:
        out.note = f"{bad} record(s) without usable checkpoint series were left out."
    return out


# -- paper 000 curves ---------------------------------------------------------------------------------------------
SPIKE = 5.0       # an S panel whose largest value exceeds its median this many times gets a log y axis


def _paper000_figure(out: Figure, df: pd.DataFrame, ctx: Context, folder: Path, draw, methods: tuple, key: str,
                     none: str, caption: str, legend: bool = True) -> bool:
    """One panel per dataset of paper 000's records of `methods` with the series `key` (`_panel_figure`); False,
    with the note "not drawn: `none`", when the input has none."""
    sub = pd.concat([select(df, "000", "table1"), select(df, "000", "california")])
    sub = sub[sub["method"].isin(methods)] if not sub.empty else sub
    datasets = [d for d in dataset_order(df, sub["dataset"].dropna()) if col(sub[sub["dataset"] == d], key)
                .notna().any()] if not sub.empty else []
    if not datasets:
        out.note = f"not drawn: {none}"
        return False
    _panel_figure(out, ctx, folder, {d: sub[sub["dataset"] == d] for d in datasets}, draw, caption,
                  "" if legend else None)
    return True


def _first_values(series: pd.Series) -> float:
    """The mean of the series' first values (the value right after pruning)."""
    return stats([v[0] for v in series if isinstance(v, list) and v])[0]


def _distance_panel(ax, s: pd.DataFrame, ds: str, first: bool) -> list[str]:
    """One dataset's S curves; the sentence on where m_r ends."""
    long = pd.concat([_series_long(s, "s_to_control_series", "S(m_r, m_c)"),
                      _series_long(s, "s_to_oracle_series", "S(m_r, m_o)")]).dropna(subset=["value"])
    sns.lineplot(data=long, x="epoch", y="value", hue="series", errorbar="sd", ax=ax)
    log = long["value"].max() > SPIKE * long["value"].median()
    if log:                 # a spike at the first epochs (California's) would flatten the rest of a linear axis
        _log_axis(ax.yaxis)
    ax.set(title=f"{ds} ({_trials(len(s))}{', log' if log else ''})", xlabel="fine-tune epoch",
           ylabel="logit L1 distance S\n(to m_o: lower is better)" if first else "")
    sc, so = stats(col(s, "s_to_control"))[0], stats(col(s, "s_to_oracle"))[0]
    start_o = _first_values(s["s_to_oracle_series"])
    return [f"{ds}: after the fine-tune S(m_r, m_o) is {num(so)} and S(m_r, m_c) {num(sc)} (mean over "
            f"{_trials(len(s))}), so m_r ends closer to {'m_o' if so < sc else 'm_c'}; S(m_r, m_o) went from "
            f"{num(start_o)} right after pruning to {num(so)} ({'down' if so < start_o else 'up'})."]


def paper000_distance(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    out = Figure("paper000_distance", "Paper 000: logit L1 distance of m_r to m_c and m_o during the fine-tune")
    if _paper000_figure(out, df, ctx, folder, _distance_panel, ("weight_pruning",), "d_series",
                        "no weight_pruning records of paper 000 with S series in the input.",
                        " (mean ± sd over trials)"):
        out.sentences.append("The paper reports that pruning brings m_r's predictions closer to m_o's, and that "
                             "on California S is generally decreasing.")
    return out


def _d_panel(ax, s: pd.DataFrame, ds: str, first: bool) -> list[str]:
    """One dataset's d curve (about 40 epochs shown); the sentence on its trend."""
    long = _series_long(s, "d_series", "d")
    width = int(long["epoch"].max()) + 1 if not long.empty else 0
    keep = set(np.unique(np.linspace(0, max(width - 1, 0), min(width, 40)).round().astype(int)))
    long = long[long["epoch"].isin(keep)].dropna(subset=["value"])
    sns.lineplot(data=long, x="epoch", y="value", errorbar="sd", err_style="bars", marker="o", ax=ax,
                 err_kws={"capsize": 2})
    ax.axhline(0, color="0.4", lw=1, ls="--")
    ax.set(title=f"{ds} ({_trials(len(s))})", xlabel="fine-tune epoch",
           ylabel=f"d = (S(m_r,m_c) − S(m_r,m_o)) / |Y|\n{HIGHER}" if first else "")
    start = _first_values(s["d_series"])
    end, sd, n = stats(col(s, "d"))
    return [f"{ds}: our d {'rises' if end > start else 'falls'} from {num(start)} right after pruning to {num(end)}"
            f"{'' if missing(sd) else f' ± {num(sd)}'} after the fine-tune (mean over {_trials(n)}); "
            "positive d means m_r is closer to m_o than to m_c."]


def paper000_d(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    out = Figure("paper000_d", "Paper 000: deletion metric d over the fine-tune")
    if _paper000_figure(out, df, ctx, folder, _d_panel, ("weight_pruning",), "d_series",
                        "no weight_pruning records of paper 000 with d series in the input.",
                        " (mean ± 1 sd over trials; about 40 epochs shown)", legend=False):
        out.sentences.append("The paper reports d becoming increasingly positive on the synthetic data.")
        out.note = "Trials stop at different epochs: a point averages the trials still fine-tuning at that epoch."
    return out


def _loss_panel(ax, s: pd.DataFrame, ds: str, first: bool) -> list[str]:
    """One dataset's loss curves (m_c's from the oracle records that carry it) and convergence threshold; a sentence
    per model."""
    parts = [_series_long(s[s["method"] == m], "loss_series", LABEL[m], prepend="initial_loss")
             for m in LOSS_METHODS if not s[s["method"] == m].empty]
    oracle = s[s["method"] == "naive_retrain"]
    if not oracle.empty and "control_loss_series" in oracle:
        parts.append(_series_long(oracle, "control_loss_series", LABEL["control"], prepend="control_initial_loss"))
    sns.lineplot(data=pd.concat(parts).dropna(subset=["value"]), x="epoch", y="value", hue="series", errorbar="sd",
                 ax=ax)
    if thr := re.search(r"<\s*([0-9.]+(?:e-?\d+)?)", next(iter(col(s, "rule").dropna()), "")):
        ax.axhline(float(thr.group(1)), color="0.4", lw=1, ls="--", label=f"threshold {float(thr.group(1)):g}")
    _log_axis(ax.yaxis)
    ax.set(title=ds, xlabel="epoch (m_o, m_c: from scratch;\nm_r, finetune: of the fine-tune)",
           ylabel=f"training loss, log {LOWER}" if first else "")
    return [f"{ds}, {LABEL[m]}: the loss starts at {num(stats(col(sm, 'initial_loss'))[0])} and ends at "
            f"{num(stats(col(sm, 'final_loss'))[0])} after {num(stats(col(sm, 'epochs'))[0], '.1f')} "
            f"epochs (means over {len(sm)} {plural(len(sm), 'run')})."
            for m in LOSS_METHODS if not (sm := s[s["method"] == m]).empty]


def paper000_loss(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    out = Figure("paper000_loss", "Paper 000: training loss of m_o, m_c and the fine-tunes of m_r and finetune")
    _paper000_figure(out, df, ctx, folder, _loss_panel, LOSS_METHODS, "loss_series",
                     "no paper-000 records with loss series in the input.", " (mean ± sd over trials)")
    return out


# -- trade-off curves (the forgetting sweeps, paper 002's lr sweep) -------------------------------------------------
# line style per forget regime (other: dash-dot)
CURVE_STYLE = {"canaries": ("-", "solid"), "random": ("--", "dashed"), "full": (":", "dotted")}
SWEPT_TICKS = 6           # a trade-off panel with at most this many knob values gets a tick at each (else log ticks)
CURVE_ROOM = 0.45         # share of a trade-off panel's width left free right of the curves, for their labels


def _tradeoff_frame(knobs: pd.DataFrame, full: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One long frame of (knob, value, dataset, regime, curve, utility, F / ceiling) from the forgetting sweeps and
    paper 002's lr sweep, and the utility's label: test accuracy (%) where the records have it, else −MSE (larger is
    better either way)."""
    keep = ["knob", "value", "dataset", "regime", "curve", "utility", "forget_quality_normalised"]
    frames, ulabel = [], "test acc %"
    if not knobs.empty:
        acc = col(knobs, "test_acc")
        utility, ulabel = (acc * 100, "test acc %") if acc.notna().any() else (-col(knobs, "test_mse"), "−test MSE")
        frames.append(knobs.assign(utility=utility, regime=knobs["forget_regime"],
                                   curve=knobs["dataset"] + " " + knobs["forget_regime"])[keep])
    if not full.empty:
        frames.append(full.assign(knob="lr", value=col(full, "lr"), regime="full", curve="mnist full (Table 1)",
                                  utility=col(full, "test_acc") * 100, forget_quality_normalised=np.nan)[keep])
    return pd.concat(frames, ignore_index=True), ulabel


def _curves_panel(ax, g: pd.DataFrame, key: str, palette: dict) -> tuple[list, list[str]]:
    """Each curve of one knob's sweep (the mean over records per value); where each ends, and its name."""
    means = g.groupby(["curve", "dataset", "regime", "value"])[key].mean().dropna().reset_index()
    ends, names = [], []
    for (curve, ds, regime), c in means.groupby(["curve", "dataset", "regime"], sort=False):
        ax.plot(c["value"], c[key], color=palette[ds], ls=CURVE_STYLE.get(regime, ("-.",))[0], marker="o", ms=3, lw=1.3)
        ends.append((float(c["value"].iloc[-1]), float(c[key].iloc[-1])))
        names.append(curve)
    _log_axis(ax.xaxis)
    lo, hi = float(g["value"].min()), float(g["value"].max())
    swept = sorted(g["value"].dropna().unique())     # few knob values: a tick at each, the ends included
    ax.set_xticks(swept if len(swept) <= SWEPT_TICKS else [t for t in ax.get_xticks() if lo <= t <= hi])
    ax.set_xlim(lo / 1.3, hi * (hi / lo) ** (CURVE_ROOM / (1 - CURVE_ROOM)))
    return ends, names


def tradeoff_curves(df: pd.DataFrame, ctx: Context, folder: Path) -> Figure:
    title = "Trade-off curves: utility and forgetting against each method's knob"
    out = Figure("tradeoff_curves", title)
    knobs, full = knob_rows(df), select(df, "002", "lr_sweep")
    if knobs.empty and full.empty:
        out.note = "not drawn: no sweep records in the input."
        return out
    long, ulabel = _tradeoff_frame(knobs, full)
    rows = [k for k in KNOBS if (long["knob"] == k).any()]
    cols = (("utility", f"{ulabel} {HIGHER}"), ("forget_quality_normalised", f"F / ceiling {HIGHER}"))
    palette = dict(zip(sorted(long["dataset"].unique()), sns.color_palette("deep"), strict=False))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(len(rows), len(cols), figsize=(7.0, 3.0 * len(rows)), squeeze=False,
                                 layout="constrained", dpi=DPI)
        _suptitle(fig, ctx, title + " (mean over records)")
        ends = {}
        for i, knob in enumerate(rows):
            g = long[long["knob"] == knob]
            for j, (key, label) in enumerate(cols):
                axes[i][j].set(xlabel=f"{KNOBS[knob][1]}: {KNOBS[knob][0]} (log)", ylabel=label)
                ends[i, j] = _curves_panel(axes[i][j], g, key, palette)
            for curve, c in g.groupby("curve"):
                means = c.groupby("value")[["utility", "forget_quality_normalised"]].mean()
                if means["forget_quality_normalised"].notna().any():
                    best = means["forget_quality_normalised"].idxmax()
                    utility = means.loc[best, "utility"]          # none where the dataset has no accuracy (regression)
                    out.sentences.append(f"{KNOBS[knob][1]}, {curve}: F / ceiling is highest, "
                                         f"{num(means.loc[best, 'forget_quality_normalised'], '.2f')}, at "
                                         f"{KNOBS[knob][0]} {num(best, 'g')}"
                                         + ("" if missing(utility) else f" (utility {num(utility, '.4g')})") + ".")
        for (i, j), (points, names) in ends.items():
            place_labels(axes[i][j], points, names, END_OFFSETS)
        out.file = _save(fig, folder, out.name)
    styles = ", ".join(f"{r} {name}" for r, (_, name) in CURVE_STYLE.items() if (long["regime"] == r).any())
    out.note = (f"One curve per dataset and forget regime (colour: the dataset; line: the regime, {styles}), the mean "
                "over its records per knob value, named at its right end. F / ceiling 1: as retraining; above 1: the "
                "ceiling's sampling noise. The MIA gap, the spread over records and every other column: table "
                "`tradeoff` (and `paper002_lr_sweep` for paper 002's sweep).")
    return out


# -- the ranking: forgetting against cost, per dataset -------------------------------------------------------------
# a method's way of missing (the most common label over its ranked cells with a verdict): marker and colour (seaborn
# "deep" red, blue, orange, purple; grey where no direction was shown)
DIRECTIONS = {V.MEMORISED: ("^", "#C44E52", "memorised (effect > 0)"),
              V.OVER_FORGOT: ("v", "#4C72B0", "over-forgot (effect < 0)"),
              V.EVERYWHERE: ("s", "#DD8452", "shifted everywhere"),
              V.BOTH_WAYS: ("D", "#8172B3", "differs both ways"),
              NO_DIRECTION: ("o", "0.55", "mostly matches or cannot tell")}
REFERENCE = {"color": "0.3", "lw": 0.9, "ls": (0, (4, 3)), "zorder": 1}   # retraining's and the no-op's lines
INTERVAL_STYLE = {"elinewidth": 1.6, "alpha": 0.5, "capsize": 0}
# the largest distance a bounded effect can give (|effect| ≤ Z_CLIP, divided by at least MARGIN): a record made
# before effects were bounded can hold more (gradient ascent's collapsed models); drawn at this cap, its value written
DISTANCE_CAP = V.Z_CLIP / V.MARGIN
DISTANCE_TICKS = {0.0: "0: retraining", 1.0: "1: no-op"}
RANKING_INCHES = (7.0, 4.5)        # the README shows it ~700 px wide
RANKING_NOTE = (
    "One mark per row of the ranking table (a method at its tuned point where the table ranks it there; "
    "\"(preset)\" marks a preset among tuned ones). y: the distance from retraining, the mean over the ranked cells "
    "of |effect| / max(|the no-op's effect|, margin) (0: as retraining; 1: as far as doing nothing); the bar its 90 % "
    "interval. x: seconds per model / naive retraining's (log; retraining at 1). The marker says which way the "
    "method missed retraining: the label most of its ranked cells carry (▲ memorised: the forget points more "
    "confident than under retraining; ▼ over-forgot: less; ■ shifted everywhere; ◆ differs both ways; ● mostly "
    "matches or cannot tell). Dashed lines: retraining (y 0, x 1) and the no-op (y 1). The numbers: table "
    "`ranking`.")


def ranking_rows(df: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The ranking table's rows (`Ranking.build`: the same data the table shows) that have a forgetting rank, in
    its order, with the direction (the table's `way`: `ranking.direction`) and the mean signed effect as written
    ("+1.23 sd")."""
    table = Ranking.build(df, ctx)
    if table is None:
        return pd.DataFrame()
    d = table.data[table.data["forgetting_rank"].notna() & table.data["distance"].notna()].copy()
    d["direction"] = d["way"]
    d["effect_text"] = d["effect"].map(
        lambda e: "" if missing(e) else f"{num(e, '+.2f' if abs(e) < 1e4 else '+.2e')} sd")
    return d.reset_index(drop=True)


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


def _mark_names(g: pd.DataFrame) -> list[str]:
    """Each row's name beside its mark: the method; "(preset)" added where other methods of the dataset are at
    their tuned point (the minority setting is the one named); a distance beyond the cap written after ▸."""
    tuned = (g["setting"] != PRESET).any()
    return [m + (" (preset)" if tuned and s == PRESET and not role else "")
            + (f" ▸ {num(d, '.3g')}" if d > DISTANCE_CAP else "")
            for m, s, role, d in zip(g["method"], g["setting"], g["role"], g["distance"], strict=True)]


def _draw_ranking(g: pd.DataFrame, x: np.ndarray, floor: float | None, ctx: Context, title: str):
    """One dataset's ranking figure (see the module docstring), the rows `g` at `x`; the figure."""
    y = g["distance"].clip(upper=DISTANCE_CAP).to_numpy(dtype=float)
    lo, hi = g["distance_lo"].clip(upper=DISTANCE_CAP), g["distance_hi"].clip(upper=DISTANCE_CAP)
    err = np.vstack([(y - lo).clip(lower=0).fillna(0), (hi - y).clip(lower=0).fillna(0)])
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=RANKING_INCHES, layout="constrained", dpi=DPI)
        shown = []
        for way, (marker, colour, name) in DIRECTIONS.items():
            if (rows := (g["direction"] == way).to_numpy()).any():
                ax.errorbar(x[rows], y[rows], yerr=err[:, rows], fmt="none", ecolor=colour, zorder=2, **INTERVAL_STYLE)
                ax.scatter(x[rows], y[rows], marker=marker, color=colour, s=MARK_AREA, edgecolors="white",
                           linewidths=0.6, zorder=3, gid=MARK_GID)
                shown.append(Line2D([], [], ls="", marker=marker, color=colour, label=name))
        for yy in (0.0, 1.0):
            ax.axhline(yy, **REFERENCE)
        ax.axvline(1.0, **REFERENCE)
        top = float(np.nanmax(np.r_[y, hi, 1.0]))
        ax.set_ylim(-0.04 * top, 1.06 * top)
        _log_axis(ax.xaxis, {floor: "0: no-op", 1.0: "1: retraining"})
        ax.set_xlim(np.nanmin(x) / 2.5, np.nanmax(np.r_[x, 1.0]) * 2.5)
        _tick_names(ax.yaxis, DISTANCE_TICKS)
        ax.set(xlabel=f"cost: seconds per model / naive retraining's, log {LOWER}",
               ylabel=f"distance from retraining, 90 % interval {LOWER}")
        fig.legend(handles=shown, loc="outside lower center", ncols=min(len(shown), 3), fontsize=8, frameon=False,
                   title="way of missing (most cells)", title_fontsize=8)
        _suptitle(fig, ctx, title)
        place_labels(ax, list(zip(x, y, strict=True)), _mark_names(g))
    return fig


def ranking(df: pd.DataFrame, ctx: Context, folder: Path) -> list[Figure]:
    """One figure per dataset of the forgetting records (`ranking_<dataset>`): see the module docstring."""
    title = "forgetting against cost, one mark per method of the ranking table"
    rows = ranking_rows(df, ctx)
    out = []
    for ds in dataset_order(df, set(select(df, "forgetting", "forgetting")["dataset"].dropna())
                            | set(rows.get("dataset", []))):
        fig_ = Figure(f"ranking_{ds}", f"{ds}: {title}", dataset=ds)
        out.append(fig_)
        g = rows[rows["dataset"] == ds].reset_index(drop=True) if not rows.empty else rows
        if g.empty:
            fig_.note = ("not drawn: no ranked cell of this dataset has a verdict's effect (too few forget points, "
                         "or records made before issue 29), so there is no distance from retraining.")
            continue
        naive = g.loc[g["method"] == "naive_retrain", "seconds"]
        ratio = g["seconds"] / (float(naive.iloc[0]) if len(naive) and naive.iloc[0] > 0 else np.nan)
        # zero cost (the no-op) is drawn at a floor: the power of ten at least half a decade below the cheapest other
        timed = ratio[ratio > 0]
        floor = 10.0 ** math.floor(math.log10(timed.min()) - 0.5) if len(timed) and (ratio == 0).any() else None
        x = ratio.mask(ratio == 0, np.nan if floor is None else floor).to_numpy(dtype=float)
        drawn = ~np.isnan(x)            # a row without a time is named in the note instead
        fig_.file = _save(_draw_ranking(g[drawn], x[drawn], floor, ctx, fig_.title), folder, fig_.name)
        fig_.sentences.append(_ranking_sentence(ds, g))
        notes = [RANKING_NOTE]
        if floor is not None:
            notes.append(f"The no-op's 0 s is drawn at the floor {num(floor, 'g')} (a log axis has no 0), its tick "
                         "\"0: no-op\".")
        if capped := list(g.loc[g["distance"] > DISTANCE_CAP, "label"]):
            notes.append(f"Drawn at {DISTANCE_CAP:g}, the largest distance a bounded effect (at most {V.Z_CLIP:g} sd) "
                         f"can give, its distance written after ▸: {', '.join(capped)} (a record made before effects "
                         "were clipped).")
        if untimed := list(g.loc[~drawn, "label"]):
            notes.append(f"Not drawn (no seconds, or no naive retraining time to divide by): {', '.join(untimed)}.")
        fig_.note = " ".join(notes)
    return out


FIGURES = (paper002_figure1, paper000_distance, paper000_d, paper000_loss, tradeoff_curves, ranking)


def build(df: pd.DataFrame, ctx: Context, folder: Path) -> list[Figure]:
    """Every figure; one that fails on unexpected data is reported (`error`), not drawn, and the rest go on."""
    out = []
    for fn in FIGURES:
        try:
            made = fn(df, ctx, folder)
            out += made if isinstance(made, list) else [made]
        except Exception as exc:       # a figure must not cost the whole report
            plt.close("all")
            for stale in (folder / f"{fn.__name__}.png", *folder.glob(f"{fn.__name__}_*.png")):
                stale.unlink(missing_ok=True)
            msg = f"{type(exc).__name__}: {exc}"
            out.append(Figure(fn.__name__, fn.__name__, note=f"not drawn: the figure failed on this input ({msg}).",
                              error=msg))
    return out
