"""The tuner: one seeded search per method and regime on validation panels, winners re-scored, saved and read
back."""

import dataclasses
import json

import numpy as np
import pytest

from unlearning import get_config
from unlearning.data.registry import load_dataset
from unlearning.evaluation import verdict
from unlearning.methods import METHODS, MethodNotApplicable
from unlearning.methods.space import Int, Real, Space
from unlearning.running import tuning

optuna = pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits").subset(300, 100, seed=0)


CFG = get_config("digits").with_epoch_cap(20)


@pytest.fixture(scope="module")
def panels(data):
    return tuning.validation_panels(data, CFG, "random", [10, 20], n_models=3)


@pytest.fixture(scope="module")
def rescore(data):
    return tuning.validation_panels(data, CFG, "random", [10, 20], n_models=3, seed=tuning.RESCORE_SEED)


def test_the_validation_panels_are_drawn_from_their_own_seeds_and_share_originals(data, panels, rescore):
    assert [c.seed for c in panels[0].configs] == [tuning.VALIDATION_SEED + i for i in range(3)]
    assert [len(p.forget) for p in panels] == [10, 20]
    assert panels[0].originals is panels[1].originals          # one regime's sizes: the same originals, trained once
    assert rescore[0].configs[0].seed == tuning.RESCORE_SEED
    assert set(panels[0].forget.tolist()) != set(rescore[0].forget.tolist())
    shared = {}
    a = tuning.validation_panels(data, CFG, "random", [10], n_models=3, shared=shared)[0]
    b = tuning.validation_panels(data, CFG, "classwise", [10], n_models=3, shared=shared)[0]
    assert a.originals is b.originals                          # random and classwise: the same originals


def test_the_distance_is_the_rankings_and_its_interval_folds_at_zero():
    assert verdict.distance(0.5, 2.0) == 0.25 and verdict.distance(-0.5, 0.1) == 2.0    # scale: max(|no-op|, margin)
    assert verdict.distance(2.0, 2.0) == 1.0                                           # the no-op: 1
    assert verdict.distance_interval(-0.2, 0.4, 1.0) == (0.0, 0.4)                      # holds 0: the near end is 0
    assert verdict.distance_interval(-0.6, -0.2, 0.1) == pytest.approx((0.8, 2.4))
    near, far = verdict.distance_interval(np.array([np.nan, 0.5]), np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    assert np.isnan(near[0]) and np.isnan(far[0]) and (near[1], far[1]) == (0.5, 1.0)


def test_a_search_is_seeded_starts_at_the_preset_and_chooses_on_the_rescore(panels, rescore):
    a = tuning.tune_method(panels, rescore, "random_relabel", trials=4, seed=0)
    b = tuning.tune_method(panels, rescore, "random_relabel", trials=4, seed=0)
    assert [t["values"] for t in a["trials"]] == [t["values"] for t in b["trials"]]
    assert [t["score"] for t in a["trials"]] == [t["score"] for t in b["trials"]]
    assert a["trials"][0]["values"] == {"lr": 1e-3} == a["preset"]
    assert all(len(t["distances"]) == 2 and t["seconds"] > 0 for t in a["trials"])
    for t in a["trials"]:                                      # the score: the mean of the panels' distances
        assert t["score"] == pytest.approx(np.mean(t["distances"]))
        assert t["feasible"] == (t["utility_margin"] >= 0)
    feasible = sorted((t for t in a["trials"] if t["feasible"]), key=lambda t: t["score"])
    top = [t["number"] for t in feasible[:tuning.RESCORE_TOP]]
    top += [0] if a["trials"][0]["feasible"] and 0 not in top else []      # the preset: always a candidate
    assert [f["number"] for f in a["finalists"]] == top
    chosen = min((f for f in a["finalists"] if f["rescore"]["feasible"]), key=lambda f: f["rescore"]["score"])
    assert a["best"] == chosen["values"] and a["best_rescore"] == chosen["rescore"]
    r = a["best_rescore"]
    assert 0 <= r["score_lo"] <= r["score"] <= r["score_hi"]
    best = [t["score"] for t in a["trials"]]                   # convergence: the best feasible distance so far
    assert a["convergence"] == [min((s for s, t in zip(best[:i + 1], a["trials"], strict=False) if t["feasible"]),
                                    default=None) for i in range(4)]
    assert a["preset_rescore"]["score"] >= 0 and a["seconds"] > 0


def test_a_tuned_point_is_never_worse_than_doing_nothing_on_validation(panels, rescore):
    """The lr range reaches a near no-op, so the search always holds a point about as close as doing nothing."""
    out = tuning.tune_method(panels, rescore, "gradient_ascent", trials=6, seed=0)
    noop = tuning.noop_score(panels)
    assert noop <= 1.0
    assert min(t["score"] for t in out["trials"] if t["feasible"]) <= noop + 0.25
    tiny = tuning.regime_score(panels, "gradient_ascent",
                               lambda c: tuning.point_configs([c], "gradient_ascent",
                                                              {"lr": 1e-6, "epochs": 1, "batch_size": 32})[0])
    assert tiny["feasible"] and tiny["score"] == pytest.approx(noop, abs=0.05)


def test_a_repeated_point_is_not_run_again(panels, rescore, monkeypatch):
    space = Space({"lr": Int(1, 2)}, apply=lambda c, m, v: c.with_method(m, lr=v["lr"] * 1e-3),
                  preset=lambda c, m, names: None)
    monkeypatch.setitem(METHODS, "random_relabel", dataclasses.replace(METHODS["random_relabel"], search=space))
    out = tuning.tune_method(panels, rescore, "random_relabel", trials=5, seed=0)
    assert out["distinct_points"] == 2
    repeats = [t for t in out["trials"] if t.get("repeat")]
    assert len(repeats) == 3
    for t in repeats:
        first = next(u for u in out["trials"] if u["values"] == t["values"] and not u.get("repeat"))
        assert (t["score"], t["seconds"]) == (first["score"], first["seconds"])


def test_a_failing_point_is_infeasible_at_the_largest_distance_and_keeps_its_error(panels, rescore, monkeypatch):
    def refuse(config, method, values):
        raise ValueError(f"lr={values['lr']}: refused")

    space = Space({"lr": Real(1e-4, 1.0)}, apply=refuse)
    monkeypatch.setitem(METHODS, "random_relabel", dataclasses.replace(METHODS["random_relabel"], search=space))
    out = tuning.tune_method(panels, rescore, "random_relabel", trials=2, seed=0)
    assert [t["score"] for t in out["trials"]] == [tuning.FAILED] * 2 == [40.0] * 2
    assert all("refused" in t["error"] and not t["feasible"] for t in out["trials"])
    assert not out["feasible"] and out["finalists"] == [] and out["convergence"] == [None, None]


def test_a_method_without_a_space_is_refused(panels, rescore):
    with pytest.raises(MethodNotApplicable, match="no search space"):
        tuning.tune_method(panels, rescore, "noop", trials=1)
    assert "noop" not in tuning.tunable(panels[0].data, panels[0].originals[0].model)
    assert "naive_retrain" not in tuning.tunable(panels[0].data, panels[0].originals[0].model)


def test_saved_searches_are_read_back_and_applied_per_regime(tmp_path, panels, rescore):
    payload = {**tuning.settings(), "regimes": {"random": tuning.tune_regime(panels, rescore, ["weight_pruning"],
                                                                             trials=2)}}
    assert payload["regimes"]["random"]["sizes"] == [10, 20]
    path = tuning.save(tmp_path / "digits.json", payload)
    back = tuning.load(path)
    best = back["regimes"]["random"]["methods"]["weight_pruning"]["best"]
    assert best == payload["regimes"]["random"]["methods"]["weight_pruning"]["best"]
    cfg = get_config("digits")
    got = tuning.tuned_config(cfg, "weight_pruning", back, "random").method_settings("weight_pruning")
    preset = cfg.method_settings("weight_pruning")
    assert got.thresholds == pytest.approx(tuple(t * best["threshold_scale"] for t in preset.thresholds))
    assert got.n_neighbors == best["n_neighbors"]
    with pytest.raises(KeyError, match="no tuned values of method 'finetune' in regime 'random'"):
        tuning.tuned_config(cfg, "finetune", back, "random")
    with pytest.raises(KeyError, match="no search of regime 'canaries'; searched: random"):
        tuning.tuned_config(cfg, "weight_pruning", back, "canaries")
    assert tuning.load(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text(json.dumps({"not": "a search"}))
    with pytest.raises(ValueError, match=r"bad\.json: not a tuning JSON"):
        tuning.load(tmp_path / "bad.json")


LEGACY = {"objective": "unlearn_score", "regime": "canaries", "size": 20, "n_models": 8, "methods": {
    "gradient_ascent": {"best": {"lr": 2e-3, "epochs": 3}, "best_score": 0.03, "trials": []},
    "neggrad_plus": {"best": {"lr": 0.02, "epochs": 4, "alpha": 0.9}, "best_score": 0.05, "trials": []}}}


def test_a_legacy_search_serves_every_regime_with_new_knobs_at_the_preset_and_stale_methods_dropped():
    entry = tuning.regime_search(LEGACY, "random")
    assert entry["regime"] == tuning.LEGACY and list(entry["methods"]) == ["gradient_ascent"]
    assert "neggrad_plus" in tuning.LEGACY_STALE
    cfg = get_config("digits")
    ga = tuning.tuned_config(cfg, "gradient_ascent", LEGACY, "classwise").method_settings("gradient_ascent")
    assert (ga.lr, ga.epochs, ga.batch_size) == (2e-3, 3, None)        # the batch it ran at: the training's
    full = get_config("synthetic")                                     # a full-batch preset: outside today's range
    assert full.train.batch_size is None
    assert tuning.tuned_config(full, "gradient_ascent", LEGACY, "random").method_settings("gradient_ascent").lr == 2e-3


def test_a_partial_search_is_merged_only_into_the_same_panels_and_a_legacy_one_is_carried():
    from benchmarks.tune import merged

    regime = {"sizes": [20], "forget": [[1, 2]], "rescore_forget": [[3]], "methods": {"a": {"best": {"lr": 1}}}}
    old = {"dataset": "digits", "n_models": 8, "regimes": {"random": regime}}
    new = {**old, "regimes": {"random": {**regime, "methods": {"b": {"best": {"lr": 2}}}}}}
    assert merged(None, new) is new
    assert sorted(merged(old, new)["regimes"]["random"]["methods"]) == ["a", "b"]
    with pytest.raises(ValueError, match="other panels or budget \\(n_models, random forget differ\\)"):
        merged(old, {**new, "n_models": 16, "regimes": {"random": {**regime, "forget": [[3, 4]]}}})
    out = merged(LEGACY, new)["regimes"]["random"]["methods"]
    assert sorted(out) == ["b", "gradient_ascent"]             # neggrad_plus: stale, dropped
    assert out["gradient_ascent"]["legacy"] and out["gradient_ascent"]["objective"] == "unlearn_score"


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


def test_the_epoch_cap_bounds_every_schedule_and_every_point_but_never_raises_one():
    mnist = get_config("mnist").with_epoch_cap(2)
    assert mnist.method_settings("scrub").epochs == 2 and mnist.method_settings("l1_sparse").epochs == 2
    assert mnist.method_settings("scrub").msteps == get_config("mnist").method_settings("scrub").msteps
    assert get_config("digits").with_epoch_cap(500).method_settings("gradient_ascent").epochs == 5   # not raised
    point = {"lr": 1e-3, "epochs": 9, "batch_size": 32}
    capped = tuning.point_configs([get_config("mnist")], "gradient_ascent", point, epoch_cap=2)[0]
    assert capped.method_settings("gradient_ascent").epochs == 2
    assert tuning.point_configs([get_config("digits")], "gradient_ascent", point)[0] \
        .method_settings("gradient_ascent").epochs == 9
    ft = tuning.point_configs([get_config("mnist")], "finetune", {"lr_scale": 1.0, "epochs": 7}, epoch_cap=2)[0]
    assert ft.finetune_train.convergence.max_epochs == 2
