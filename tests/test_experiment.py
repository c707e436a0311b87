"""End to end on the synthetic set: one trial's records, their metrics and series, and atomic saving."""

import json
import math

import pytest

from unlearning import get_config
from unlearning.common.files import save_json
from unlearning.data.registry import load_dataset
from unlearning.evaluation.metrics import logit_l1
from unlearning.methods import METHODS, unlearn
from unlearning.running import experiment
from unlearning.running.experiment import run_trial, select_forget
from unlearning.training.train import train_original

KEYS = {"epochs", "steps", "samples_processed", "seconds", "converged", "hit_cap", "collapsed", "epoch_ratio",
        "speedup_vs_naive", "test_acc", "forget_acc", "total_acc", "s_to_control", "s_to_oracle", "d"}
SERIES = ("s_to_control_series", "s_to_oracle_series", "d_series")
TRAINING_METHODS = ("finetune", "weight_pruning")


@pytest.fixture(scope="module")
def trial():
    cfg = get_config("synthetic", seed=0)
    records = run_trial(cfg)
    return cfg, {r["method"]: r for r in records}, records


@pytest.fixture(scope="module")
def rebuilt():
    """The control and oracle of the same trial, rebuilt independently (training is deterministic)."""
    cfg = get_config("synthetic", seed=0)
    data = load_dataset("synthetic", seed=0)
    trained = train_original(data, cfg)
    forget = select_forget(data, 1, cfg.seed)
    oracle = unlearn("naive_retrain", trained, data, forget, cfg)
    return data, trained, forget, oracle


def test_one_record_per_model(trial):
    _, by_method, records = trial
    assert [r["method"] for r in records] == ["original", *METHODS]
    assert set(by_method) == {"original", *METHODS}
    assert {"finetune", "naive_retrain", "noop", "random_relabel", "weight_pruning", "gradient_ascent"} <= set(METHODS)
    for rec in records:
        assert KEYS <= set(rec), rec["method"]
        assert rec["dataset"] == "synthetic" and rec["removal_size"] == 1 and rec["seed"] == 0
        assert rec["device"] == "cpu"
        assert rec["epoch_ratio"] == pytest.approx(rec["epochs"] / rec["oracle_epochs"])
        for key in ("test_acc", "forget_acc", "total_acc", "train_acc"):
            assert 0.0 <= rec[key] <= 1.0


def test_total_is_test_union_forget(trial):
    _cfg, by_method, _ = trial
    n_test = load_dataset("synthetic", seed=0).x_test.shape[0]
    for rec in by_method.values():
        assert rec["total_acc"] == pytest.approx((rec["test_acc"] * n_test + rec["forget_acc"]) / (n_test + 1))


def test_original_and_oracle_match_an_independent_rebuild(trial, rebuilt):
    _, by_method, _ = trial
    data, trained, _forget, oracle = rebuilt
    orig, orc = by_method["original"], by_method["naive_retrain"]
    assert orig["epochs"] == trained.record.epochs and orig["steps"] == trained.record.steps
    assert orc["epochs"] == oracle.cost.epochs and orc["train_size"] == data.n_train   # synthetic: replace
    s = logit_l1(oracle.model, trained.model, data.x_train)
    assert s > 0
    # the oracle: S to itself 0, d = S(m_o, m_c) / |Y|
    assert orc["s_to_oracle"] == 0.0
    assert orc["s_to_control"] == pytest.approx(s, rel=1e-6)
    assert orc["d"] == pytest.approx(s / data.n_train, rel=1e-6)
    # the control: the mirror image
    assert orig["s_to_control"] == 0.0
    assert orig["s_to_oracle"] == pytest.approx(s, rel=1e-6)
    assert orig["d"] == pytest.approx(-orc["d"])
    # the oracle against itself costs exactly what the oracle costs
    assert orc["epoch_ratio"] == 1.0 and orc["speedup_vs_naive"] == 1.0 and orc["speedup_samples"] == 1.0
    assert orig["oracle_epochs"] == orc["epochs"] == orc["oracle_epochs"]


def test_costs_and_convergence(trial):
    cfg, by_method, _ = trial
    threshold = cfg.train.convergence.threshold
    for name in ("original", "naive_retrain", *TRAINING_METHODS):
        rec = by_method[name]
        assert rec["converged"] is True and rec["hit_cap"] is False and rec["collapsed"] is False
        assert rec["final_loss"] < threshold
        assert rec["steps"] == rec["epochs"] and rec["samples_processed"] == 10 * rec["epochs"]      # full batch of 10
        assert rec["seconds"] > 0
    relabel = by_method["random_relabel"]
    assert relabel["epochs"] == 0 and relabel["steps"] == 1 and relabel["samples_processed"] == 1   # k − 1 = 1 label
    assert relabel["converged"] is None and relabel["hit_cap"] is False
    assert relabel["epoch_ratio"] == 0.0
    assert by_method["weight_pruning"]["weights_total"] == 6


def test_series_follow_every_epoch(trial):
    _, by_method, _ = trial
    orig = by_method["original"]
    for name in TRAINING_METHODS:
        rec = by_method[name]
        for key in SERIES:
            assert len(rec[key]) == rec["epochs"] + 1, (name, key)
        assert len(rec["loss_series"]) == rec["epochs"]
        # the last point is the final model
        assert rec["s_to_control_series"][-1] == pytest.approx(rec["s_to_control"])
        assert rec["s_to_oracle_series"][-1] == pytest.approx(rec["s_to_oracle"])
        assert rec["d_series"][-1] == pytest.approx(rec["d"])
        for sc, so, d in zip(*(rec[k] for k in SERIES), strict=True):
            assert d == pytest.approx((sc - so) / 10)
    # fine-tuning starts from the control itself: epoch 0 is the control's point
    ft = by_method["finetune"]
    assert ft["s_to_control_series"][0] == 0.0
    assert ft["d_series"][0] == pytest.approx(orig["d"])
    # pruning's epoch 0 is after pruning, before fine-tuning
    wp = by_method["weight_pruning"]
    assert wp["s_to_control_series"][0] > 0          # biases reset to 0.01: the model moved
    # the control and the oracle carry no series
    assert "d_series" not in orig and "d_series" not in by_method["naive_retrain"]


def test_method_subset_reuses_a_trained_model(rebuilt, monkeypatch):
    data, trained, forget, _ = rebuilt

    def must_not_run(*a, **k):
        raise AssertionError("the control was retrained")

    monkeypatch.setattr(experiment, "train_original", must_not_run)
    cfg = get_config("synthetic", seed=0)
    records = run_trial(cfg, methods=["finetune"], data=data, trained=trained, forget=forget, track_series=False)
    assert [r["method"] for r in records] == ["original", "finetune"]
    assert not any(key in records[1] for key in SERIES)


def test_records_are_json_safe(trial, tmp_path):
    _, _, records = trial
    path = save_json(tmp_path / "run.json", {"records": records})
    loaded = json.loads(path.read_text())
    assert [r["method"] for r in loaded["records"]] == [r["method"] for r in records]
    assert loaded["records"][0]["epochs"] == records[0]["epochs"]


# --- save_json ---------------------------------------------------------------------------------------

def test_save_json_writes_nan_as_null(tmp_path):
    path = save_json(tmp_path / "sub" / "x.json",
                     {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": (2, math.nan)}, "e": "ok"})
    assert path == tmp_path / "sub" / "x.json"
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None, None], "c": {"d": [2, None]}, "e": "ok"}


def test_save_json_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    save_json(path, {"version": 1})
    before = path.read_bytes()

    def broken_dump(obj, fh, **kwargs):
        fh.write('{"version": 2, "records": [')      # half a file...
        fh.flush()
        raise RuntimeError("disk full")               # ... then the write fails

    monkeypatch.setattr(json, "dump", broken_dump)
    with pytest.raises(RuntimeError, match="disk full"):
        save_json(path, {"version": 2})
    assert path.read_bytes() == before
    assert json.loads(path.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]     # no temp file left behind


def test_save_json_interrupted_keeps_no_file_when_there_was_none(tmp_path, monkeypatch):
    def broken_dump(obj, fh, **kwargs):
        fh.write("{")
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", broken_dump)
    with pytest.raises(KeyboardInterrupt):
        save_json(tmp_path / "new.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_save_json_overwrites(tmp_path):
    path = tmp_path / "r.json"
    save_json(path, {"v": 1})
    save_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
