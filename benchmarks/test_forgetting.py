"""Forgetting quality: every method (the no-op floor and naive retraining included) x every
dataset x forget regime (random, classwise, canaries) x removal size, each cell a group of N
models (`unlearning.evaluation.audit`).

Per (dataset, regime, size) the lab trains, untimed, N originals and N reference models
retrained from scratch; naive retraining runs first and is timed like any method, then
serves as each seed's oracle. Each cell times its method on all N originals (one batch
where the model stacks) and records the means over the N models: MIA-efficacy (and its
gap to the oracle's), loss-attack AUC, KL / JS to the oracle, per-example ε, forget
quality F beside its ceiling (naive retraining's own F), the challenge's score, ToW, RTE.

The sweeps (`test_forgetting_sweep`): on the panels of the profile's `sweep_size` and
`sweep_regimes`, each method with a knob (`SWEEPS`) runs at every value of it beside its
preset — random relabeling's lr, weight pruning's per-layer thresholds times a scale —
giving the utility–forgetting trade-off curves of the report.

Tuned cells (`...-<method>-tuned`): every method with a saved search for the dataset and regime
(`benchmarks/tuned/<dataset>.json`, written by `python -m benchmarks.tune`: the same seeded
TPE search for every method, per regime, on validation panels of their own seeds) runs at its
regime's chosen point beside its preset, in the profile's `tuned_regimes`; the record says
`setting: tuned`, the point, the search's validation distance and re-score, trials and cost.
"""

from __future__ import annotations

import dataclasses

import pytest

from unlearning.data.registry import DatasetSpec, get_dataset, names
from unlearning.evaluation.audit import record
from unlearning.methods import METHODS, applicability
from unlearning.running import tuning
from unlearning.running.experiment import ORACLE
from unlearning.training.ensemble import stack_reason
from unlearning.training.models import seeded

from .lab import stamp
from .profiles import Profile, active
from .tune import path as tuned_path

FIRST = (ORACLE, "noop")         # the oracle first (every other cell compares with it), then the floor

# method -> (the record key of its knob, the `profiles.Forgetting` field of its values, the
# changes a value makes to the method's preset settings)
SWEEPS = {
    "random_relabel": ("lr", "relabel_lrs", lambda preset, v: {"lr": v}),
    "weight_pruning": ("threshold_scale", "pruning_scales",
                       lambda preset, v: {"thresholds": tuple(t * v for t in preset.thresholds)}),
}


def shard_group(cell_id: str) -> str:
    """The panel a cell uses, `dataset-regime-nSIZE` (the first three parts of its id, main and sweep cells alike):
    the harness runs a panel's cells next to each other, so that a shard cut splits at most one panel
    (`benchmarks/order.py`)."""
    return "-".join(cell_id.split("-")[:3])


def _rows(p: Profile, spec: DatasetSpec) -> int:
    return min(spec.n_train, p.scale(spec.name, "forgetting").train or spec.n_train)


def _reason(p: Profile, spec: DatasetSpec, regime: str, size: int) -> str | None:
    if regime == "classwise" and spec.task == "regression":
        return f"forget regime 'classwise' needs classes; {spec.name} is {spec.task}"
    if 2 * size > _rows(p, spec):
        return f"removal size {size} is more than half the {_rows(p, spec)} training points of {spec.name}"
    return None


def _unstacked(spec: DatasetSpec) -> bool:
    """Whether the dataset's model trains its N models one by one (MNIST's ConvNet): the profile may shrink it."""
    return stack_reason(spec.build_model()) is not None


def _sizes(p: Profile, spec: DatasetSpec, sizes) -> tuple[int, ...]:
    """`sizes` (for a model that does not stack, those of them in `sizes_unstacked`, where set), or, for a
    dataset too small for all of them (paper 000's 10-point synthetic set), the profile's `tiny_size` alone,
    so that every dataset has cells."""
    only = p.forgetting.sizes_unstacked
    if only is not None and _unstacked(spec):
        sizes = tuple(s for s in sizes if s in only) or tuple(only)
    fits = tuple(s for s in sizes if 2 * s <= _rows(p, spec))
    return fits or (p.forgetting.tiny_size,)


def _applies(spec: DatasetSpec) -> dict[str, str | None]:
    with seeded(0):
        return applicability(spec.probe(), spec.build_model())


def _settings(p: Profile, spec: DatasetSpec, regime: str, method: str) -> list[str]:
    """`preset`, and `tuned` where the dataset's saved search has the method (in the profile's tuned regimes);
    on a model that does not stack, only the profile's `settings_unstacked` of a method that has both."""
    search = tuning.load(tuned_path(spec.name))
    entry = None if search is None else tuning.regime_search(search, regime)
    tuned = regime in p.forgetting.tuned_regimes and entry is not None and method in entry["methods"]
    if not tuned:
        return ["preset"]
    keep = p.forgetting.settings_unstacked if _unstacked(spec) else ("preset", "tuned")
    return [s for s in ("preset", "tuned") if s in keep]


def cases(p: Profile):
    for spec in map(get_dataset, names()):
        ds, applies = spec.name, _applies(spec)
        methods = [m for m in FIRST if m in METHODS] + sorted(set(METHODS) - set(FIRST))
        for regime in p.forgetting.regimes_of(ds, _unstacked(spec)):
            for size in _sizes(p, spec, p.forgetting.sizes):
                for method in methods:
                    reason = applies[method] or _reason(p, spec, regime, size)
                    marks = [pytest.mark.skip(reason=reason)] if reason else []
                    for setting in _settings(p, spec, regime, method):
                        case_id = f"{ds}-{regime}-n{size}-{method}" + ("-tuned" if setting == "tuned" else "")
                        yield pytest.param((ds, regime, size, method, setting), id=case_id, marks=marks)


def sweep_cases(p: Profile):
    f = p.forgetting
    for spec in map(get_dataset, names()):
        ds, applies = spec.name, _applies(spec)
        size = _sizes(p, spec, (f.sweep_size,))[0]
        for regime in [r for r in f.sweep_regimes if r in f.regimes_of(ds, _unstacked(spec))]:
            for method, (knob, field, _) in SWEEPS.items():
                if method not in METHODS:
                    continue
                reason = applies[method] or _reason(p, spec, regime, size)
                for value in getattr(f, field):
                    yield pytest.param((ds, regime, size, method, value),
                                       id=f"{ds}-{regime}-n{size}-{method}-{knob}{value:g}",
                                       marks=[pytest.mark.skip(reason=reason)] if reason else [])


def pytest_generate_tests(metafunc):
    if "forgetting_case" in metafunc.fixturenames:
        metafunc.parametrize("forgetting_case", list(cases(active(metafunc.config))))
    if "sweep_case" in metafunc.fixturenames:
        metafunc.parametrize("sweep_case", list(sweep_cases(active(metafunc.config))))


def _tuned(dataset: str, regime: str, method: str, cap: int | None):
    """The tuned point of `method` for `regime` on `dataset` under the profile's epoch cap `cap` (a Config -> Config),
    and the search's record keys."""
    search = tuning.load(tuned_path(dataset))
    entry = tuning.regime_search(search, regime)
    m = entry["methods"][method]
    point = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m["best"].items())
    if cap is not None and max((v for k, v in m["best"].items() if "epochs" in k), default=0) > cap:
        point += f" (run at the profile's epoch cap, {cap})"
    keys = {"tuned_point": point, "tuned_score": m["best_score"], "tuning_trials": len(m["trials"]),
            "tuning_seconds": m["seconds"] + m.get("rescore_seconds", 0.0), "tuning_n_models": search["n_models"],
            "tuning_objective": m.get("objective", search["objective"]),
            "tuning_regime": tuning.LEGACY if m.get("legacy") else entry["regime"]}
    rescore = m.get("best_rescore")
    if rescore is not None:            # a per-regime search: the re-score, its interval, convergence, the no-op's
        keys.update(tuned_rescore=rescore["score"], tuned_rescore_lo=rescore.get("score_lo"),
                    tuned_rescore_hi=rescore.get("score_hi"), tuned_feasible=m["feasible"],
                    tuning_noop_score=entry["noop_rescore"],
                    tuning_preset_rescore=(m["preset_rescore"] or {}).get("score"), tuning_convergence=m["convergence"],
                    tuning_sizes=entry["sizes"])
    return (lambda c: tuning.tuned_config(c, method, search, regime, cap)), keys


def test_forgetting(benchmark, lab, profile, progress, forgetting_case):
    dataset, regime, size, method, setting = forgetting_case
    panel = lab.panel(dataset, regime, size)
    cap = lab.scale(dataset, "forgetting").max_epochs
    point, extra = _tuned(dataset, regime, method, cap) if setting == "tuned" else (None, {})
    if method == ORACLE:
        results = benchmark.pedantic(panel.run, args=(method,), rounds=1, iterations=1)
        oracle = lab.panel_oracle(dataset, regime, size, given=results)
    else:
        oracle = lab.panel_oracle(dataset, regime, size)
        results = benchmark.pedantic(panel.run, args=(method,), kwargs={"point": point}, rounds=1, iterations=1)
    rec = {**record(panel, method, results, oracle, point=point), "setting": setting, **extra}
    stamp(benchmark, profile, paper="forgetting", table="forgetting", record=rec, trial=1)
    js = "" if rec["js_to_oracle"] is None else f", JS {rec['js_to_oracle']:.3g}"
    progress(f"{dataset} {regime} n={size} {method} ({setting}): F {rec['forget_quality']:.2f} "
             f"(ceiling {rec['forget_quality_ceiling']:.2f}), MIA gap {rec['mia_gap']:.2f}{js}")
    assert rec["n_models"] == lab.n_models(dataset) and len(rec["epsilon_per_example"]) == size
    assert 0 <= rec["forget_quality"] <= 1
    if method == ORACLE:                 # a second retrained group: its F is the ceiling by construction
        assert rec["forget_quality"] == rec["forget_quality_ceiling"] and rec["mia_gap"] == 0


def test_forgetting_sweep(benchmark, lab, profile, progress, sweep_case):
    dataset, regime, size, method, value = sweep_case
    knob, _, changes = SWEEPS[method]
    panel = lab.panel(dataset, regime, size)
    oracle = lab.panel_oracle(dataset, regime, size)
    preset = panel.configs[0].method_settings(method)
    setting = dataclasses.replace(preset, **changes(preset, value))
    results = benchmark.pedantic(panel.run, args=(method, setting), rounds=1, iterations=1)
    rec = record(panel, method, results, oracle, setting)
    rec[knob] = value
    stamp(benchmark, profile, paper="forgetting", table="forgetting_sweep", record=rec, trial=1,
          optimizer=getattr(setting, "optimizer", None), lr=getattr(setting, "lr", None))
    utility = rec["test_acc"] if "test_acc" in rec else rec["test_mse"]
    progress(f"{dataset} {regime} n={size} {method} {knob}={value:g}: utility {utility:.3g}, F "
             f"{rec['forget_quality']:.2f} (ceiling {rec['forget_quality_ceiling']:.2f}), MIA gap {rec['mia_gap']:.2f}")
    assert rec["config"]["methods"][method] == dataclasses.asdict(setting) != dataclasses.asdict(preset)
    assert 0 <= rec["forget_quality"] <= 1 and len(rec["epsilon_per_example"]) == size
