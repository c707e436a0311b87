"""95 % intervals in the report's tables, and the same interval in the CLI's summary.

The interval itself (`unlearning.common.summary`, shared by the CLI and the report) is tested in tests/test_summary.py.
Here tables are built from hand-made records whose intervals, and whether a paper's number lies in them, are known;
and the CLI's printed summary and the report's Table 1 are built from the same records and must agree.
"""

import re

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="the report generator needs the `report` extra")
pytest.importorskip("tabulate", reason="the report generator needs the `report` extra")
from scipy import stats  # noqa: E402

from unlearning.bench.report import common as C  # noqa: E402
from unlearning.bench.report import paper as P  # noqa: E402
from unlearning.bench.report.tables import (  # noqa: E402
    Context,
    Ensemble,
    Grid,
    Headline,
    Paper000California,
    Paper000Table1,
    Paper002Table1,
    RelabelLr,
    Tradeoff,
)
from unlearning.common import schema  # noqa: E402
from unlearning.common import summary as S  # noqa: E402
from unlearning.running import cli  # noqa: E402

CTX = Context("smoke", "2.13.0+cpu", "cpu")


def scipy_bootstrap(*samples, statistic=np.mean, paired=False):
    res = stats.bootstrap(samples, statistic, paired=paired, confidence_level=S.CONFIDENCE, method="BCa",
                          n_resamples=S.BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(S.BOOTSTRAP_SEED))
    return tuple(float(x) for x in res.confidence_interval)


# -- the report's side of the shared summary (its tests: tests/test_summary.py) ------------------------------------
def test_the_report_summarises_with_the_shared_function():
    assert (C.summary, C.stats, C.ratio_interval, C.INTERVAL_NOTE) == (S.summary, S.stats, S.ratio_interval,
                                                                       S.INTERVAL_NOTE)


def test_one_value_has_no_interval_in_a_table():
    assert C.ci(3.0, C.NAN, C.NAN, ".2f") == "3.00"                     # the mean alone, never a made-up range
    assert C.covers(C.NAN, C.NAN, 3.0) == ""
    assert C.summary_columns("x", [3.0]) == {"x": 3.0, "x_sd": pytest.approx(C.NAN, nan_ok=True),
                                             "x_lo": pytest.approx(C.NAN, nan_ok=True),
                                             "x_hi": pytest.approx(C.NAN, nan_ok=True)}
    acc = [0.9, 1.0, 1.0, 0.95]                 # cut at the key's range: the column's name unless `key` says
    assert C.summary_columns("test_acc", acc, scale=100)["test_acc_hi"] == 100.0
    assert C.summary_columns("acc", acc, sd=False, key="test_acc")["acc_hi"] == 1.0


def test_compare_says_whether_the_paper_lies_in_our_interval():
    assert C.compare(1.0, 1.2, ".2f", lo=0.9, hi=1.1) == "1.00 [0.90, 1.10] (paper 1.20, outside our 95 % CI; Δ -0.20)"
    assert C.compare(1.0, 1.05, ".2f", lo=0.9, hi=1.1) == "1.00 [0.90, 1.10] (paper 1.05, inside our 95 % CI; Δ -0.05)"
    assert C.compare(1.0, 1.05, ".2f") == "1.00 (paper 1.05; Δ -0.05)"        # no interval: no claim


# -- tables ---------------------------------------------------------------------------------------------------
SEEDS_ACC = (0.9900, 0.9905, 0.9895)       # test accuracy of 3 seeds: mean 99.00 %, t interval 99.00 ± 0.124


def rec(paper: str, table: str, **kw) -> dict:
    return schema.finish(kw, paper=paper, table=table, profile="smoke")


def p002_records() -> pd.DataFrame:
    rows = [rec("002", "table1", dataset="mnist", method="original", removal_size=0, seed=s, test_acc=acc,
                forget_acc=acc, total_acc=acc) for s, acc in enumerate(SEEDS_ACC)]
    rows += [rec("002", "table1", dataset="mnist", method=m, removal_size=n, seed=s, test_acc=acc, forget_acc=acc,
                 total_acc=acc) for m in ("naive_retrain", "random_relabel") for n in P.P002_SIZES
             for s, acc in enumerate(SEEDS_ACC)]
    return pd.DataFrame(rows)


def test_paper_table_carries_intervals_and_whether_the_paper_lies_in_them():
    t = Paper002Table1.build(p002_records(), CTX)
    half = stats.t.ppf(0.975, 2) * stats.sem([100 * a for a in SEEDS_ACC])
    assert half == pytest.approx(0.124, abs=1e-3)
    assert t.data["test_acc_lo"].tolist() == pytest.approx([99.0 - half] * 5)
    assert t.data["test_acc_hi"].tolist() == pytest.approx([99.0 + half] * 5)
    # the paper's test accuracies 99.02, 99.03, 99.02 lie in [98.876, 99.124]; 99.14 and 96.99 do not
    assert [r[2] for r in P.P002_TABLE1] == [99.02, 99.03, 99.02, 99.14, 96.99]
    assert t.data["test_acc_paper_in_ci"].tolist() == ["yes", "yes", "yes", "no", "no"]
    csv = pd.read_csv(pd.io.common.StringIO(t.csv()), dtype=str, keep_default_na=False)
    cols = list(csv.columns)
    assert cols[cols.index("test_acc"):cols.index("test_acc") + 7] == [
        "test_acc", "test_acc_sd", "test_acc_lo", "test_acc_hi", "test_acc_paper", "test_acc_delta",
        "test_acc_paper_in_ci"]
    md = t.markdown()
    assert f"| 99.00 [{99 - half:.2f}, {99 + half:.2f}] " in md and "paper in our 95 % CI" in md
    assert "test yes, unlearned yes, total yes" in md and "test no, unlearned no, total no" in md
    assert C.INTERVAL_NOTE in md

    head = Headline.build({"paper002_table1": t}, CTX)
    assert list(head.data.columns) == ["profile", "quantity", "paper", "ours", "ours_lo", "ours_hi", "delta",
                                       "paper_in_ci"]
    assert head.data["paper_in_ci"].tolist() == ["yes", "yes", "yes", "no", "no", "no"]     # the last: unlearned
    assert "| 002 MNIST: naive 600 test acc %" in head.markdown() and "| no " in head.markdown()
    assert f"99.00 [{99 - half:.2f}, {99 + half:.2f}]" in head.markdown()


def test_a_table_without_records_or_with_one_seed_claims_nothing():
    one = Paper002Table1.build(p002_records().groupby(["method", "removal_size"]).head(1), CTX)
    assert one.data["test_acc_lo"].isna().all() and set(one.data["test_acc_paper_in_ci"]) == {""}
    assert "[" not in one.display["test acc %"].str.cat()
    empty = Paper002Table1.build(pd.DataFrame(), CTX)
    assert set(empty.data["test_acc_paper_in_ci"]) == {""}


def test_california_ratio_interval_is_paired_by_seed():
    epochs = {"naive_retrain": (400, 600, 1000), "weight_pruning": (300, 500, 1000)}
    control = (420, 580, 1000)
    rows = [rec("000", "california", dataset="california", method=m, seed=s, epochs=e[s], control_epochs=control[s],
                control_converged=True, hit_cap=False) for m, e in epochs.items() for s in range(3)]
    t = Paper000California.build(pd.DataFrame(rows), CTX)
    by = t.data.set_index("model")
    lo, hi = scipy_bootstrap(np.array(epochs["naive_retrain"], float), np.array(control, float),
                             statistic=lambda x, y, axis=-1: x.mean(axis) / y.mean(axis), paired=True)
    assert (by.loc["m_o", "ratio_to_mc_lo"], by.loc["m_o", "ratio_to_mc_hi"]) == (lo, hi)
    assert by.loc["m_o", "ratio_to_mc_paper_in_ci"] == C.covers(lo, hi, P.P000_CALIFORNIA_MO_OVER_MC)
    assert pd.isna(by.loc["m_c", "ratio_to_mc_lo"])             # m_c / m_c is 1 by definition: no interval
    assert by.loc["m_o", "epochs_paper_in_ci"] == "yes"          # 463 lies in the interval of 400, 600, 1000
    cells = {c.key: c for c in t.cells()}
    assert (cells["p000_cal_mo_mc"].lo, cells["p000_cal_mo_mc"].hi) == (lo, hi)


def test_grid_cells_carry_intervals():
    rows = [rec("grid", "grid", dataset="digits", method="finetune", optimizer="adam", lr=1e-3, removal_size=10,
                seed=s, seconds=sec, samples_processed=100, speedup_vs_naive=2.0 + s, test_acc=0.9, d=0.1 * s,
                hit_cap=False, oracle_converged=True) for s, sec in enumerate((1.0, 1.2, 1.1))]
    g = Grid.build(pd.DataFrame(rows), CTX)
    r = g.data.iloc[0]
    lo, hi = stats.ttest_1samp([1.0, 1.2, 1.1], 0.0).confidence_interval(0.95)
    assert (r["seconds_lo"], r["seconds_hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert {f"{k}_{p}" for k in ("seconds", "speedup_vs_naive", "quality", "d") for p in ("lo", "hi")} \
        <= set(g.data.columns)
    assert f"1.1 [{C.num(lo, C.SECONDS)}, {C.num(hi, C.SECONDS)}]" in g.markdown()


def test_repeated_runs_of_a_timing_benchmark_are_averaged_with_an_interval():
    rows = [rec("overhead", "ensemble", dataset="california-shaped random", method="fit_many", k=8, seed=0,
                seconds=s, sequential_seconds=6 * s, speedup=6.0 + i, speedup_target=6.5,
                speedup_within_target=6.0 + i >= 6.5) for i, s in enumerate((0.1, 0.12))]
    e = Ensemble.build(pd.DataFrame(rows), CTX)
    r = e.data.iloc[0]
    assert r["n"] == 2 and r["speedup"] == 6.5 and (r["speedup_lo"], r["speedup_hi"]) == (6.0, 7.0)
    assert r["within_target"] == "1/2" and "within in 1 of 2 runs" in e.sentences()[0]
    assert "6.5 [6, 7]" in e.markdown()
    single = Ensemble.build(pd.DataFrame(rows[:1]), CTX)
    assert single.data["within_target"].tolist() == ["no"] and pd.isna(single.data["speedup_lo"].iloc[0])


def test_lr_sweep_gives_the_threshold_free_attack_with_its_spread_across_seeds():
    auc, eff = (0.50, 0.52, 0.51), (0.10, 0.30, 0.20)
    rows = [rec("002", "lr_sweep", dataset="mnist", method="random_relabel", lr=1e-3, removal_size=600, seed=s,
                test_acc=0.98, control_test_acc=0.99, forget_acc=0.98, mia_efficacy=eff[s], mia_efficacy_oracle=0.1,
                mia_gap=abs(eff[s] - 0.1), loss_auc=auc[s], loss_auc_oracle=0.5, js_to_oracle=0.01, seconds=1.0)
            for s in range(3)]
    t = RelabelLr.build(pd.DataFrame(rows), CTX)
    r = t.data.iloc[0]
    lo, hi = stats.ttest_1samp(auc, 0.0).confidence_interval(0.95)
    assert (r["loss_auc_lo"], r["loss_auc_hi"]) == (pytest.approx(lo), pytest.approx(hi))
    eff_lo, eff_hi = stats.ttest_1samp(eff, 0.0).confidence_interval(0.95)
    assert eff_lo < 0 and (r["mia_efficacy_lo"], r["mia_efficacy_hi"]) == (0.0, pytest.approx(eff_hi))  # cut at 0
    assert r["delta_test"] == pytest.approx(-1.0) and (r["delta_test_lo"], r["delta_test_hi"]) == (-1.0, -1.0)
    md = t.markdown()
    assert "MIA-efficacy" in md and "loss AUC (threshold-free)" in md and f"0.510 [{lo:.3f}, {hi:.3f}]" in md


def test_tradeoff_rows_of_one_record_have_no_interval():
    rows = [rec("forgetting", "forgetting", dataset="digits", forget_regime="canaries", removal_size=20,
                method="random_relabel", n_models=32, test_acc=0.9, forget_acc=0.1, mia_gap=0.2, loss_auc=0.4,
                loss_auc_oracle=0.5, forget_quality_normalised=0.5, seconds=0.1),
            rec("forgetting", "forgetting_sweep", dataset="digits", forget_regime="canaries", removal_size=20,
                method="random_relabel", lr=0.1, n_models=32, test_acc=0.8, forget_acc=0.1, mia_gap=0.1,
                loss_auc=0.45, loss_auc_oracle=0.5, forget_quality_normalised=0.7, seconds=0.1)]
    t = Tradeoff.build(pd.DataFrame(rows), CTX)
    assert t.data["n"].tolist() == [1, 1] and t.data["loss_auc"].tolist() == [0.4, 0.45]
    assert t.data[["loss_auc_lo", "loss_auc_hi", "utility_lo", "mia_gap_hi"]].isna().all().all()
    md = t.markdown()
    assert "| loss AUC " in md and "a row of one record has no interval" in md and "0.450 [" not in md


def test_synthetic_avg_row_carries_its_interval_and_the_papers_avg_in_or_out():
    ratio = (0.5, 0.6, 0.55, 0.52)                  # 4 trials: the paper's avg ratio 0.5396 lies in their interval
    rows = []
    for t, r in enumerate(ratio, start=1):
        for method, epochs in (("weight_pruning", 100 * r), ("naive_retrain", 100), ("finetune", 90)):
            rows.append(rec("000", "table1", dataset="synthetic", method=method, trial=t, seed=t - 1, epochs=epochs,
                            epoch_ratio=r if method == "weight_pruning" else None, train_acc=1.0, d=0.1 * t,
                            weights_zeroed=1, hit_cap=False, collapsed=False))
    table = Paper000Table1.build(pd.DataFrame(rows), CTX)
    avg = table.avg
    lo, hi = stats.ttest_1samp(ratio, 0.0).confidence_interval(0.95)
    assert (avg["epoch_ratio_lo"], avg["epoch_ratio_hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert lo < P.P000_TABLE1_AVG[2] < hi and avg["epoch_ratio_paper_in_ci"] == "yes"
    # every m_r accuracy is 1.0: the interval is the point, and the paper's 0.95 is outside it
    assert (avg["mr_acc_lo"], avg["mr_acc_hi"]) == (1.0, 1.0) and avg["mr_acc_paper_in_ci"] == "no"
    assert table.data["epoch_ratio_lo"].iloc[:4].isna().all()           # one trial is one value: none
    md = table.markdown()
    assert f"{avg['epoch_ratio']:.4f} [{lo:.4f}, {hi:.4f}]" in md and "ratio yes" in md and "m_r acc no" in md
    cell = next(c for c in table.cells() if c.key == "p000_t1_epoch_ratio")
    assert (cell.lo, cell.hi) == (pytest.approx(lo), pytest.approx(hi))
    assert "inside our 95 % CI" in table.sentences()[0]


# -- the CLI and the report: the same interval for the same records -----------------------------------------------
def cli_summary(records: list[dict]) -> dict[str, dict[str, str]]:
    """The CLI's printed per-method summary as {method: {column: cell}}."""
    header, _, *rows = cli.summary_table(records, cli.footnotes(records))
    columns = re.split(r"\s{2,}", header.strip())
    return {cells[0]: dict(zip(columns, cells, strict=True))
            for cells in (re.split(r"\s{2,}", row.strip()) for row in rows)}


def test_the_cli_prints_the_interval_of_the_reports_table():
    """Paper 000's Table 1 is the CLI's main job: four trials of CLI-shaped records, summarised by both."""
    m_r = {"epochs": (52, 61, 55, 50), "train_acc": (1.0, 0.99, 1.0, 1.0), "d": (0.12, 0.31, 0.2, 0.26)}
    m_o = {"epochs": (100, 104, 97, 101), "train_acc": (1.0, 1.0, 0.995, 1.0)}
    rows = []
    for t in range(4):
        ratio = m_r["epochs"][t] / m_o["epochs"][t]
        rows += [rec("000", "table1", dataset="synthetic", method="weight_pruning", trial=t + 1, seed=t,
                     epochs=m_r["epochs"][t], epoch_ratio=ratio, train_acc=m_r["train_acc"][t], d=m_r["d"][t],
                     weights_zeroed=3, converged=True, hit_cap=False, oracle_converged=True, collapsed=False),
                 rec("000", "table1", dataset="synthetic", method="naive_retrain", trial=t + 1, seed=t,
                     epochs=m_o["epochs"][t], epoch_ratio=1.0, train_acc=m_o["train_acc"][t], d=0.0, converged=True,
                     hit_cap=False, oracle_converged=True, collapsed=False)]
    avg = Paper000Table1.build(pd.DataFrame(rows), CTX).avg
    printed = cli_summary(rows)
    same = {("weight_pruning", "epochs"): "mr_epochs", ("naive_retrain", "epochs"): "mo_epochs",
            ("weight_pruning", "epoch_ratio"): "epoch_ratio", ("weight_pruning", "train_acc"): "mr_acc",
            ("naive_retrain", "train_acc"): "mo_acc", ("weight_pruning", "d"): "mr_d"}
    for (method, column), key in same.items():
        shown = [cli._fmt(avg[k], column, cli.SUMMARY_DIGITS) for k in (key, f"{key}_lo", f"{key}_hi")]
        assert printed[method][column] == "{} [{}, {}]".format(*shown), (method, column)
    # the numbers behind them: t intervals, the accuracies' cut at 1 (t reaches above it), the report's own summary
    lo, hi = stats.ttest_1samp(m_r["d"], 0.0).confidence_interval(0.95)
    assert (avg["mr_d_lo"], avg["mr_d_hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert stats.ttest_1samp(m_r["train_acc"], 0.0).confidence_interval(0.95).high > 1 and avg["mr_acc_hi"] == 1.0
    assert printed["weight_pruning"]["train_acc"].endswith(", 1]")
    assert cli.summary is C.summary is S.summary
