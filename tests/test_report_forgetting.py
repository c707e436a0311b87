"""The report's forgetting parts on hand-made records whose answers are known: paper 002's lr sweep
table, the trade-off table, and the Pareto, ε-histogram and trade-off figures."""

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("tabulate")
pytest.importorskip("seaborn")

from unlearning import schema  # noqa: E402
from unlearning.report import figures as F  # noqa: E402
from unlearning.report.tables import Context, Forgetting, RelabelLr, Tradeoff  # noqa: E402
from unlearning.report.tables.sweeps import PAPER_DROP  # noqa: E402

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


def test_forgetting_figures_draw_and_say_what_they_show(tmp_path):
    df = frame(lr_records() + panel_records())
    pareto = F.forgetting_pareto(df, CTX, tmp_path)
    assert (tmp_path / pareto.file).stat().st_size > 1000
    # noop is cheapest, naive retraining closest to itself; relabeling is cheaper than pruning and closer
    assert pareto.sentences == ["digits: on average over its cells, no method is both cheaper and closer to "
                                "retraining than naive_retrain, noop, random_relabel (the Pareto front)."]
    hist = F.epsilon_histograms(df, CTX, tmp_path)
    assert (tmp_path / hist.file).exists()
    assert hist.sentences == ["canaries: mean ε naive_retrain 0.50, noop 33.00, weight_pruning 2.00, "
                              "random_relabel 4.00."]
    curves = F.tradeoff_curves(df, CTX, tmp_path)
    assert (tmp_path / curves.file).exists()
    assert "random_relabel, digits canaries: F / ceiling is highest, 0.95, at relabel lr 1 (utility 20)." \
        in curves.sentences
    empty = F.tradeoff_curves(df.iloc[0:0], CTX, tmp_path)
    assert empty.file is None and "no sweep records" in empty.note
