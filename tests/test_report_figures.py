"""What a reader sees in the report's figures (issue 19 item 6, issue 31 item 2), on hand-made records whose answers
are known and on the committed report's runs:

1. the ranking figure, one per dataset: per method its cost / retraining's (x, log; the no-op's 0 s at a floor whose
   tick says so), its distance from retraining with its interval (y), its way of missing (marker), its name beside it;
2. no two labels overlap each other or a mark, each nearer its own mark than any other (`place_labels`);
3. in every figure of the committed report: no overlapping labels or tick labels, every quality or cost axis says
   which way is better;
4. the headline gives each method's cost (seconds and × naive retraining) beside its verdict.
"""

import re
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
for _extra in ("matplotlib", "seaborn", "tabulate", "jinja2"):
    pytest.importorskip(_extra, reason="the report generator needs the `report` extra: pip install -e '.[report]'")

import matplotlib.pyplot as plt  # noqa: E402
import test_report_forgetting as tf  # noqa: E402

from unlearning.bench.report import figures as F  # noqa: E402
from unlearning.bench.report import pipeline  # noqa: E402
from unlearning.bench.report.load import load  # noqa: E402
from unlearning.bench.report.tables import Context, Forgetting  # noqa: E402
from unlearning.bench.report.tables.ranking import direction  # noqa: E402
from unlearning.common import schema  # noqa: E402
from unlearning.methods import METHODS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CTX = Context("smoke", "2.13.0+cpu", "cpu")
TICK_GAP = 2.0        # pixels between neighbouring tick labels, at least


def rec(paper: str, table: str, **kw) -> dict:
    return schema.finish(kw, paper=paper, table=table, profile="smoke")


def forgetting_records() -> list[dict]:
    """Two datasets of the audit whose utilities differ, a method whose F is above its ceiling, and costs whose
    ratios to naive retraining are 0, 0.01 and 2."""
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
    """Every figure saved while the fixture is active, by name."""
    figs = {}
    save = F._save

    def keep(fig, folder, name):
        figs[name] = fig
        return save(fig, folder, name)
    monkeypatch.setattr(F, "_save", keep)
    return figs


def overlapping_ticks(fig) -> list[str]:
    """Pairs of neighbouring tick labels of `fig` closer than TICK_GAP pixels ("'0.002' and '0.003'")."""
    renderer = F._renderer(fig)
    out = []
    for ax in fig.axes:
        for axis, horizontal in ((ax.xaxis, True), (ax.yaxis, False)):
            lo, hi = sorted(axis.get_view_interval())
            ticks = sorted((t for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_visible()
                            and t.label1.get_text()), key=lambda t: t.get_loc())
            boxes = [t.label1.get_window_extent(renderer) for t in ticks]
            out += [f"{ticks[i].label1.get_text()!r} and {ticks[i + 1].label1.get_text()!r}"
                    for i in range(len(ticks) - 1)
                    if (boxes[i + 1].x0 < boxes[i].x1 + TICK_GAP if horizontal else
                        boxes[i + 1].y0 < boxes[i].y1 + TICK_GAP)]
    return out


def labels_of(ax) -> dict:
    """The names placed beside marks: {text: the text's anchor in data coordinates, rounded}."""
    return {t.get_text(): tuple(round(float(v), 9) for v in t.get_position()) for t in ax.texts
            if t.get_gid() == F.LABEL_GID}


# -- 1. the ranking figure ---------------------------------------------------------------------------------------------
def test_the_ranking_figure_draws_cost_against_distance_with_a_named_mark_per_method(tmp_path, drawn):
    """The known ranking (test_report_forgetting.ranking_records: naive_retrain 10 s, distance 0; salun tuned 0.4 s,
    0.025; sisa 2 s, 0.2; scrub 1 s, 0.5 over-forgot; noop 0 s, 1; noise 0.01 s, 1.1 memorised): x = seconds / 10 s,
    the no-op at the floor 1e-4 (half a decade below noise's 0.001, a power of ten). California: a figure of its
    own."""
    out = {f.dataset: f for f in F.ranking(tf.frame(tf.ranking_records()), CTX, tmp_path)}
    assert {d: f.file for d, f in out.items()} == {d: f"ranking_{d}.png" for d in ("digits", "california")}
    digits = out["digits"]
    assert digits.name == "ranking_digits" and (tmp_path / digits.file).stat().st_size > 1000
    ax = drawn["ranking_digits"].axes[0]
    names = {"naive_retrain": (1.0, 0.0), "salun": (0.04, 0.025), "sisa (preset)": (0.2, 0.2),
             "scrub (preset)": (0.1, 0.5), "noop": (1e-4, 1.0), "noise (preset)": (0.001, 1.1)}
    assert labels_of(ax) == names                               # one name per method, at its own mark
    marks = {tuple(round(float(v), 9) for v in xy): c for c in ax.collections if c.get_gid() == F.MARK_GID
             for xy in c.get_offsets()}
    assert set(marks) == set(names.values())
    for xy, way in (((0.1, 0.5), F.V.OVER_FORGOT), ((0.001, 1.1), F.V.MEMORISED), ((1.0, 0.0), F.NO_DIRECTION)):
        colour = F.matplotlib.colors.to_rgb(F.DIRECTIONS[way][1])
        assert tuple(marks[xy].get_facecolor()[0][:3]) == pytest.approx(colour), xy
    bars = sorted(tuple(seg[:, 1]) for c in ax.collections if c.get_gid() != F.MARK_GID for seg in c.get_segments())
    assert (0.4, 0.6) in [pytest.approx(b) for b in bars] and (1.0, 1.2) in [pytest.approx(b) for b in bars]
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] < 1e-4
    ticks = {round(t.get_loc(), 12): t.label1.get_text() for t in ax.xaxis.get_major_ticks()}
    assert ticks[1e-4] == "0: no-op" and ticks[1.0] == "1: retraining"
    assert F.label_clashes(drawn["ranking_digits"]) == [] and overlapping_ticks(drawn["ranking_digits"]) == []
    assert "drawn at the floor 0.0001" in digits.note and "(preset)" in digits.note
    assert digits.sentences == ["digits: closest to retraining salun (tuned), distance 0.03 [0.00, 0.05] (rank =1, "
                                "shared with naive_retrain [ceiling]); mostly memorised: noop (+4.00 sd), noise "
                                "(+4.40 sd); mostly over-forgot: scrub (-2.00 sd); mostly shifted everywhere: none."]


def test_the_ranking_figures_direction_rule_and_a_distance_beyond_the_cap(tmp_path, drawn):
    assert direction({"memorised": 2, "over-forgot": 1, "cannot tell": 3}, 0.5) == F.NO_DIRECTION      # 3 without a way
    assert direction({"memorised": 3, "over-forgot": 3}, -0.2) == F.V.OVER_FORGOT                  # the sign decides
    assert direction({"matches retraining": 1, "shifted everywhere": 1}, 0.3) == F.V.EVERYWHERE      # half: its way
    assert direction({"too few points": 2}, float("nan")) == F.NO_DIRECTION
    # records made before issue 29: no effect, no verdict, so no distance: not drawn, and the note says why
    out = F.ranking(tf.frame(tf.panel_records()), CTX, tmp_path)
    assert [(f.name, f.file) for f in out] == [("ranking_digits", None)] and not list(tmp_path.iterdir())
    # an unbounded effect (a record made before effects were clipped): drawn at the cap, its distance in its name
    records = [{**r, "effect": 400.0, "effect_lo": 390.0, "effect_hi": 410.0} if r["method"] == "noise" else r
               for r in tf.ranking_records()]
    digits = next(f for f in F.ranking(tf.frame(records), CTX, tmp_path) if f.dataset == "digits")
    assert "Drawn at 40, the largest distance" in digits.note and "noise" in digits.note
    assert labels_of(drawn["ranking_digits"].axes[0])["noise (preset) ▸ 100"][1] == pytest.approx(F.DISTANCE_CAP)
    assert "noise (+400.00 sd)" in digits.sentences[-1]
    # a row without seconds is not drawn (not at the no-op's floor either), and the note names it
    records = [{**r, "seconds": float("nan")} if r["method"] == "sisa" else r for r in tf.ranking_records()]
    digits = next(f for f in F.ranking(tf.frame(records), CTX, tmp_path) if f.dataset == "digits")
    assert digits.note.endswith("Not drawn (no seconds, or no naive retraining time to divide by): sisa.")
    assert "sisa (preset)" not in labels_of(drawn["ranking_digits"].axes[0])


# -- 2. labels beside marks --------------------------------------------------------------------------------------------
def test_labels_of_a_crowded_cluster_neither_overlap_nor_sit_nearer_another_mark():
    """A 3 × 3 cluster of marks ~20 pixels apart and three marks away from it: every name is placed clear of the
    others and of every mark, and each is nearer its own mark than any other (a leader line where it had to move
    away)."""
    fig, ax = plt.subplots(figsize=(5, 3), layout="constrained", dpi=F.DPI)
    points = [(1.0 + 0.1 * (i // 3), 1.0 + 0.15 * (i % 3)) for i in range(9)] + [(0.2, 0.5), (1.8, 1.5), (1.0, 0.2)]
    ax.scatter(*zip(*points, strict=True), s=F.MARK_AREA, gid=F.MARK_GID)
    ax.set(xlim=(0, 2), ylim=(0, 2))
    F.place_labels(ax, points, [f"method_{i}" for i in range(len(points))])
    assert F.label_clashes(fig) == []
    renderer = F._renderer(fig)
    where = ax.transData.transform(points)
    leaders = {tuple(a.xy) for a in ax.texts if a.get_gid() != F.LABEL_GID}
    for i, t in enumerate(sorted((t for t in ax.texts if t.get_gid() == F.LABEL_GID),
                                 key=lambda t: int(t.get_text().split("_")[1]))):
        gaps = [F._gap(t.get_window_extent(renderer), p) for p in where]
        assert min(gaps) == gaps[i] or points[i] in leaders, t.get_text()     # beside its mark, or a line to it
    assert leaders and len(leaders) < len(points)
    plt.close(fig)


def test_trade_off_curves_are_named_at_their_ends(tmp_path, drawn):
    """The sweeps of test_report_forgetting.panel_records: one curve per knob and panel (digits canaries), named."""
    out = F.tradeoff_curves(tf.frame(tf.panel_records()), CTX, tmp_path)
    fig = drawn["tradeoff_curves"]
    assert [labels_of(ax) for ax in fig.axes] == [{"digits canaries": (1.0, 20.0)}, {"digits canaries": (1.0, 0.95)},
                                                  {"digits canaries": (1.0, 80.0)}, {"digits canaries": (1.0, 0.5)}]
    assert not fig.legends and "table `tradeoff`" in out.note and F.label_clashes(fig) == []


# -- 3. every figure of the committed report ---------------------------------------------------------------------------
def test_the_committed_reports_figures_are_readable(tmp_path, drawn):
    loaded = load([str(ROOT / "reports" / "runs")])
    ctx = pipeline.context(loaded)
    figures = F.build(loaded.records, ctx, tmp_path)
    assert not [f.error for f in figures if f.error]
    assert set(drawn) == {f.name for f in figures if f.file} == {
        "paper002_figure1", "paper000_distance", "paper000_d", "paper000_loss", "tradeoff_curves", "ranking_digits",
        "ranking_california", "ranking_mnist"}
    assert {f.name: f.dataset for f in figures if f.dataset} == {f"ranking_{d}": d for d in
                                                                 ("digits", "california", "mnist", "synthetic")}
    assert {name: F.label_clashes(fig) for name, fig in drawn.items() if F.label_clashes(fig)} == {}
    assert {name: overlapping_ticks(fig) for name, fig in drawn.items() if overlapping_ticks(fig)} == {}
    rows = F.ranking_rows(loaded.records, ctx)
    for ds in ("digits", "california", "mnist"):            # every ranked method named once (synthetic: none ranked)
        named = {n.removesuffix(" (preset)") for n in labels_of(drawn[f"ranking_{ds}"].axes[0])}
        assert named == set(rows.loc[rows["dataset"] == ds, "method"])
    legends = {name: len(legend.get_texts()) for name, fig in drawn.items() for legend in fig.legends}
    assert max(legends.values()) <= 6 and "tradeoff_curves" not in legends    # no legend of many colours
    check_axes_say_which_way_is_better(drawn)


def check_axes_say_which_way_is_better(drawn: dict):
    """Every axis that measures quality or cost says which way is better (the counts and epochs do not need to)."""
    for name, fig in drawn.items():
        for ax in fig.axes:
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                if label and label != "removal size" and not label.startswith(("epoch", "fine-tune epoch",
                                                                                "random_relabel", "weight_pruning")):
                    assert "is better" in label, (name, label)


# -- 4. the headline: cost beside the verdict --------------------------------------------------------------------------
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


def test_a_trade_off_sentence_leaves_out_a_utility_the_dataset_does_not_have():
    """California (regression) has no test accuracy: its sweep sentences name the best knob value and stop there."""
    text = (ROOT / "reports" / "figures.md").read_text(encoding="utf-8")
    california = [line for line in text.splitlines() if ", california " in line and "F / ceiling is highest" in line]
    assert california and all(line.endswith(".") and "(utility" not in line for line in california)
    assert "(utility )" not in text and "digits canaries: F / ceiling is highest" in text
