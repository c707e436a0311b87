"""The tuner: one seeded search per method on a validation panel, saved and read back."""

import dataclasses
import json

import pytest

from unlearning import get_config
from unlearning.data.registry import load_dataset
from unlearning.methods import METHODS, MethodNotApplicable
from unlearning.methods.space import Int, Real, Space
from unlearning.running import tuning

optuna = pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def panel():
    data = load_dataset("digits").subset(300, 100, seed=0)
    cfg = get_config("digits").with_epoch_cap(20)
    return tuning.validation_panel(data, cfg, size=10, n_models=3)


@pytest.fixture(scope="module")
def oracle(panel):
    return panel.run(tuning.ORACLE)


def test_the_validation_panel_is_drawn_from_its_own_seed(panel):
    assert [c.seed for c in panel.configs] == [tuning.VALIDATION_SEED + i for i in range(3)]
    other = tuning.validation_panel(panel.data, dataclasses.replace(panel.configs[0], seed=0), size=10, n_models=3,
                                    seed=0)
    assert panel.forget.tolist() != other.forget.tolist()


def test_a_search_is_seeded_starts_at_the_preset_and_keeps_its_best(panel, oracle):
    a = tuning.tune_method(panel, "random_relabel", oracle, trials=3, seed=0)
    b = tuning.tune_method(panel, "random_relabel", oracle, trials=3, seed=0)
    assert [t["values"] for t in a["trials"]] == [t["values"] for t in b["trials"]]
    assert a["trials"][0]["values"] == {"lr": 1e-3} == a["preset"]
    assert a["best_score"] == max(t["score"] for t in a["trials"])
    assert a["best"] == a["trials"][a["best_trial"]]["values"]
    assert all(0 <= t["score"] <= 1 and t["seconds"] > 0 for t in a["trials"])
    lrs = [t["values"]["lr"] for t in a["trials"]]
    assert len(set(lrs)) == 3 and all(1e-4 <= v <= 1.0 for v in lrs)


def test_a_failing_point_scores_zero_and_keeps_its_error(panel, oracle, monkeypatch):
    def refuse(config, method, values):
        raise ValueError(f"lr={values['lr']}: refused")

    space = Space({"lr": Real(1e-4, 1.0)}, apply=refuse)
    monkeypatch.setitem(METHODS, "random_relabel", dataclasses.replace(METHODS["random_relabel"], search=space))
    out = tuning.tune_method(panel, "random_relabel", oracle, trials=2, seed=0)
    assert [t["score"] for t in out["trials"]] == [0.0, 0.0]
    assert all("refused" in t["error"] for t in out["trials"])


def test_a_method_without_a_space_is_refused(panel, oracle):
    with pytest.raises(MethodNotApplicable, match="no search space"):
        tuning.tune_method(panel, "noop", oracle, trials=1)
    assert "noop" not in tuning.tunable(panel.data, panel.originals[0].model)
    assert "naive_retrain" not in tuning.tunable(panel.data, panel.originals[0].model)


def test_saved_searches_are_read_back_and_applied(tmp_path, panel, oracle):
    payload = tuning.tune_panel(panel, ["weight_pruning"], trials=2)
    path = tuning.save(tmp_path / "digits.json", payload)
    back = tuning.load(path)
    assert back["methods"]["weight_pruning"]["best"] == payload["methods"]["weight_pruning"]["best"]
    cfg = get_config("digits")
    tuned = tuning.tuned_config(cfg, "weight_pruning", back)
    best = back["methods"]["weight_pruning"]["best"]
    preset = cfg.method_settings("weight_pruning")
    got = tuned.method_settings("weight_pruning")
    assert got.thresholds == pytest.approx(tuple(t * best["threshold_scale"] for t in preset.thresholds))
    assert got.n_neighbors == best["n_neighbors"]
    with pytest.raises(KeyError, match="no tuned values of method 'finetune'"):
        tuning.tuned_config(cfg, "finetune", back)
    assert tuning.load(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text(json.dumps({"not": "a search"}))
    with pytest.raises(ValueError, match=r"bad\.json: not a tuning JSON"):
        tuning.load(tmp_path / "bad.json")


def test_a_point_outside_the_space_is_refused():
    space = Space({"lr": Real(1e-4, 1.0), "epochs": Int(1, 5)})
    with pytest.raises(ValueError, match="epochs=9 is outside its range"):
        space.configure(get_config("digits"), "random_relabel", {"lr": 1e-3, "epochs": 9})
    with pytest.raises(ValueError, match="sets \\['epochs', 'lr'\\]"):
        space.configure(get_config("digits"), "random_relabel", {"lr": 1e-3})
    with pytest.raises(ValueError, match="Int\\(3, 1\\)"):
        Int(3, 1)


def test_the_finetune_search_fixes_its_epochs_and_scales_its_lr():
    cfg = get_config("digits")
    tuned = METHODS["finetune"].search.configure(cfg, "finetune", {"lr_scale": 2.0, "epochs": 4})
    assert tuned.finetune_train.lr == 2 * cfg.train.lr
    assert (tuned.finetune_train.convergence.rule, tuned.finetune_train.convergence.max_epochs) == ("fixed_epochs", 4)
    assert tuned.train == cfg.train
    assert METHODS["finetune"].search.preset_point(cfg, "finetune") is None       # loss_below: not a point
    mnist = get_config("mnist")
    assert METHODS["finetune"].search.preset_point(mnist, "finetune") == {"lr_scale": 1.0, "epochs": 1}


def test_a_partial_search_is_merged_only_into_the_same_panel():
    from benchmarks.tune import merged

    old = {"dataset": "digits", "n_models": 8, "size": 20, "forget": [1, 2], "methods": {"a": {"best": {"lr": 1}}}}
    new = {**old, "methods": {"b": {"best": {"lr": 2}}}}
    assert merged(None, new) is new
    assert sorted(merged(old, new)["methods"]) == ["a", "b"]
    with pytest.raises(ValueError, match="another panel or budget \\(n_models, forget differ\\)"):
        merged(old, {**new, "n_models": 16, "forget": [3, 4]})


def test_the_epoch_cap_bounds_every_schedule_and_every_point_but_never_raises_one():
    mnist = get_config("mnist").with_epoch_cap(2)
    assert mnist.method_settings("scrub").epochs == 2 and mnist.method_settings("l1_sparse").epochs == 2
    assert mnist.method_settings("scrub").msteps == get_config("mnist").method_settings("scrub").msteps
    assert get_config("digits").with_epoch_cap(500).method_settings("gradient_ascent").epochs == 5   # not raised
    point = {"lr": 1e-3, "epochs": 9}
    capped = tuning.point_configs([get_config("mnist")], "gradient_ascent", point, epoch_cap=2)[0]
    assert capped.method_settings("gradient_ascent").epochs == 2
    assert tuning.point_configs([get_config("digits")], "gradient_ascent", point)[0] \
        .method_settings("gradient_ascent").epochs == 9
    ft = tuning.point_configs([get_config("mnist")], "finetune", {"lr_scale": 1.0, "epochs": 7}, epoch_cap=2)[0]
    assert ft.finetune_train.convergence.max_epochs == 2
