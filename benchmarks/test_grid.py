"""The comparison grid: every method x every dataset it applies to x removal size x optimizer.

Records: time, epochs, samples processed, speed-up over naive retraining (seconds and
samples), accuracies (MSE for California), S and d. Naive retraining runs first for
each (dataset, size, seed): it is timed and then serves as the oracle of the others.
Random relabeling runs once per unlearning optimizer (`Profile.grid_relabel`); the other
methods train with the dataset preset's optimizer, which the id names. A method that
cannot apply is listed as a skipped case whose id and reason say why.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from unlearning import RelabelConfig
from unlearning.data import probe_data
from unlearning.data.synthetic import N_POINTS
from unlearning.experiment import ORACLE
from unlearning.methods import METHODS
from unlearning.models import build_model, seeded
from unlearning.config import get_config

from .lab import stamp

ORDER = (ORACLE, "weight_pruning", "finetune", "random_relabel")   # the oracle first


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def grid_cases(p):
    datasets = ["synthetic", *(d for d in p.grid_scales if d != "synthetic")]
    for ds in datasets:
        with seeded(0):
            probe, model = probe_data(ds), build_model(ds)
        preset = get_config(ds).train
        for method in [m for m in ORDER if m in METHODS] + sorted(set(METHODS) - set(ORDER)):
            reason = METHODS[method].applies(probe, model)
            if ds == "synthetic" and not reason:
                reason = f"removal sizes {min(p.grid_sizes)}+ exceed the synthetic set's {N_POINTS} points"
            if reason:
                yield pytest.param((ds, method, 0, 0, None, None), marks=pytest.mark.skip(reason=reason),
                                   id=f"{ds}-{method}-skipped-{_slug(reason)}")
                continue
            optims = p.grid_relabel if method == "random_relabel" else [(preset.optimizer, preset.lr)]
            for size in p.grid_sizes:
                for opt, lr in optims:
                    for seed in p.grid_seeds:
                        yield pytest.param((ds, method, size, seed, opt, lr),
                                           id=f"{ds}-{method}-{opt}-{lr:g}-n{size}-seed{seed}")


def pytest_generate_tests(metafunc):
    if "grid_case" in metafunc.fixturenames:
        metafunc.parametrize("grid_case", list(grid_cases(metafunc.config._bench_profile)))


def test_grid(benchmark, lab, profile, progress, grid_case):
    dataset, method, size, seed, optimizer, lr = grid_case
    cfg = lab.config(dataset, seed, "grid")
    if method == "random_relabel":
        cfg = dataclasses.replace(cfg, relabel=RelabelConfig(optimizer, lr))
    rec, _ = lab.timed_unlearn(benchmark, method, dataset, seed, size, "grid", config=cfg)
    stamp(benchmark, profile, paper="grid", table="grid", record=rec, trial=profile.grid_seeds.index(seed) + 1,
          optimizer=optimizer, lr=lr)
    progress(f"{dataset} {method} {optimizer} n={size}: {rec['seconds']:.2f}s, "
             f"x{rec['speedup_vs_naive']:.3g} vs naive, d={rec['d']:.4g}")
    assert rec["removal_size"] == size
