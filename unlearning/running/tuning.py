"""One search for every method: each method's knobs tuned on equal terms, on a validation forget set.

A comparison of unlearning methods is only as fair as their hyperparameters: a baseline run at
a reference default made for CIFAR ResNets, beside a method tuned by its authors, says little.
So every method with knobs (`register(..., search=Space(...))`, `unlearning.methods.space`) gets the
same search here, and nothing is hand-tuned that another method did not get:

- **The same budget**: `TRIALS` trials per method per dataset, Optuna's TPE sampler seeded
  with `SAMPLER_SEED` (its first `STARTUP_TRIALS` trials random). The method's preset point is
  the first trial where its space holds it (`Space.preset`), so a search can only improve on it.
- **The same objective**: the NeurIPS 2023 unlearning challenge's score, F × (retain accuracy
  ratio) × (test accuracy ratio) against retrained models (`forgetting.unlearn_score`; 1 / MSE
  for regression), averaged over the validation panel's models. A trial that fails (a setting
  the data cannot hold, a collapse) scores 0 and keeps its error message.
- **Apart from what is reported**: a validation panel (`validation_panel`) of `N_MODELS`
  originals and as many retrained references, whose originals, forget set and references are
  all drawn from `VALIDATION_SEED` on, not the benchmarks' seeds: the forget sets the audit
  reports are separate draws from the one a method was tuned on (`python -m benchmarks.tune`
  records how many rows each shares with it by chance).

`tune_panel` returns, per method, every trial (values, score, F, utility ratios, seconds), the
best point and the search's cost; `save` / `load` keep them as one small JSON per dataset
(`benchmarks/tuned/<dataset>.json`, written by `python -m benchmarks.tune`), which the
benchmarks read (`tuned_config`). Optuna is the `tune` extra; reading a saved search needs none.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ..config import Config
from ..data import Data
from ..evaluation import audit
from ..methods import METHODS, MethodNotApplicable, get_method
from ..methods.space import Int, Real, Space

TRIALS = 16                 # trials per method per dataset
STARTUP_TRIALS = 8          # of them, drawn at random before TPE models the objective
SAMPLER_SEED = 0
N_MODELS = 8                # originals (and retrained references) of a validation panel
SIZE = 20                   # forget points of the validation forget set
# The validation forget set's regime: canaries, the one regime where a forget set is memorised by construction,
# so that the score rewards forgetting and not only keeping utility. On random forget sets a no-op is as good as
# retraining (the audit's finding): there a search can only learn to do nothing (a first search on digits' random
# regime, 1 trial each at N = 16, scored every gentle method's preset 0.12-0.13 and the ones that change the model
# most, SalUn and SCRUB, 0.01-0.02).
REGIME = "canaries"
VALIDATION_SEED = 700_001   # the validation panel's seeds: originals from here, references + audit's offset
OBJECTIVE = "unlearn_score"
ORACLE = "naive_retrain"


def validation_panel(data: Data, config: Config, size: int = SIZE, n_models: int = N_MODELS,
                     regime: str = REGIME, seed: int = VALIDATION_SEED) -> audit.Panel:
    """The panel a search scores trials on: `audit.build_panel` from `seed` instead of `config.seed`."""
    return audit.build_panel(data, dataclasses.replace(config, seed=seed), size, n_models, regime)


def tunable(data: Data, model, names: Iterable[str] | None = None) -> list[str]:
    """The methods with a search space that apply to `data` and `model`, in name order."""
    names = sorted(METHODS) if names is None else list(names)
    return [n for n in names if get_method(n).search is not None and get_method(n).applies(data, model) is None]


def _suggest(trial, name: str, p: Real | Int):
    if isinstance(p, Int):
        return trial.suggest_int(name, p.low, p.high, log=p.log)
    return trial.suggest_float(name, p.low, p.high, log=p.log)


def score(panel: audit.Panel, method: str, point: Callable[[Config], Config], oracle: list) -> dict:
    """Run `method` at `point` (each panel config -> its config at the point) on the panel's originals
    (`Panel.run`); its score and what it is made of."""
    t0 = time.perf_counter()
    results = panel.run(method, point=point)
    seconds = time.perf_counter() - t0
    views = [panel.view(r.model) for r in results]
    q = audit.quality_metrics(panel, views, panel.views("oracle", [r.model for r in oracle]),
                              panel.views("reference", panel.reference))
    value = q[OBJECTIVE]
    util = audit.utility_metrics(panel, views)
    return {"score": value if value is not None and math.isfinite(value) else 0.0,
            "forget_quality": q["forget_quality"], "seconds": seconds,
            **{k: v for k, v in util.items() if not k.endswith(("_lo", "_hi"))}}


def point_configs(configs: list[Config], method: str, values: Mapping, epoch_cap: int | None = None) -> list[Config]:
    """`configs` set to the point `values` of the method's space, then under the profile's epoch cap
    (`Config.with_epoch_cap`: a point's epochs above it are cut to it, as the benchmark will run them)."""
    space = get_method(method).search
    return [space.configure(c, method, values).with_epoch_cap(epoch_cap) for c in configs]


def _objective(panel: audit.Panel, method: str, space: Space, oracle: list, epoch_cap: int | None) -> Callable:
    def objective(trial) -> float:
        values = {name: _suggest(trial, name, p) for name, p in space.params.items()}
        try:
            out = score(panel, method, lambda c: point_configs([c], method, values, epoch_cap)[0], oracle)
        except (ValueError, RuntimeError) as exc:       # a point the data cannot hold: scored 0, error kept
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            return 0.0
        for key, v in out.items():
            trial.set_user_attr(key, v)
        return out["score"]
    return objective


def tune_method(panel: audit.Panel, method: str, oracle: list, trials: int = TRIALS,
                seed: int = SAMPLER_SEED, epoch_cap: int | None = None) -> dict:
    """One method's search on the panel: every trial, the best point and the search's seconds. `epoch_cap`:
    the profile's cap on every epoch count (the dataset's `Scale.max_epochs` in `benchmarks/profiles.py`),
    applied to each point."""
    import optuna

    space = get_method(method).search
    if space is None:
        raise MethodNotApplicable(f"method {method!r} has no search space (register(..., search=...))")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(STARTUP_TRIALS, trials))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    preset = space.preset_point(panel.configs[0], method)
    if preset is not None:
        study.enqueue_trial(preset)
    t0 = time.perf_counter()
    study.optimize(_objective(panel, method, space, oracle, epoch_cap), n_trials=trials)
    seconds = time.perf_counter() - t0
    done = [{"number": t.number, "values": t.params, "score": t.value, **t.user_attrs} for t in study.trials]
    best = max(done, key=lambda t: (t["score"], -t["number"]))      # ties: the earliest
    return {"space": space.describe(), "preset": preset, "preset_score": done[0]["score"] if preset else None,
            "best": best["values"], "best_score": best["score"], "best_trial": best["number"],
            "trials": done, "seconds": seconds, "seconds_per_trial": seconds / trials}


def tune_panel(panel: audit.Panel, methods: Iterable[str] | None = None, trials: int = TRIALS,
               seed: int = SAMPLER_SEED, progress: Callable[[str], None] | None = None,
               epoch_cap: int | None = None) -> dict:
    """Every tunable method (or `methods`) searched on one validation panel; the oracle (naive
    retraining of the panel's originals) is run once and shared."""
    t0 = time.perf_counter()
    oracle = panel.run(ORACLE)
    oracle_seconds = time.perf_counter() - t0
    out = {}
    for method in tunable(panel.data, panel.originals[0].model, methods):
        out[method] = tune_method(panel, method, oracle, trials, seed, epoch_cap)
        if progress:
            progress(f"{panel.data.name} {method}: best {out[method]['best']} score {out[method]['best_score']:.4g}"
                     f" (preset {out[method]['preset_score']}), {out[method]['seconds']:.1f}s")
    return {"objective": OBJECTIVE, "trials_per_method": trials, "sampler": "optuna TPESampler",
            "sampler_seed": seed, "startup_trials": min(STARTUP_TRIALS, trials), "epoch_cap": epoch_cap,
            "n_models": panel.n_models,
            "size": len(panel.forget), "regime": panel.regime, "validation_seed": panel.configs[0].seed,
            "train_size": panel.data.n_train, "test_size": len(panel.data.x_test),
            "oracle_seconds": oracle_seconds, "forget": panel.forget.tolist(), "methods": out}


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
    if not isinstance(payload, dict) or not isinstance(payload.get("methods"), dict):
        raise ValueError(f"{path}: not a tuning JSON (no 'methods' mapping); write it with python -m benchmarks.tune")
    return payload


def tuned_config(config: Config, method: str, search: Mapping, epoch_cap: int | None = None) -> Config:
    """`config` with `method` set to the best point of its saved search (`search["methods"][method]`), under
    `epoch_cap` (see `point_configs`)."""
    entry = search["methods"].get(method)
    if entry is None:
        raise KeyError(f"no tuned values of method {method!r}; tuned: {', '.join(search['methods'])}")
    return point_configs([config], method, entry["best"], epoch_cap)[0]
