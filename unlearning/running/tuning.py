"""One search for every method: each method's knobs tuned on equal terms, per forget regime, on the question the
ranking asks.

A comparison of unlearning methods is only as fair as their hyperparameters: a baseline run at a reference
default made for CIFAR ResNets, beside a method tuned by its authors, says little. So every method with knobs
(`register(..., search=Space(...))`, `unlearning.methods.space`) gets the same search here, and nothing is
hand-tuned that another method did not get:

- **The question that is ranked.** The report ranks methods by their distance from retraining
  (`verdict.distance`: |effect| / max(|the no-op's effect|, margin); 0 is retraining, 1 is doing nothing),
  cell by cell, per forget regime and removal size. A search minimises the same distance, averaged over the
  validation panels of one regime (one panel per removal size the report ranks), so a method gets one point per
  regime: what a deployer who knows the kind of request (random rows, a class, memorised canaries) would tune.
- **Utility kept.** A point is feasible only where the unlearned models keep `UTILITY_FLOOR` of the retrained
  models' test utility on every panel (accuracy ratio; MSE ratio retrained / unlearned for regression), or of the
  originals' where those are worse (California's canaries: memorised wrong targets cost the originals test MSE):
  doing nothing is always feasible, and a collapsed model, which can match a forget set's φ by accident, is not.
  Optuna's TPE models the constraint (`Trial.set_constraint`); the best point is the feasible one of least distance.
- **The same budget**: `TRIALS` trials per method and regime, TPE seeded with `SAMPLER_SEED` (its first
  `STARTUP_TRIALS` random). The preset is the first trial where its space holds it (`Space.preset_point`). A
  point already scored is not run again (the runs are deterministic): an integer space smaller than the budget
  (SISA's 8 points) is searched exhaustively at the cost of its size.
- **Winners re-scored.** The `RESCORE_TOP` best feasible points, and the preset where it is feasible, are scored
  again on a second, independent set of validation panels (`RESCORE_SEED`), and the point is chosen on that score:
  a point that won by seed noise on the first panels does not carry it to the second. The chosen point's re-score
  is recorded with its interval (each panel's effect interval, `verdict.effect_interval`, folded into a distance as
  the ranking does, averaged over the panels); the preset and the no-op are re-scored beside it.
- **Apart from what is reported**: the validation panels' originals, forget sets and references are drawn from
  `VALIDATION_SEED` (and `RESCORE_SEED`) on, not the benchmarks' seeds (`python -m benchmarks.tune` records how
  many rows each shares with a reported forget set by chance).

`tune_regime` returns, per method, every trial (values, distance, effect and utility per panel, seconds), the
convergence (the best feasible distance after each trial), the re-scored points and the chosen one, and the
search's cost; `save` / `load` keep a dataset's searches as one JSON (`benchmarks/tuned/<dataset>.json`, written by
`python -m benchmarks.tune`), which the benchmarks read (`tuned_config`). Optuna is the `tune` extra; reading a
saved search needs none. A search saved before per-regime tuning (one canary panel, the challenge score) is still
read: its one point serves every regime, and `regime_search` says so (`LEGACY`); a knob added to a space since is
set to the preset's value, the value the search ran it at (`LEGACY_STALE`: the methods whose preset moved instead).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from ..config import Config
from ..data import Data
from ..evaluation import audit, verdict
from ..methods import METHODS, MethodNotApplicable, get_method
from ..methods.space import Int, Real, Space

TRIALS = 32                 # trials per method per regime and dataset (SCRUB on digits' canaries, best validation
                            # distance after 16 trials 0.275, after 32 0.238: the hand-found point scores 0.222)
STARTUP_TRIALS = 8          # of them, drawn at random before TPE models the objective
SAMPLER_SEED = 0
N_MODELS = 8                # originals (and retrained references) of a validation panel
RESCORE_TOP = 3             # the best feasible points re-scored on the second panels
UTILITY_FLOOR = 0.9         # a feasible point keeps this share of the test utility of retraining or of the no-op,
                            # the lower of the two, on every panel
VALIDATION_SEED = 700_001   # the validation panels' seeds: originals from here, references + audit's offset
RESCORE_SEED = 800_001      # the second, independent validation panels the winners are re-scored on
OBJECTIVE = "distance"      # lower is better
FAILED = verdict.Z_CLIP / verdict.MARGIN    # the distance of a point that failed: the largest a point can have
LEGACY = "legacy"           # a search saved before per-regime tuning: one canary panel, the challenge score
# methods whose legacy points no longer describe the method: not used (no tuned cell), with the reason
LEGACY_STALE = {"neggrad_plus": "its preset moved to the SCRUB notebook's batches (128 / 64) and L2 term (issue 30); "
                                "the legacy point was searched at the training's batch without it"}


def validation_panels(data: Data, config: Config, regime: str, sizes: Iterable[int], n_models: int = N_MODELS,
                      seed: int = VALIDATION_SEED, shared: dict | None = None) -> list[audit.Panel]:
    """The panels a regime's search scores trials on: `audit.build_panel` from `seed` instead of `config.seed`, one
    per removal size. `shared`: kept by the caller across regimes, so that random and classwise panels take the
    same originals (as the reported panels do)."""
    cfg, shared = dataclasses.replace(config, seed=seed), {} if shared is None else shared
    return [audit.build_panel(data, cfg, size, n_models, regime, shared=shared) for size in sizes]


def tunable(data: Data, model, names: Iterable[str] | None = None) -> list[str]:
    """The methods with a search space that apply to `data` and `model`, in name order."""
    names = sorted(METHODS) if names is None else list(names)
    return [n for n in names if get_method(n).search is not None and get_method(n).applies(data, model) is None]


def _suggest(trial, name: str, p: Real | Int):
    if isinstance(p, Int):
        return trial.suggest_int(name, p.low, p.high, log=p.log)
    return trial.suggest_float(name, p.low, p.high, log=p.log)


def _references(panel: audit.Panel) -> dict:
    """What every trial on `panel` compares with, computed once: the reference models' φ on the forget set and
    their mean test utility, the originals' φ (the no-op) and the no-op's effect and distance."""
    if "tuning" not in panel._cache:
        retrained = panel.views("reference", panel.reference)
        originals = panel.views("control", [t.model for t in panel.originals])
        r = verdict.bounded(audit.forget_phi(panel, retrained))
        noop = float(verdict.shift(verdict.bounded(audit.forget_phi(panel, originals)), r))
        utility = audit.test_utility(panel, retrained)
        noop_ratio = _utility_ratio(panel, audit.test_utility(panel, originals), utility)
        panel._cache["tuning"] = {"r": r, "noop_effect": noop, "noop_distance": float(verdict.distance(noop, noop)),
                                  "utility": utility, "floor": UTILITY_FLOOR * min(1.0, noop_ratio)}
    return panel._cache["tuning"]


def _utility_ratio(panel: audit.Panel, unlearned: float, retrained: float) -> float:
    """Unlearned test utility as a share of retraining's (accuracy ratio; MSE ratio retrained / unlearned)."""
    if panel.data.is_classification:
        return unlearned / retrained if retrained > 0 else 0.0
    return retrained / unlearned if unlearned > 0 else 1.0


def panel_score(panel: audit.Panel, method: str, point: Callable[[Config], Config] | None,
                interval: bool = False) -> dict:
    """`method` at `point` on one panel: its distance from retraining, effect, test-utility ratio and seconds
    (and, with `interval`, the distance's interval from the effect's, folded at 0 as the ranking folds it)."""
    ref = _references(panel)
    t0 = time.perf_counter()
    results = panel.run(method, point=point)
    seconds = time.perf_counter() - t0
    views = [panel.view(r.model) for r in results]
    u = verdict.bounded(audit.forget_phi(panel, views))
    if not np.isfinite(u).all():
        raise RuntimeError(f"{method}: a model produced non-finite outputs on the forget set")
    effect = float(verdict.shift(u, ref["r"]))
    out = {"distance": float(verdict.distance(effect, ref["noop_effect"])), "effect": effect,
           "utility_ratio": _utility_ratio(panel, audit.test_utility(panel, views), ref["utility"]),
           "utility_floor": ref["floor"], "seconds": seconds}
    if interval:
        lo, hi = verdict.effect_interval(u, ref["r"], seed=panel.configs[0].seed)
        out["distance_lo"], out["distance_hi"] = verdict.distance_interval(lo, hi, ref["noop_effect"])
    return out


def regime_score(panels: list[audit.Panel], method: str, point: Callable[[Config], Config] | None,
                 interval: bool = False) -> dict:
    """`panel_score` on each of a regime's panels: the mean distance (`score`), the least utility ratio, whether
    the point is feasible (on every panel at or above its floor), the least margin above the floors, and the
    per-panel values."""
    per = [panel_score(p, method, point, interval) for p in panels]
    out = {"score": float(np.mean([p["distance"] for p in per])), "utility_ratio": min(p["utility_ratio"] for p in per),
           "seconds": sum(p["seconds"] for p in per), "distances": [p["distance"] for p in per],
           "effects": [p["effect"] for p in per], "utility_ratios": [p["utility_ratio"] for p in per]}
    out["feasible"] = all(p["utility_ratio"] >= p["utility_floor"] for p in per)
    out["utility_margin"] = min(p["utility_ratio"] - p["utility_floor"] for p in per)
    if interval:
        out["score_lo"] = float(np.mean([p["distance_lo"] for p in per]))
        out["score_hi"] = float(np.mean([p["distance_hi"] for p in per]))
    return out


def noop_score(panels: list[audit.Panel]) -> float:
    """The no-op's mean distance over the panels (1 where its effect exceeds the margin on each)."""
    return float(np.mean([_references(p)["noop_distance"] for p in panels]))


def point_configs(configs: list[Config], method: str, values: Mapping, epoch_cap: int | None = None) -> list[Config]:
    """`configs` set to the point `values` of the method's space, then under the profile's epoch cap
    (`Config.with_epoch_cap`: a point's epochs above it are cut to it, as the benchmark will run them)."""
    space = get_method(method).search
    return [space.configure(c, method, values).with_epoch_cap(epoch_cap) for c in configs]


def at(method: str, values: Mapping, epoch_cap: int | None = None) -> Callable[[Config], Config]:
    """The point `values` of the method's space as a Config -> Config (`Panel.run(point=...)`)."""
    return lambda c: point_configs([c], method, values, epoch_cap)[0]


def _key(values: Mapping) -> tuple:
    return tuple(sorted(values.items()))


def _scored(panels, method: str, values: Mapping, epoch_cap: int | None, interval: bool = False) -> dict:
    """`regime_score` at `values`; a point the data cannot hold (ValueError, RuntimeError) fails: distance
    `FAILED`, infeasible, its error kept."""
    try:
        return regime_score(panels, method, at(method, values, epoch_cap), interval)
    except (ValueError, RuntimeError) as exc:
        return {"score": FAILED, "feasible": False, "utility_ratio": 0.0, "utility_margin": -1.0, "seconds": 0.0,
                "error": f"{type(exc).__name__}: {exc}"}


def _objective(panels, method: str, space: Space, epoch_cap: int | None, seen: dict) -> Callable:
    def objective(trial) -> float:
        values = {name: _suggest(trial, name, p) for name, p in space.params.items()}
        key = _key(values)
        out = {**seen[key], "repeat": True} if key in seen else _scored(panels, method, values, epoch_cap)
        seen.setdefault(key, {k: v for k, v in out.items() if k != "repeat"})
        for k, v in out.items():
            trial.set_user_attr(k, v)
        trial.set_constraint("utility", -out["utility_margin"])      # feasible: <= 0
        return out["score"]
    return objective


def convergence(trials: list[dict]) -> list[float | None]:
    """The best feasible distance after each trial (None until a trial is feasible)."""
    best, out = math.inf, []
    for t in trials:
        if t["feasible"]:
            best = min(best, t["score"])
        out.append(None if best == math.inf else best)
    return out


def tune_method(panels: list[audit.Panel], rescore: list[audit.Panel], method: str, trials: int = TRIALS,
                seed: int = SAMPLER_SEED, epoch_cap: int | None = None) -> dict:
    """One method's search on a regime's validation `panels`, its winners re-scored on the `rescore` panels: every
    trial, the convergence, the chosen point with its scores and the search's seconds. `epoch_cap`: the profile's
    cap on every epoch count (the dataset's `Scale.max_epochs` in `benchmarks/profiles.py`), applied to each
    point."""
    import optuna

    space = get_method(method).search
    if space is None:
        raise MethodNotApplicable(f"method {method!r} has no search space (register(..., search=...))")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(STARTUP_TRIALS, trials))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    preset = space.preset_point(panels[0].configs[0], method)
    if preset is not None:
        study.enqueue_trial(preset)
    t0 = time.perf_counter()
    study.optimize(_objective(panels, method, space, epoch_cap, {}), n_trials=trials)
    seconds = time.perf_counter() - t0
    done = [{"number": t.number, "values": t.params, **t.user_attrs} for t in study.trials]
    t0 = time.perf_counter()
    ranked = sorted((t for t in done if t["feasible"] and not t.get("repeat")), key=lambda t: (t["score"], t["number"]))
    if preset is not None and done[0]["feasible"] and done[0] not in ranked[:RESCORE_TOP]:
        ranked = [*ranked[:RESCORE_TOP], done[0]]       # the preset is always a candidate where it is feasible
    finalists = [{"number": t["number"], "values": t["values"], "score": t["score"],
                  "rescore": _scored(rescore, method, t["values"], epoch_cap, interval=True)}
                 for t in ranked[:RESCORE_TOP + 1]]
    at_preset = [f["rescore"] for f in finalists if preset is not None and f["number"] == 0]
    preset_rescore = (at_preset[0] if at_preset else _scored(rescore, method, preset, epoch_cap, interval=True)
                      if preset is not None else None)
    rescore_seconds = time.perf_counter() - t0
    feasible = [f for f in finalists if f["rescore"]["feasible"]]
    chosen = min(feasible or finalists, key=lambda f: (f["rescore"]["score"], f["score"], f["number"]), default=None)
    if chosen is None:          # no feasible trial at all: the least distance, flagged infeasible
        first = min(done, key=lambda t: (t["score"], t["number"]))
        chosen = {"number": first["number"], "values": first["values"], "score": first["score"], "rescore": None}
    return {"space": space.describe(), "preset": preset, "preset_score": done[0]["score"] if preset else None,
            "preset_rescore": preset_rescore, "best": chosen["values"], "best_score": chosen["score"],
            "best_trial": chosen["number"], "best_rescore": chosen["rescore"],
            "feasible": bool(chosen["rescore"] and chosen["rescore"]["feasible"]),
            "finalists": finalists, "convergence": convergence(done), "trials": done,
            "distinct_points": len({_key(t["values"]) for t in done}), "seconds": seconds,
            "seconds_per_trial": seconds / trials, "rescore_seconds": rescore_seconds}


def tune_regime(panels: list[audit.Panel], rescore: list[audit.Panel], methods: Iterable[str] | None = None,
                trials: int = TRIALS, seed: int = SAMPLER_SEED, progress: Callable[[str], None] | None = None,
                epoch_cap: int | None = None) -> dict:
    """Every tunable method (or `methods`) searched on one regime's validation panels (`tune_method`)."""
    first = panels[0]
    out = {}
    for method in tunable(first.data, first.originals[0].model, methods):
        out[method] = tune_method(panels, rescore, method, trials, seed, epoch_cap)
        if progress:
            e = out[method]
            r = e["best_rescore"]
            progress(f"{first.data.name} {first.regime} {method}: best {e['best']} distance {e['best_score']:.3g}, "
                     f"re-scored {r['score'] if r else float('nan'):.3g} (preset {e['preset_score']}), "
                     f"{e['seconds'] + e['rescore_seconds']:.1f}s")
    return {"sizes": [len(p.forget) for p in panels], "forget": [p.forget.tolist() for p in panels],
            "rescore_forget": [p.forget.tolist() for p in rescore], "noop_score": noop_score(panels),
            "noop_rescore": noop_score(rescore), "methods": out}


def settings() -> dict:
    """The search's settings, as a saved search records them."""
    return {"objective": OBJECTIVE, "utility_floor": UTILITY_FLOOR, "trials_per_method": TRIALS,
            "sampler": "optuna TPESampler (constraint: the utility floor)", "sampler_seed": SAMPLER_SEED,
            "startup_trials": STARTUP_TRIALS, "rescore_top": RESCORE_TOP, "validation_seed": VALIDATION_SEED,
            "rescore_seed": RESCORE_SEED}


def save(path: str | Path, payload: dict) -> Path:
    """Write a search's JSON atomically (`files.save_json`: an interrupted write leaves the old file)."""
    from ..common.files import save_json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_json(path, payload)


def load(path: str | Path) -> dict | None:
    """A saved search, or None where there is none; ValueError naming the file when it is not one."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a tuning JSON ({exc})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("regimes", payload.get("methods")), dict):
        raise ValueError(f"{path}: not a tuning JSON (no 'regimes' mapping); write it with python -m benchmarks.tune")
    return payload


def regime_search(search: Mapping, regime: str) -> dict | None:
    """The search of `regime` in a saved search (its `methods`, sizes, no-op score), or None where the regime was not
    searched. A legacy search (one canary panel for every regime) answers every regime with its one search, marked
    `regime: LEGACY`."""
    if "regimes" not in search:
        methods = {m: e for m, e in search["methods"].items() if m not in LEGACY_STALE}
        return {**search, "methods": methods, "regime": LEGACY, "searched_regime": search.get("regime")}
    entry = search["regimes"].get(regime)
    return None if entry is None else {**entry, "regime": regime}


def tuned_config(config: Config, method: str, search: Mapping, regime: str, epoch_cap: int | None = None) -> Config:
    """`config` with `method` set to the chosen point of its saved search of `regime`, under `epoch_cap` (see
    `point_configs`)."""
    entry = regime_search(search, regime)
    if entry is None:
        raise KeyError(f"no search of regime {regime!r}; searched: {', '.join(search['regimes'])}")
    if method not in entry["methods"]:
        raise KeyError(f"no tuned values of method {method!r} in regime {regime!r}; tuned: "
                       f"{', '.join(entry['methods'])}")
    values = entry["methods"][method]["best"]
    space = get_method(method).search
    if entry["regime"] == LEGACY and set(values) != set(space.params):
        # knobs added to the space since stay at the preset's value, as the search ran them (which may lie outside
        # the range now searched: gradient ascent's full batch on the synthetic set)
        return space.apply(config, method, dict(values)).with_epoch_cap(epoch_cap)
    return point_configs([config], method, values, epoch_cap)[0]
