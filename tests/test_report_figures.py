"""What a reader sees in the report's figures and headline (issue 19, item 6), on hand-made records whose answers are
known and on the committed report's runs:

1. zero-cost records (the no-op: 0 s) on a log cost axis are drawn at a marked floor, said in the caption;
2. no two tick labels overlap (MNIST's cost axis did), in every figure of the committed report;
3. one legend per figure, one section per encoding (the Pareto figure drew its size legend twice);
4. every quality or cost axis says which way is better; the Pareto figure's gap below 0 is explained;
5. the headline gives each method's cost (seconds and × naive retraining) beside its verdict.
"""

import re
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
for _extra in ("matplotlib", "seaborn", "tabulate", "jinja2"):
    pytest.importorskip(_extra, reason="the report generator needs the `report` extra: pip install -e '.[report]'")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from unlearning.bench.report import figures as F  # noqa: E402
from unlearning.bench.report import pipeline  # noqa: E402
from unlearning.bench.report.load import load  # noqa: E402
from unlearning.bench.report.tables import Context, Forgetting  # noqa: E402
from unlearning.common import schema  # noqa: E402
from unlearning.methods import METHODS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CTX = Context("smoke", "2.13.0+cpu", "cpu")


def rec(paper: str, table: str, **kw) -> dict:
    return schema.finish(kw, paper=paper, table=table, profile="smoke")


def grid_records() -> list[dict]:
    """Two datasets of the grid: digits, timed records from 0.002 s (floor 1e-4: half a decade below it, a power of
    ten) to 0.5 s; mnist, 0.35 s to 6 s (a short log axis, where matplotlib's own labels ran into each other). The
    no-op costs 0 s on both."""
    out = []
    for ds, secs in (("digits", {"naive_retrain": 0.5, "finetune": 0.002, "random_relabel": 0.05}),
                     ("mnist", {"naive_retrain": 6.0, "finetune": 2.5, "random_relabel": 0.35})):
        for seed in (0, 1):
            for size in (1, 10):
                out += [rec("grid", "grid", dataset=ds, method=m, removal_size=size, seed=seed, optimizer="adam",
                            seconds=s * (1 + seed / 10), test_acc=0.9, d=0.1 * seed) for m, s in secs.items()]
                out.append(rec("grid", "grid", dataset=ds, method="noop", removal_size=size, seed=seed,
                               optimizer="adam", seconds=0.0, test_acc=0.8, d=-0.2))
    return out


def forgetting_records() -> list[dict]:
    """Two datasets of the audit whose utilities differ (each panel would pick its own size levels), a method whose F
    is above its ceiling (gap −0.4), and costs whose ratios to naive retraining are 0, 0.01 and 2."""
    out = []
    for ds, scale, util in (("digits", 1.0, (0.9, 0.6)), ("mnist", 10.0, (0.95, 0.99))):
        for regime in ("random", "canaries"):
            for m, sec, f_norm, acc in (("naive_retrain", 10.0, 1.0, 0.9), ("noop", 0.0, 0.1, 0.9),
                                        ("random_relabel", 0.1, 1.4, util[0]), ("weight_pruning", 20.0, 0.6, util[1])):
                out.append(rec("forgetting", "forgetting", dataset=ds, forget_regime=regime, removal_size=20,
                               method=m, n_models=8, seconds=sec * scale, test_acc=acc, forget_acc=0.5,
                               forget_quality=0.1 * f_norm, forget_quality_ceiling=0.1,
                               forget_quality_normalised=f_norm, epsilon_per_example=[1.0, 2.0], epsilon_cap=2))
    return out


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """Every figure saved while the fixture is active, by name, with the overlapping tick labels it was saved with."""
    figs = {}
    save = F._save

    def keep(fig, folder, name):
        out = save(fig, folder, name)
        figs[name] = (fig, F.overlapping_ticks(fig))
        return out
    monkeypatch.setattr(F, "_save", keep)
    return figs


def _legend_texts(fig) -> list[str]:
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    return [t.get_text() for t in fig.legends[0].get_texts()]


# -- 1. zero cost on a log axis ----------------------------------------------------------------------------------------
def test_zero_cost_records_are_drawn_at_a_marked_floor(tmp_path, drawn):
    out = F.cost_vs_quality(pd.DataFrame(grid_records()), CTX, tmp_path)
    fig, _ = drawn["cost_vs_quality"]
    floors = {"digits": 1e-4, "mnist": 0.1}          # 0.002 s -> 10^floor(-2.7 - 0.5); 0.35 s -> 10^floor(-0.96)
    for ax in fig.axes[:4]:
        title = ax.get_title() or fig.axes[fig.axes.index(ax) - 2].get_title()
        floor = floors[title]
        assert ax.get_xscale() == "log" and ax.get_xlim()[0] < floor
        offsets = [x for c in ax.collections for x, _ in c.get_offsets()]
        assert min(offsets) == pytest.approx(floor)              # the no-op's points, on the axis (not at 0: off it)
        assert [line for line in ax.get_lines() if line.get_xdata()[0] == pytest.approx(floor)
                and line.get_linestyle() == "--"]
        labels = {round(t.get_loc(), 12): t.label1.get_text() for t in ax.xaxis.get_major_ticks()}
        assert labels[round(floor, 12)] == "0"
    assert F.FLOOR_LABEL in _legend_texts(fig)
    assert "zero cost drawn at the dashed floor, its tick 0" in fig.get_suptitle()
    assert out.note == F.FLOOR_NOTE
    assert F.zero_floor(pd.Series([0.0, 0.002, 0.3])) == pytest.approx(1e-4)
    assert F.zero_floor(pd.Series([0.002, 0.3])) is None and F.zero_floor(pd.Series([0.0, 0.0])) is None


def test_zero_cost_on_a_linear_axis_is_drawn_at_zero_with_no_floor(tmp_path, drawn):
    """Timed records within ×10 of each other get a linear axis, which shows 0 as it is."""
    records = [r for r in grid_records() if r["dataset"] == "mnist" and r["method"] != "random_relabel"]
    out = F.cost_vs_quality(pd.DataFrame(records), CTX, tmp_path)
    fig, _ = drawn["cost_vs_quality"]
    assert fig.axes[0].get_xscale() == "linear"
    assert min(x for c in fig.axes[0].collections for x, _ in c.get_offsets()) == 0
    assert F.FLOOR_LABEL not in _legend_texts(fig) and out.note == ""


# -- 2. tick labels ----------------------------------------------------------------------------------------------------
def test_overlapping_tick_labels_are_left_blank():
    fig, ax = plt.subplots(figsize=(3, 2))
    ticks = [i / 10 for i in range(41)]
    ax.plot([0, 4], [0, 1])
    ax.set_xticks(ticks, [f"{t:.1f}" for t in ticks])
    assert F.overlapping_ticks(fig)                            # 41 labels in 3 inches
    F._unclutter(fig)
    assert F.overlapping_ticks(fig) == []
    shown = [t.label1.get_text() for t in F.shown_ticks(ax.xaxis)]
    assert shown[0] == "0.0" and 2 < len(shown) < 41
    plt.close(fig)


def test_no_tick_labels_overlap_in_the_grid_or_the_committed_report(tmp_path, drawn):
    F.cost_vs_quality(pd.DataFrame(grid_records()), CTX, tmp_path)
    mnist = drawn.pop("cost_vs_quality")[0].axes[1]
    assert mnist.get_title() == "mnist"
    assert [t.label1.get_text() for t in F.shown_ticks(mnist.xaxis)] == ["0", "0.2", "0.5", "1", "2", "5"]
    loaded = load([str(ROOT / "reports" / "runs")])
    figures = F.build(loaded.records, pipeline.context(loaded), tmp_path)
    assert not [f.error for f in figures if f.error]
    assert set(drawn) == {f.name for f in figures if f.file} and len(drawn) == len(F.FIGURES)
    assert {name: overlaps for name, (_, overlaps) in drawn.items() if overlaps} == {}
    check_axes_say_which_way_is_better(drawn)


def check_axes_say_which_way_is_better(drawn: dict):
    """Every axis that measures quality or cost says which way is better (the counts and epochs do not need to)."""
    neutral = {"share of examples", "removal size", "fine-tune epoch"}
    for name, (fig, _) in drawn.items():
        for ax in fig.axes:
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                if label and label not in neutral and not label.startswith(("epoch", "relabel", "weight_pruning",
                                                                             "random_relabel")):
                    assert "is better" in label, (name, label)
            if "seconds" in ax.get_xlabel() or "ε" in ax.get_xlabel():
                assert "lower is better" in ax.get_xlabel(), (name, ax.get_xlabel())


# -- 3. and 4. the Pareto figure: one legend, the gap below 0 ----------------------------------------------------------
def test_the_pareto_figure_has_one_legend_per_encoding_and_explains_a_gap_below_zero(tmp_path, drawn):
    out = F.forgetting_pareto(pd.DataFrame(forgetting_records()), CTX, tmp_path)
    fig, overlaps = drawn["forgetting_pareto"]
    texts = _legend_texts(fig)
    assert len(texts) == len(set(texts))                       # nothing drawn twice
    sizes = texts[texts.index("test utility / retraining's") + 1:][:len(F.UTILITY_SHOWN)]
    assert sizes == [label for _, label in F.UTILITY_SHOWN]    # fixed levels, the same for every panel
    for title in ("method", "forget regime", "test utility / retraining's"):
        assert texts.count(title) == 1
    assert {"noop", "random_relabel", "canaries", "random", F.FLOOR_LABEL, F.NOISE_LABEL} <= set(texts)
    for ax in fig.axes:
        assert ax.get_ylim()[0] < -0.35                         # random_relabel's gap 1 − 1.4
        assert [p for p in ax.patches if isinstance(p, Rectangle) and p.get_facecolor()[:3] == pytest.approx(
            (0.9, 0.9, 0.9))]
        assert "lower is better" in ax.get_xlabel()
    assert fig.axes[0].get_ylabel() == "1 − F / ceiling (lower is better)"
    assert "F above its ceiling" in out.note and "sampling noise" in out.note and F.FLOOR_NOTE in out.note
    assert overlaps == []


def test_the_cost_and_histogram_figures_have_one_legend_each(tmp_path, drawn):
    F.cost_vs_quality(pd.DataFrame(grid_records()), CTX, tmp_path)
    texts = _legend_texts(drawn["cost_vs_quality"][0])
    assert len(texts) == len(set(texts)) and texts[texts.index("removal size") + 1:][:2] == ["1", "10"]
    F.epsilon_histograms(pd.DataFrame(forgetting_records()), CTX, tmp_path)
    texts = _legend_texts(drawn["epsilon_histograms"][0])
    assert texts[:3] == ["forget regime", "random", "canaries"]


# -- 5. the headline: cost beside the verdict --------------------------------------------------------------------------
def test_each_methods_verdict_comes_with_its_cost():
    sentences = Forgetting.build(pd.DataFrame(forgetting_records()), CTX).sentences()
    by = {s.split(":")[0]: s for s in sentences}
    assert set(by) == {"naive_retrain", "noop", "random_relabel", "weight_pruning"}
    assert "a second retrained group" in by["naive_retrain"] and "; cost" not in by["naive_retrain"]
    assert by["noop"].endswith("; cost 0 s per model, 0 × naive retraining's time (median over cells).")
    assert by["random_relabel"].endswith("; cost 0.1 s (digits) to 1 s (mnist) per model, 0.01 × naive "
                                         "retraining's time (median over cells).")
    assert by["weight_pruning"].endswith("; cost 20 s (digits) to 200 s (mnist) per model, 2 × naive "
                                         "retraining's time (median over cells).")


def test_the_committed_forgetting_table_gives_each_methods_cost():
    head = (ROOT / "reports" / "forgetting.md").read_text(encoding="utf-8")
    verdicts = [line for line in head.splitlines() if re.match(r"- \w+: .* of \d+ cells", line)]
    assert {line.split(":")[0] for line in verdicts} == {f"- {m}" for m in METHODS}      # every method, baselines too
    assert {"- naive_retrain", "- noop", "- weight_pruning", "- salun", "- sisa"} <= {f"- {m}" for m in METHODS}
    for line in (v for v in verdicts if not v.startswith("- naive_retrain")):
        assert "; cost " in line and " s " in line and "× naive retraining's time" in line, line
