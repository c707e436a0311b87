"""The report's forgetting parts on hand-made records whose answers are known: paper 002's lr sweep
table, the trade-off table and figure, and every method (baselines, plug-ins,
tuned beside preset) in the forgetting table, the ranking and the tuned points."""

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("tabulate")
pytest.importorskip("seaborn")

from unlearning.bench.report import common  # noqa: E402
from unlearning.bench.report import figures as F  # noqa: E402
from unlearning.bench.report.tables import Context, Forgetting, RelabelLr, Tradeoff, ranking  # noqa: E402
from unlearning.bench.report.tables.sweeps import PAPER_DROP  # noqa: E402
from unlearning.common import schema  # noqa: E402

CTX = Context("smoke", "2.13.0+cpu", "cpu")


def rec(paper: str, table: str, **kw) -> dict:
    return schema.finish({"dataset": "mnist", "removal_size": 600, **kw}, paper=paper, table=table, profile="smoke")


def lr_records() -> list[dict]:
    """Originals at 99 % test accuracy; relabeling at lr 1e-3 keeps it, 1e-2 loses 2.1 points, 0.1 collapses."""
    out = [rec("002", "table1", method="original", removal_size=0, test_acc=0.99, seed=s) for s in (0, 1)]
    for lr, acc, gap in ((1e-3, 0.99, 0.30), (1e-2, 0.969, 0.05), (0.1, 0.5, 0.4)):
        out += [rec("002", "lr_sweep", method="random_relabel", lr=lr, seed=s, test_acc=acc + s * 1e-3,
                    forget_acc=acc, mia_efficacy=0.1, mia_efficacy_oracle=0.1 + gap, mia_gap=gap, loss_auc=0.5,
                    loss_auc_oracle=0.49, js_to_oracle=gap / 10, seconds=8.0) for s in (0, 1)]
    return out


def panel_records() -> list[dict]:
    """One canaries panel: the main table's records (preset lr 1e-3, threshold × 1) and the sweeps."""
    base = {"dataset": "digits", "forget_regime": "canaries", "removal_size": 20, "n_models": 32,
            "forget_quality_ceiling": 0.4}
    out = [rec("forgetting", "forgetting", method=m, test_acc=acc, forget_acc=0.0, seconds=sec,
               forget_quality=f, forget_quality_normalised=f / 0.4, mia_gap=gap, js_to_oracle=gap,
               epsilon_per_example=eps, epsilon_cap=4, **base)
           for m, acc, sec, f, gap, eps in (
               ("naive_retrain", 0.90, 10.0, 0.4, 0.0, [0.0, 1.0]),
               ("noop", 0.90, 0.0, 0.0, 0.5, [6.0, 60.0]),
               ("random_relabel", 0.90, 0.1, 0.1, 0.3, [3.0, 5.0]),
               ("weight_pruning", 0.80, 20.0, 0.2, 0.2, [2.0, 2.0]))]
    out += [rec("forgetting", "forgetting_sweep", method="random_relabel", lr=lr, test_acc=acc, forget_acc=0.0,
                seconds=0.1, forget_quality=f, forget_quality_normalised=f / 0.4, mia_gap=0.1, **base)
            for lr, acc, f in ((0.1, 0.85, 0.3), (1.0, 0.2, 0.38))]
    out += [rec("forgetting", "forgetting_sweep", method="weight_pruning", threshold_scale=0.25, test_acc=0.7,
                weights_zeroed=500.0, forget_quality=0.36, forget_quality_normalised=0.9, seconds=20.0, **base)]
    return out


def frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(records)


def test_lr_sweep_names_the_lr_nearest_the_papers_drop():
    table = RelabelLr.build(frame(lr_records() + panel_records()), CTX)
    assert PAPER_DROP == pytest.approx(96.99 - 99.02)
    assert list(table.data["lr"]) == [1e-3, 1e-2, 0.1] and list(table.data["n"]) == [2, 2, 2]
    best = table.closest()
    assert best["lr"] == 1e-2 and best["delta_test"] == pytest.approx(96.95 - 99.0)
    text = " ".join(table.sentences())
    # two seeds 0.1 points apart: a bootstrap interval [-2.10, -2.00] that holds the paper's -2.03
    assert "closest at lr 0.01 (-2.05 [-2.10, -2.00] over 2 seeds; the paper's lies inside our 95 % CI" in text
    assert "MIA-efficacy is 0.100 [0.100, 0.100] (oracle 0.150 [0.150, 0.150]; gap 0.050 [0.050, 0.050])" in text
    assert "the threshold-free loss AUC 0.500 [0.500, 0.500] (oracle 0.490 [0.490, 0.490])" in text
    # F / ceiling comes from the MNIST panels only: these panels are digits, so the column is absent
    assert not any(c.startswith("f_normalised_") for c in table.data.columns)
    assert [c.ours for c in table.cells()] == [1e-2, pytest.approx(-2.05)]


def test_lr_sweep_measures_the_drop_from_its_own_originals():
    """Records that carry their originals' test accuracy are compared with it, not with Table 1's models."""
    records = [{**r, "test_acc": 0.5} if r["table"] == "table1" else {**r, "control_test_acc": 0.99}
               for r in lr_records()]
    table = RelabelLr.build(frame(records), CTX)
    assert table.base == pytest.approx(99.0) and table.closest()["lr"] == 1e-2


def test_lr_sweep_takes_f_from_the_mnist_panels_at_the_same_lr():
    panels = [{**r, "dataset": "mnist"} for r in panel_records()]
    table = RelabelLr.build(frame(lr_records() + panels), CTX)
    f = dict(zip(table.data["lr"], table.data["f_normalised_canaries"], strict=True))
    assert f[1e-3] == pytest.approx(0.25) and f[0.1] == pytest.approx(0.75) and pd.isna(f[1e-2])
    assert "F / ceiling (canaries, subset; higher is better)" in table.display.columns
    # the lr nearest the paper's drop (1e-2) was not swept on the panels: the swept lrs around it are named
    assert table.sentences()[-1] == ("On the MNIST subset panels (N models, F needs one forget set) at the swept lrs "
                                     "around it (0.001, 0.1), F / ceiling is canaries 0.25 → 0.75.")


def test_tradeoff_puts_each_presets_record_on_its_curve():
    table = Tradeoff.build(frame(panel_records()), CTX)
    relabel = table.data[table.data["method"] == "random_relabel"]
    assert list(relabel["value"]) == [1e-3, 0.1, 1.0]                 # the preset 1e-3 from the main table
    assert list(relabel["forget_quality_normalised"]) == pytest.approx([0.25, 0.75, 0.95])
    pruning = table.data[table.data["method"] == "weight_pruning"]
    assert list(pruning["value"]) == [0.25, 1.0] and list(pruning["weights_zeroed"][:1]) == [500.0]
    text = " ".join(table.sentences())
    assert "random_relabel on digits (canaries): F / ceiling 0.25 at relabel lr 0.001, 0.95 at 1; best 0.95 at 1 " \
           "(utility 20)." in text          # these records predate verdicts: none is claimed
    assert Tradeoff.build(frame([r for r in panel_records() if r["table"] == "forgetting"]), CTX) is None
    md = table.markdown()            # relabeling's epochs are 0 by construction: the note says so, and which way is up
    assert "F / ceiling (higher is better)" in md and "| epochs " in md
    assert "random_relabel answers each removal request with one optimizer step" in md
    assert "its epochs are 0 by construction, not a no-op" in md
    forgetting = Forgetting.build(frame(panel_records()), CTX).markdown()
    assert "RTE (> 1: faster)" in forgetting and "F / ceiling" in forgetting and "p (BH)" in forgetting


def test_the_trade_off_figure_says_where_f_peaks(tmp_path):
    df = frame(lr_records() + panel_records())
    curves = F.tradeoff_curves(df, CTX, tmp_path)
    assert (tmp_path / curves.file).exists()
    assert "random_relabel, digits canaries: F / ceiling is highest, 0.95, at relabel lr 1 (utility 20)." \
        in curves.sentences
    empty = F.tradeoff_curves(df.iloc[0:0], CTX, tmp_path)
    assert empty.file is None and "no sweep records" in empty.note


# -- every method, tuned beside preset, and the ranking --------------------------------------------------------------
def cell_rec(method: str, f: tuple, sec: tuple, acc: tuple, p: float = 0.5, regime: str = "canaries",
             dataset: str = "digits", effect: tuple = (0.0, -0.1, 0.1), **kw) -> dict:
    """One forgetting record of a 20-point cell (ceiling 0.4): F (mean, lo, hi), seconds and a quality (accuracy
    or, with mse=True, test MSE) as (mean, lo, hi) over the models; the effect (mean, lo, hi; by default inside the
    margin), p-value `p` (the shift test's too)."""
    quality = "test_mse" if kw.pop("mse", False) else "test_acc"
    return rec("forgetting", "forgetting", dataset=dataset, forget_regime=regime, removal_size=20, n_models=8,
               method=method, forget_quality=f[0], forget_quality_lo=f[1], forget_quality_hi=f[2],
               forget_quality_ceiling=0.4, forget_quality_normalised=f[0] / 0.4, seconds=sec[0], seconds_lo=sec[1],
               seconds_hi=sec[2], **{quality: acc[0], f"{quality}_lo": acc[1], f"{quality}_hi": acc[2]},
               p_value=p, p_value_shift=p, effect=effect[0], effect_lo=effect[1], effect_hi=effect[2],
               unlearn_score=f[0], **kw)


TUNED_KEYS = {"setting": "tuned", "tuned_point": "lr=0.01, epochs=3", "tuned_score": 0.2, "tuning_trials": 16,
              "tuning_seconds": 30.0, "tuning_n_models": 8}


def ranking_records() -> list[dict]:
    """digits canaries, the answer known. Distance from retraining, |effect| / |the no-op's effect| (4.0) [folded
    interval]: naive_retrain 0 [0, 0.025]; salun tuned 0.025 [0, 0.05] overlaps it (=1); sisa 0.2 [0.15, 0.25] does
    not (3); scrub, over-forgot, 0.5 [0.4, 0.6] (4); noop 1 [0.875, 1.125] (5); the plug-in `noise` 1.1 [1.0, 1.2]
    overlaps it (=5). salun's preset is not ranked (its tuned cell is). A random cell, preset only, is not ranked on
    digits (no method is tuned there). California (regression, nothing tuned): ranked on its preset cells,
    utility by MSE."""
    s = "setting"
    out = [cell_rec("naive_retrain", (0.4, 0.36, 0.44), (10.0, 9.5, 10.5), (0.90, 0.89, 0.91), **{s: "preset"}),
           cell_rec("noop", (0.0, 0.0, 0.04), (0.0, 0.0, 0.0), (0.90, 0.89, 0.91), p=0.001, effect=(4.0, 3.5, 4.5)),
           cell_rec("salun", (0.1, 0.08, 0.12), (0.5, 0.45, 0.55), (0.85, 0.84, 0.86), **{s: "preset"}),
           cell_rec("salun", (0.38, 0.34, 0.42), (0.4, 0.39, 0.41), (0.88, 0.87, 0.89), effect=(-0.1, -0.2, 0.0),
                    **TUNED_KEYS),
           cell_rec("scrub", (0.2, 0.18, 0.22), (1.0, 0.9, 1.1), (0.90, 0.89, 0.91), p=0.001,
                    effect=(-2.0, -2.4, -1.6)),
           cell_rec("sisa", (0.3, 0.2, 0.32), (2.0, 1.5, 2.5), (0.72, 0.70, 0.74), effect=(0.8, 0.6, 1.0),
                    training_seconds=7.0),
           cell_rec("noise", (0.012, 0.0, 0.02), (0.01, 0.01, 0.01), (0.45, 0.40, 0.50), p=0.001,
                    effect=(4.4, 4.0, 4.8))]
    out += [cell_rec(m, (0.4, 0.3, 0.4), (1.0, 1.0, 1.0), (0.9, 0.9, 0.9), regime="random")
            for m in ("naive_retrain", "noop", "salun", "scrub")]
    out += [cell_rec(m, (f, f - 0.02, f + 0.02), (sec, sec, sec), (mse, mse, mse), mse=True, dataset="california")
            for m, f, sec, mse in (("naive_retrain", 0.4, 5.0, 0.5), ("noop", 0.1, 0.0, 0.6),
                                   ("gradient_ascent", 0.3, 0.2, 1.0))]
    return out


def test_method_order_puts_the_baselines_after_the_papers_and_plugins_last():
    labels = ["noise", "sisa", "salun (tuned)", "salun", "noop", "naive_retrain", "gradient_ascent", "newton_removal",
              "neggrad_plus", "scrub", "l1_sparse", "random_relabel", "finetune", "weight_pruning", "a_plugin"]
    assert sorted(labels, key=common.method_key) == [
        "naive_retrain", "noop", "weight_pruning", "finetune", "random_relabel", "gradient_ascent", "neggrad_plus",
        "l1_sparse", "salun", "salun (tuned)", "scrub", "sisa", "newton_removal", "a_plugin", "noise"]
    # runs saved before `setting` was recorded ran the presets
    old = frame(panel_records())
    assert "setting" not in old.columns and set(common.labelled(old)["label"]) == set(old["method"])


def test_tied_ranks_share_the_best_of_their_group():
    mean = pd.Series([0.9, 0.85, 0.5, 0.45, 0.3, float("nan"), 0.2, 0.2])
    lo = pd.Series([0.8, 0.75, 0.4, 0.3, 0.2, float("nan"), float("nan"), float("nan")])
    hi = pd.Series([1.0, 0.95, 0.6, 0.55, 0.35, float("nan"), float("nan"), float("nan")])
    rank, tied = ranking.tied_ranks(mean, lo, hi, higher=True)
    # 0.3's [0.2, 0.35] overlaps 0.45's [0.3, 0.55] but not its group's best (0.5, [0.4, 0.6]): a new rank;
    # without intervals only an equal mean ties; a missing mean has no rank
    assert list(rank.fillna(0)) == [1, 1, 3, 3, 5, 0, 6, 6]
    assert list(tied) == [False, True, False, True, False, False, False, True]
    rank, tied = ranking.tied_ranks(pd.Series([3.0, 1.0, 2.0]), pd.Series([2.5, 0.5, 1.2]),
                                    pd.Series([3.5, 1.5, 2.2]), higher=False)      # lower is better (seconds)
    assert list(rank) == [3, 1, 1] and list(tied) == [False, False, True]


def test_ranking_uses_tuned_cells_marks_floor_and_ceiling_and_ranks_by_the_rule():
    table = ranking.Ranking.build(frame(ranking_records()), CTX)
    d = table.data[table.data["dataset"] == "digits"].set_index("label")
    assert list(d.index) == ["naive_retrain", "salun (tuned)", "sisa", "scrub", "noop", "noise"]
    assert list(d["forgetting_rank"]) == [1, 1, 3, 4, 5, 5] and list(d["forgetting_tied"]) == [
        False, True, False, False, False, True]
    assert d.loc["scrub", "distance"] == pytest.approx(0.5) and d.loc["scrub", "effect"] == -2.0
    assert d.loc["salun (tuned)", "distance_lo"] == 0 and d.loc["sisa", "distance_lo"] == pytest.approx(0.15)
    assert set(d["cells"]) == {1} and set(d["regimes"]) == {"canaries"}      # the tuned cells only
    assert d.loc["salun (tuned)", "setting"] == "tuned" and d.loc["sisa", "setting"] == "preset"
    assert d.loc["noop", "role"] == "floor" and d.loc["naive_retrain", "role"] == "ceiling"
    assert d.loc["salun (tuned)", "f_normalised_lo"] == pytest.approx(0.85)       # F / ceiling stays a column
    # cost: noop 0 first; noise 0.01; salun 0.4; scrub 1.0; sisa's removal 2.0 (its training 7 s apart); naive 10
    assert d.loc[["noop", "noise", "salun (tuned)", "scrub", "sisa", "naive_retrain"], "cost_rank"].tolist() == [
        1, 2, 3, 4, 5, 6]
    assert d.loc["sisa", "training_seconds"] == 7.0 and d["training_seconds"].drop("sisa").isna().all()
    # utility: test accuracy / retraining's; scrub and noop as retraining (=1), salun 0.88 / 0.9 ...
    assert d.loc["salun (tuned)", "utility_ratio"] == pytest.approx(0.88 / 0.90)
    assert d.loc[["naive_retrain", "noop", "scrub"], "utility_rank"].tolist() == [1, 1, 1]
    assert d.loc["sisa", "utility_rank"] == 5 and d.loc["noise", "utility_rank"] == 6
    assert d.loc["salun (tuned)", "verdicts"] == "1 matches retraining"
    assert d.loc["scrub", "verdicts"] == "1 over-forgot"
    assert d.loc["noop", "verdicts"] == "1 memorised" and d.loc["sisa", "verdicts"] == "1 cannot tell"
    cal = table.data[table.data["dataset"] == "california"].set_index("label")
    assert cal.loc["gradient_ascent", "utility_ratio"] == pytest.approx(0.5 / 1.0)       # MSE: retraining's / its
    assert cal.loc["noop", "utility_ratio"] == pytest.approx(0.5 / 0.6) and set(cal["setting"]) == {"preset"}
    md = table.markdown()
    assert "| =1 " in md and "training s (SISA, once)" in md and ranking.RANK_RULE in md
    digits = next(s for s in table.sentences() if s.startswith("digits"))
    assert digits.startswith("digits (1 cell, canaries; tuned: salun; the others at their preset): forgetting "
                             "1 naive_retrain [ceiling] 0.00, =1 salun (tuned) 0.03, 3 sisa 0.20, 4 scrub 0.50, "
                             "5 noop [floor] 1.00, =5 noise 1.10; cost 1 noop [floor] 0, 2 noise 0.01, ")


def test_forgetting_table_shows_tuned_rows_beside_preset_and_tuned_points():
    df = frame(ranking_records())
    table = Forgetting.build(df, CTX)
    canaries = table.data[(table.data["dataset"] == "digits") & (table.data["regime"] == "canaries")]
    assert list(canaries["label"]) == ["naive_retrain", "noop", "salun", "salun (tuned)", "scrub", "sisa", "noise"]
    assert list(table.display["method"][canaries.index]) == list(canaries["label"])
    assert "training s (SISA, once)" in table.display.columns and "salun (tuned)" in table.markdown()
    assert any(s.startswith("salun (tuned): 1 matches retraining of 1 cells") for s in table.sentences())
    assert any(s.startswith("scrub: 1 over-forgot, 1 cannot tell of 2 cells") for s in table.sentences())
    assert "forgetting: salun (tuned), cells matching retraining (of those with a verdict)" in [
        c.label for c in table.cells()]
    assert set(table.show(table.data)["retain / test, sd"]) == {"not recorded"}      # no control rows recorded
    points = ranking.TunedPoints.build(df, CTX)
    assert points.data[["dataset", "method", "searched_on", "tuned_point", "tuning_trials",
                        "tuning_seconds"]].values.tolist() == [
        ["digits", "salun", "legacy", "lr=0.01, epochs=3", 16, 30.0]]
    assert points.sentences() == ["digits: 1 method searched (legacy), 16 trials each, 30 s of search in all."]
    assert ranking.TunedPoints.build(frame(panel_records()), CTX) is None       # no tuned records: no table


def test_the_tuned_points_table_shows_a_per_regime_search_its_rescore_and_convergence():
    per_regime = {**TUNED_KEYS, "tuned_score": 0.3, "tuning_trials": 32, "tuning_objective": "distance",
                  "tuning_regime": "canaries", "tuning_sizes": [20, 100], "tuned_rescore": 0.4, "tuned_rescore_lo": 0.1,
                  "tuned_rescore_hi": 0.7, "tuned_feasible": True, "tuning_noop_score": 1.0,
                  "tuning_preset_rescore": 1.5, "tuning_convergence": [None] + [0.9] * 10 + [0.3] * 21}
    recs = [{**cell_rec("scrub", (0.2, 0.18, 0.22), (1.0, 0.9, 1.1), (0.90, 0.89, 0.91), effect=(0.3, 0.1, 0.5),
                        **per_regime), "removal_size": size} for size in (20, 100)]
    points = ranking.TunedPoints.build(frame(recs), CTX)
    row = points.display.iloc[0]
    assert (row["searched on"], row["sizes"], row["validation"], row["re-score [interval]"]) == (
        "canaries", "20, 100", "0.300", "0.400 [0.100, 0.700]")
    assert (row["preset re-score"], row["no-op re-score"]) == ("1.500", "1.000")
    assert row["best after 8 / 16 / 24 / 32 trials"] == "0.900 / 0.300 / 0.300 / 0.300"
    assert points.data["cells"].tolist() == [2]
    assert points.sentences()[1] == "digits: 1 of 1 per-regime points re-score at or below the no-op's distance."
