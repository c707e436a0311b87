"""Paper 000 (weight pruning): synthetic Table 1 and the California table.

For every trial: naive retraining (the oracle `m_o`, timed here and reused by the
others), weight pruning (`m_r`), and the warm-start `finetune` ablation on the same
trained model and target, each timed once. Records carry epochs to convergence of
`m_r`, `m_o` and `m_c`, their ratio, accuracies (MSE for California), weights
zeroed, S and d, cap hits and collapses, and the per-epoch S / d / loss series the
paper plots. The target is the paper's: a random point (synthetic; replaced by a
fresh draw in the oracle set) or the highest-valued house (California).
"""

from __future__ import annotations

import pytest

from unlearning.running.experiment import ORACLE

from .lab import Cell, stamp
from .profiles import active

METHODS = (ORACLE, "weight_pruning", "finetune")      # the oracle first: the others reuse it
TABLES = {"synthetic": "table1", "california": "california"}


def shard_group(cell_id: str) -> str:
    """A dataset's cells, every trial's (`dataset`): the lab trains the trials' originals and oracles as one stacked
    batch (California's: up to 1,000 epochs), which any trial's first cell builds whole, so a shard cut falls between
    datasets (`benchmarks/order.py`). Cut between trials, release 7f35d0f's second shard rebuilt the batch."""
    return cell_id.split("-")[0]


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    trials = active(metafunc.config).paper000.trials
    cases = [(ds, trial, seed, m) for ds in TABLES for trial, seed in enumerate(trials.get(ds, ()), start=1)
             for m in METHODS]
    metafunc.parametrize("case", cases, ids=[f"{ds}-{m}-trial{t}-seed{s}" for ds, t, s, m in cases])


def test_paper000(benchmark, lab, profile, progress, case):
    dataset, trial, seed, method = case
    cell = Cell(dataset, seed, 1)
    rec, _ = lab.timed_unlearn(benchmark, method, cell, track=True)
    cfg = lab.config(cell)
    stamp(benchmark, profile, paper="000", table=TABLES[dataset], record=rec, trial=trial,
          optimizer=cfg.train.optimizer, lr=cfg.train.lr)
    progress(f"{dataset} {method} trial {trial}: {rec['epochs']} epochs (oracle {rec['oracle_epochs']}), "
             f"converged={rec['converged']}, d={rec['d']:.4g}")
    assert rec["epochs"] >= 0 and rec["samples_processed"] >= 0
    if method == ORACLE:
        assert rec["s_to_oracle"] == pytest.approx(0.0)
