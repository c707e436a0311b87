"""The forgetting audit end to end on the embedded digits set: canaries are memorised by the
originals, a no-op keeps them, naive retraining does not, and every metric says so."""

import pytest
import torch

from unlearning import get_config
from unlearning.common import schema
from unlearning.data import Data
from unlearning.data.registry import load_dataset
from unlearning.evaluation.audit import HOLDOUT_FRACTION, build_panel, record, seed_panel, with_holdout
from unlearning.methods.random_relabel import RelabelConfig

N_MODELS = 6


@pytest.fixture(scope="module")
def canaries():
    """A digits panel (400 rows, 12 canaries, 6 models per group) and the no-op's, retraining's and
    fine-tuning's records."""
    data = load_dataset("digits").subset(400, 200, seed=0)
    cfg = get_config("digits", seed=0)             # the preset: training cross-entropy < 0.05
    panel = build_panel(data, cfg, 12, N_MODELS, "canaries")
    oracle = panel.run("naive_retrain")
    recs = {m: record(panel, m, oracle if m == "naive_retrain" else panel.run(m), oracle)
            for m in ("naive_retrain", "noop", "finetune")}
    return panel, recs


def test_panel_shares_one_forget_set_and_holds_its_groups(canaries):
    panel, _ = canaries
    assert panel.n_models == N_MODELS and len(panel.originals) == len(panel.reference) == N_MODELS
    assert [c.seed for c in panel.configs] == list(range(N_MODELS))
    assert "canaries" in panel.data.info and len(panel.forget) == 12
    # the originals memorised most canaries (their wrong labels)
    acc = [float((t.model(panel.data.x_train[panel.forget]).argmax(1) == panel.data.y_train[panel.forget])
                 .float().mean()) for t in panel.originals]
    assert sum(acc) / len(acc) > 0.5


def test_noop_is_told_apart_from_retraining_on_canaries(canaries):
    _, recs = canaries
    noop, oracle = recs["noop"], recs["naive_retrain"]
    assert oracle["forget_quality"] == oracle["forget_quality_ceiling"] > 0
    assert noop["forget_quality"] < 0.5 * noop["forget_quality_ceiling"]
    assert noop["epsilon_mean"] > oracle["epsilon_mean"]
    assert noop["js_to_oracle"] > 0.05 and oracle["js_to_oracle"] == pytest.approx(0, abs=1e-12)
    assert noop["forget_acc"] > oracle["forget_acc"] + 0.3          # canary labels kept vs lost
    assert noop["loss_auc"] > oracle["loss_auc"]                    # canaries look more like members
    assert noop["mia_efficacy_control"] == pytest.approx(noop["mia_efficacy"])
    assert noop["rte"] is None and noop["tow"] < oracle["tow"] == 1.0


def test_records_follow_the_schema(canaries):
    _, recs = canaries
    for rec in recs.values():
        assert schema.undocumented(rec) == [], schema.undocumented(rec)
        assert len(rec["epsilon_per_example"]) == 12 and rec["n_models"] == N_MODELS
        assert rec["epsilon_cap"] == 2 and rec["forget_regime"] == "canaries"


def test_forgetting_table_displays_the_recorded_verdicts(canaries):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tabulate")
    from unlearning.bench.report.tables import Context, Forgetting

    _, recs = canaries
    frame = pd.DataFrame([{**schema.finish(r, paper="forgetting", table="forgetting", profile="smoke")}
                          for r in recs.values()])
    table = Forgetting.build(frame, Context("smoke", "x", "cpu"))
    assert list(table.data["method"]) == ["naive_retrain", "noop", "finetune"]
    # 12 canaries: below MIN_FORGET_POINTS, so no verdict, but the test's p-values (BH-adjusted) are shown
    assert set(table.data["verdict"]) == {"too few points"}
    assert "U-LiRA AUC [95 % CI]" in table.markdown()
    assert "not recorded" not in set(table.show(table.data)["retain / test, sd"])
    adjusted = dict(zip(table.data["method"], table.data["p_adjusted"], strict=True))
    assert adjusted["noop"] <= 0.05 < adjusted["naive_retrain"]
    assert any(s.startswith("noop: 1 too few points of 1 cells") for s in table.sentences())
    assert "F [95 % CI]" in table.markdown() and "p (BH)" in table.markdown()


def test_records_carry_a_verdict_that_their_phi_reproduce(canaries):
    """The verdict is computed in the library and stored; the record's φ recompute it exactly."""
    from unlearning.evaluation import verdict

    _, recs = canaries
    noop, oracle = recs["noop"], recs["naive_retrain"]
    assert noop["verdict"] == oracle["verdict"] == "too few points"         # 12 canaries < 20
    assert noop["p_value"] <= 0.05 < oracle["p_value"] and noop["effect"] > 0.5    # the canaries are memorised
    assert noop["noop_p_value"] == noop["p_value"] and recs["finetune"]["noop_p_value"] == noop["p_value"]
    from unlearning.evaluation.audit import judgement
    controls = [noop["phi_retain"], noop["phi_test"]], [noop["phi_reference_retain"], noop["phi_reference_test"]]
    again = judgement(noop["phi"], noop["phi_reference"], *controls, gate=verdict.SELF, originals=noop["phi"], seed=0)
    assert again == {k: noop[k] for k in again}
    assert noop["effect_retain"] is not None and len(noop["phi_retain"][0]) == len(noop["phi_test"][0]) > 0
    assert noop["ulira_auc_lo"] <= noop["ulira_auc"] <= noop["ulira_auc_hi"] and noop["model_share"] >= 0
    assert len(noop["phi"]) == N_MODELS and len(noop["phi"][0]) == 12 and "phi_reference" not in recs["finetune"]
    assert noop["power_curve_models"] == [4] and 0 <= noop["power_curve"][0] <= 1
    assert noop["forget_quality_lo"] <= noop["forget_quality"] <= noop["forget_quality_hi"]
    assert noop["forget_quality_null"] == verdict.f_null(N_MODELS, N_MODELS)[0]
    ceiling = [oracle[f"forget_quality_ceiling{end}"] for end in ("_lo", "", "_hi")]
    assert ceiling == sorted(ceiling)


def test_holdout_only_where_there_is_no_test_set():
    x, y = torch.arange(50.0).reshape(50, 1), torch.rand(50)
    data = Data("toy", "regression", x, y, x[:0], y[:0], target_index=7)
    held = with_holdout(data, seed=3)
    assert len(held.x_test) == round(HOLDOUT_FRACTION * 50) and held.n_train == 40
    assert float(held.x_train[held.target_index]) == 7.0            # the target stays in training
    assert set(held.x_test.flatten().tolist()).isdisjoint(held.x_train.flatten().tolist())
    assert torch.equal(with_holdout(data, seed=3).x_test, held.x_test)
    full = Data("toy", "regression", x, y, x[:5], y[:5])
    assert with_holdout(full, seed=3) is full


def test_panels_of_unchanged_data_share_their_originals():
    """Random and classwise forget sets leave the training data as it is: panels of any size take
    the same originals from `shared` (trained once); canaries change labels, so they train their own."""
    data = load_dataset("digits").subset(200, 100, seed=0)
    cfg = get_config("digits", seed=0).with_epoch_cap(5)
    shared: dict = {}
    a = build_panel(data, cfg, 4, 3, "random", shared=shared)
    b = build_panel(data, cfg, 8, 3, "classwise", shared=shared)
    c = build_panel(data, cfg, 4, 3, "canaries", shared=shared)
    alone = build_panel(data, cfg, 4, 3, "random")
    assert a.originals is b.originals and c.originals is not a.originals and list(shared) == [3]
    for s, t in zip(a.originals, alone.originals, strict=True):     # the same models as trained alone
        assert all(torch.equal(p, q) for p, q in zip(s.model.state_dict().values(),
                                                       t.model.state_dict().values(), strict=True))


def test_record_names_the_setting_it_ran_with_and_averages_details(canaries):
    panel, recs = canaries
    setting = RelabelConfig(lr=0.5)
    results = panel.run("random_relabel", setting)
    oracle = panel.run("naive_retrain")
    rec = record(panel, "random_relabel", results, oracle, setting)
    assert rec["config"]["methods"]["random_relabel"]["lr"] == 0.5
    assert recs["noop"]["config"]["methods"]["random_relabel"]["lr"] == 1e-3     # the preset's
    # a large relabel lr moves the canaries away from their wrong labels: less like the no-op
    assert rec["forget_acc"] < recs["noop"]["forget_acc"]
    pruned = record(panel, "weight_pruning", panel.run("weight_pruning"), oracle)
    assert pruned["weights_zeroed"] == pytest.approx(
        sum(r.details["weights_zeroed"] for r in panel.run("weight_pruning")) / N_MODELS)


def test_seed_panel_compares_one_model_with_its_oracle(canaries):
    panel, _ = canaries
    trained, cfg = panel.originals[0], panel.configs[0]
    one = seed_panel(panel.data, panel.forget, cfg, trained)
    oracle = one.run("naive_retrain")
    noop = record(one, "noop", one.run("noop"), oracle)
    same = record(one, "naive_retrain", oracle, oracle)
    assert one.n_models == 1 and noop["n_models"] == 1 and "forget_quality" not in noop
    assert same["mia_gap"] == 0 and same["js_to_oracle"] == pytest.approx(0, abs=1e-12)
    assert noop["js_to_oracle"] > 0.05 and noop["forget_acc"] > same["forget_acc"]
    assert torch.equal(one.members, panel.members)                  # the same seeded member sample
