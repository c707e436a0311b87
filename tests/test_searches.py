"""The committed searches (`benchmarks/tuned/<dataset>.json`) and the tuned cells they fed (`reports/`): the checks of
issue 30 on digits. They read committed files, so that a search or a report regenerated without them fails here."""

import csv
import json
from pathlib import Path

import pytest

from unlearning.methods import METHODS
from unlearning.running import tuning

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "benchmarks" / "tuned" / "digits.json"


@pytest.fixture(scope="module")
def search() -> dict:
    payload = tuning.load(DIGITS)
    if payload is None or "regimes" not in payload:
        pytest.skip(f"{DIGITS} is not a per-regime search")
    return payload


def entries(search):
    for regime, r in search["regimes"].items():
        for method, m in r["methods"].items():
            if not m.get("legacy"):
                yield regime, r, method, m


def test_every_method_gets_the_same_budget_on_every_regime(search):
    trials = {(regime, method): len(m["trials"]) for regime, _, method, m in entries(search)}
    assert set(trials.values()) == {search["trials_per_method"]} == {tuning.TRIALS}
    assert sorted(search["regimes"]) == ["canaries", "classwise", "random"]
    for _, r, _, m in entries(search):
        assert r["sizes"] == [20, 100]
        assert len(m["convergence"]) == len(m["trials"]) and m["best_rescore"] is not None
        curve = [c for c in m["convergence"] if c is not None]
        assert curve == sorted(curve, reverse=True)                  # the best so far never gets worse


# A near no-op point (finetune at 0.001 x its lr for one epoch) is the no-op up to float noise in its distance.
AS_FAR = 0.01


def test_no_tuned_point_is_farther_from_retraining_than_doing_nothing(search):
    """On validation (the search's panels) and on the re-score (the independent panels it was chosen on), for every
    method whose space can do little (`Space.does_little`: SISA's and Newton removal's cannot)."""
    checked = set()
    for regime, r, method, m in entries(search):
        assert m["feasible"], (regime, method)
        if not METHODS[method].search.does_little:
            continue
        checked.add(method)
        assert m["best_score"] <= r["noop_score"] + AS_FAR, (regime, method, m["best_score"], r["noop_score"])
        assert m["best_rescore"]["score"] <= r["noop_rescore"] + AS_FAR, (regime, method, m["best_rescore"],
                                                                         r["noop_rescore"])
    assert checked == {"finetune", "gradient_ascent", "l1_sparse", "neggrad_plus", "random_relabel", "salun", "scrub",
                       "weight_pruning"}


def test_scrubs_tuned_point_is_at_least_as_good_as_the_hand_found_one(search):
    for regime, _, method, m in entries(search):
        if method != "scrub":
            continue
        hand = m["reference_point"]
        assert hand["values"] == {"lr": 2e-3, "epochs": 10, "msteps": 10, "alpha": 0.05, "weight_decay": 0.0}
        assert m["best_rescore"]["score"] <= hand["rescore"]["score"], (regime, m["best_rescore"], hand["rescore"])


def test_gradient_ascents_tuned_cells_keep_test_accuracy():
    """≥ 90 % of naive retraining's test accuracy on the same cell, at the largest removal size the committed report's
    forgetting table has on digits (100 before the release profile kept size 20 alone)."""
    with open(ROOT / "reports" / "forgetting.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["dataset"] == "digits"]
    largest = max(int(float(r["removal_size"])) for r in rows)
    rows = [r for r in rows if int(float(r["removal_size"])) == largest]
    retrain = {r["regime"]: float(r["utility"]) for r in rows if r["method"] == "naive_retrain"}
    tuned = {r["regime"]: float(r["utility"]) for r in rows
             if r["method"] == "gradient_ascent" and r["setting"] == "tuned"}
    assert sorted(tuned) == ["canaries", "classwise", "random"]
    for regime, acc in tuned.items():
        assert acc >= 0.9 * retrain[regime], (regime, acc, retrain[regime])


def test_the_searches_json_is_what_the_loader_reads():
    for path in sorted((ROOT / "benchmarks" / "tuned").glob("*.json")):
        payload = tuning.load(path)
        assert payload["dataset"] == path.stem
        json.dumps(payload)
