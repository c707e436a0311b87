"""scikit-learn's digits: the loader, its fixed split, and every method running on it."""

import pytest
import torch

from unlearning import get_config
from unlearning.common import schema
from unlearning.data import digits as dg
from unlearning.data.registry import get_dataset, load_dataset
from unlearning.methods import METHODS, applicability
from unlearning.methods.weight_pruning import calibrate_thresholds
from unlearning.running.experiment import run_trial, select_forget
from unlearning.training.train import train_original


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits")


def test_shapes_scaling_and_split(data):
    assert data.x_train.shape == (1438, 64) and data.x_test.shape == (359, 64)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert 0.0 <= float(data.x_train.min()) and float(data.x_train.max()) == 1.0
    assert data.task == "multiclass" and data.num_classes == 10 and data.target_index is None
    assert set(data.y_train.tolist()) == set(range(10)) and set(data.y_test.tolist()) == set(range(10))
    assert data.info["content_as_expected"] and data.info["sizes"] == {"train": 1438, "test": 359}
    assert data.info["weight_pruning_thresholds"]["values"] == list(dg.THRESHOLDS)
    assert dg.N_TRAIN == data.n_train == get_dataset("digits").n_train


def test_split_is_fixed_by_split_seed_not_by_the_trial_seed(data):
    other_trial = load_dataset("digits", seed=5)
    assert torch.equal(other_trial.x_test, data.x_test) and torch.equal(other_trial.y_train, data.y_train)
    moved = load_dataset("digits", split_seed=1)
    assert not torch.equal(moved.x_test, data.x_test)
    assert data.n_train + len(data.x_test) == 1797                # a partition of the rows


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, True, "0.2"])
def test_bad_test_fraction(bad):
    with pytest.raises(ValueError, match=r"test_fraction=.* not allowed; use a number in \(0, 1\)"):
        load_dataset("digits", test_fraction=bad)


def test_every_method_applies_to_digits():
    spec = get_dataset("digits")
    assert applicability(spec.probe(), spec.build_model()) == dict.fromkeys(sorted(METHODS))


def test_every_method_runs_on_digits(data):
    cfg = get_config("digits", seed=0)
    records = run_trial(cfg, None, 50, data=data, track_series=False)
    by = {r["method"]: r for r in records}
    assert set(by) == {"original", *METHODS}
    assert by["original"]["converged"] and by["original"]["test_acc"] > 0.95
    pruned = by["weight_pruning"]
    assert 0 < pruned["weights_zeroed"] < pruned["weights_total"] == 64 * 32 + 32 * 16 + 16 * 10
    assert pruned["thresholds"] == list(dg.THRESHOLDS) and pruned["converged"]
    assert by["random_relabel"]["steps"] == 50 and by["random_relabel"]["samples_processed"] == 50 * 9
    for rec in records:
        assert schema.undocumented(rec) == [] and rec["data_info"]["sizes"]["train"] == 1438


def test_thresholds_follow_their_documented_rule(data):
    """Re-derive the preset's thresholds on the seed-0 control: each within 10 % of the preset."""
    cfg = get_config("digits", seed=0)
    trained = train_original(data, cfg)
    targets = select_forget(data, dg.CALIBRATION_POINTS, seed=0)
    derived = calibrate_thresholds(trained.model, data.x_train, targets, dg.QUANTILE,
                                   cfg.method_settings("weight_pruning"))
    for got, preset in zip(derived, dg.THRESHOLDS, strict=True):
        assert got == pytest.approx(preset, rel=0.10)
    with pytest.raises(ValueError, match=r"quantile=1.5: must lie strictly between 0 and 1"):
        calibrate_thresholds(trained.model, data.x_train, targets, 1.5, cfg.method_settings("weight_pruning"))
