"""The comparison grid: every method x every dataset it applies to x removal size x optimizer.

Records: time, epochs, samples processed, speed-up over naive retraining (seconds and
samples), accuracies (MSE for California), S and d. Naive retraining runs first for
each (dataset, size, seed): it is timed and then serves as the oracle of the others.
Random relabeling runs once per unlearning optimizer (`Profile.grid_relabel`); a method whose
settings name their own optimizer (the baselines) runs with it, the others with the dataset
preset's training optimizer; the id names which. A method that
cannot apply is listed as a skipped case whose id and reason say why.
"""

from __future__ import annotations

import math
import re

import pytest

from unlearning import get_config
from unlearning.data.registry import DatasetSpec, get_dataset, names
from unlearning.methods import METHODS, applicability
from unlearning.methods.random_relabel import RelabelConfig
from unlearning.running.experiment import ORACLE
from unlearning.training.ensemble import stack_reason
from unlearning.training.models import seeded
from unlearning.training.progress import clock

from .lab import Cell, stamp
from .profiles import Profile, active

ORDER = (ORACLE, "weight_pruning", "finetune", "random_relabel")   # the oracle first


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _skip(ds: str, method: str, reason: str):
    return pytest.param((ds, method, 0, 0, None, None), marks=pytest.mark.skip(reason=reason),
                        id=f"{ds}-{method}-skipped-{_slug(reason)}")


def _size_reason(p: Profile, spec: DatasetSpec) -> str | None:
    """Why no removal size of the grid fits dataset `spec` at this profile's scale, or None."""
    rows = min(spec.n_train, p.scale(spec.name, "grid").train or spec.n_train)
    if min(p.grid.sizes) >= rows:
        return f"removal sizes {min(p.grid.sizes)}+ exceed the {rows} training points of {spec.name}"
    return None


def dataset_cases(p: Profile, ds: str):
    spec = get_dataset(ds)
    with seeded(0):
        reasons = applicability(spec.probe(), spec.build_model())
    preset = get_config(ds).train
    for method in [m for m in ORDER if m in METHODS] + sorted(set(METHODS) - set(ORDER)):
        reason = reasons[method] or _size_reason(p, spec)
        if reason:
            yield _skip(ds, method, reason)
            continue
        optims = p.grid.relabel if method == "random_relabel" else [_optimizer(method, preset)]
        sizes, seeds = _cut(p, spec, method)
        for size in sizes:
            for opt, lr in optims:
                for seed in seeds:
                    yield pytest.param((ds, method, size, seed, opt, lr),
                                       id=f"{ds}-{method}-{opt}-{lr:g}-n{size}-seed{seed}")


def _cut(p: Profile, spec: DatasetSpec, method: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The sizes and seeds `method` runs on dataset `spec`: the grid's, or, on a model that does not stack, the
    profile's `full_sizes_unstacked` (a method in `full_unstacked`, every seed) or `sizes_unstacked` /
    `seeds_unstacked` (any other method), each where set."""
    g = p.grid
    if stack_reason(spec.build_model()) is None:
        return g.sizes, g.seeds
    if method in g.full_unstacked:
        return g.full_sizes_unstacked or g.sizes, g.seeds
    return g.sizes_unstacked or g.sizes, g.seeds_unstacked or g.seeds


def _optimizer(method: str, preset) -> tuple[str, float]:
    """The (optimizer, lr) a method's run uses: its settings' own where they name one, else the preset's."""
    own = METHODS[method].default_settings()
    if own is not None and isinstance(getattr(own, "optimizer", None), str) and hasattr(own, "lr"):
        return own.optimizer, own.lr
    return preset.optimizer, preset.lr


def grid_cases(p: Profile):
    for ds in names():
        yield from dataset_cases(p, ds)


def as_fast(speedup: float) -> str:
    """`speedup_vs_naive` (naive retraining's seconds / the method's) in words."""
    if not math.isfinite(speedup):
        return "no time measured, nothing to compare with naive retraining"
    if speedup >= 1:
        return f"{speedup:.3g}x faster than naive retraining"
    return f"slower than naive retraining ({speedup:.3g}x its speed)"


def pytest_generate_tests(metafunc):
    if "grid_case" in metafunc.fixturenames:
        metafunc.parametrize("grid_case", list(grid_cases(active(metafunc.config))))


def test_grid(benchmark, lab, profile, progress, grid_case):
    dataset, method, size, seed, optimizer, lr = grid_case
    cell = Cell(dataset, seed, size, "grid")
    cfg = lab.config(cell)
    if method == "random_relabel":
        cfg = cfg.with_method("random_relabel", RelabelConfig(optimizer, lr))
    rec, _ = lab.timed_unlearn(benchmark, method, cell, config=cfg)
    stamp(benchmark, profile, paper="grid", table="grid", record=rec, trial=profile.grid.seeds.index(seed) + 1,
          optimizer=optimizer, lr=lr)
    progress(f"{dataset} {method} {optimizer} n={size}: {clock(rec['seconds'])}, "
             f"{as_fast(rec['speedup_vs_naive'])}, d={rec['d']:.4g} (higher: closer to the oracle)")
    assert rec["removal_size"] == size
