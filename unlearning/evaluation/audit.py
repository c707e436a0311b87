"""Forgetting audit: N originals, N unlearned models per method, N retrained references.

One `Panel` per (dataset, forget regime, removal size, N): the data the originals train
on (canaries applied; a held-out set where the dataset has no test set), one forget set
shared by every model (per-example ε compares the same examples across models), N
originals (seeds `seed`..`seed + N − 1`, trained together where the model stacks) and
the *reference* group: N models retrained from scratch on the retain set with seeds
`REFERENCE_SEED_OFFSET` further on, independent of every method's runs.

`Panel.run(method)` unlearns all N originals (`methods.unlearn_many`: batched where it
can be); `Panel.record(method, results, oracle)` compares them with the reference group
(per-example ε, F, score) and, model by model, with the oracle run of the same seed
(naive retraining from that original: MIA gap, JS/KL, ToW) — see `unlearning.evaluation.forgetting`
for every formula. `naive_retrain` run through the panel is a second retrained group,
independent of the reference: its F is the ceiling every other F is read against.

Choices, here and nowhere else:
- Non-members for the MIA attacker and the loss attack: the test set. A dataset without
  one (California's default) gets `HOLDOUT_FRACTION` of its training rows held out by
  `data.base.seeded_split` with the panel's seed, before anything trains.
- Members: a seeded sample of at most `forgetting.MIA_MAX_PER_SIDE` retain rows, also the
  rows "retain accuracy" is measured on (predicting all of MNIST's 59k per model is costly).
- The labels of the forget set are the ones the original trained on (canaries: the wrong ones).
- The verdict's control rows (did the whole model move?): `CONTROL_ROWS` of the member sample
  and `CONTROL_ROWS` test rows, each a seeded sample with the panel's seed, the same for every
  method of the panel; their φ is recorded beside the forget set's.
- Utility in the score and ToW: accuracy; for regression the score uses 1 / MSE and ToW
  is not defined (None).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..common import schema
from ..config import Config
from ..data import Data
from ..data.base import seeded_split
from ..data.forget_sets import DEFAULT_CLASS, select
from ..methods import UnlearnResult, unlearn_many
from ..training import threads
from ..training.ensemble import train_originals
from ..training.train import Trained, predict
from . import forgetting as fg
from . import ulira, verdict
from .metrics import score

REFERENCE_SEED_OFFSET = 1_000_003   # the reference group's seeds: seed + offset + i
HOLDOUT_FRACTION = 0.2              # held out as non-members where a dataset has no test set
PHI_DIGITS = 6                      # significant digits of the per-model φ a record keeps
INTERVAL = 0.95                     # a record's `<key>_lo`, `<key>_hi`: this t interval over the N models
CONTROL_ROWS = 50                   # control rows per part (retain, test) the verdict measures the shift on


def with_holdout(data: Data, seed: int, fraction: float = HOLDOUT_FRACTION) -> Data:
    """`data` itself when it has a test set, else a copy with a seeded `fraction` of its
    training rows moved to the test set (the paper-000 target, if any, stays in training)."""
    if len(data.x_test):
        return data
    n_held = min(data.n_train - 2, max(1, round(fraction * data.n_train)))
    kept, held = seeded_split(data.n_train, data.n_train - n_held, seed, keep=data.target_index)
    return data.with_train_rows(kept, data.x_train[held], data.y_train[held],
                                {"holdout": {"fraction": fraction, "rows": len(held), "seed": seed}})


@dataclass
class View:
    """One model's outputs on the panel's forget, member (retain sample) and test rows."""

    forget: torch.Tensor
    retain: torch.Tensor
    test: torch.Tensor


@dataclass
class Panel:
    data: Data
    forget: torch.Tensor
    regime: str
    configs: list[Config]
    originals: list[Trained] = field(repr=False)
    reference: list[nn.Module] = field(repr=False)
    members: torch.Tensor = field(repr=False)
    reference_seconds: float = 0.0

    @property
    def n_models(self) -> int:
        return len(self.configs)

    _cache: dict = field(default_factory=dict, repr=False)

    def view(self, model: nn.Module) -> View:
        d = self.data
        return View(predict(model, d.x_train[self.forget]), predict(model, d.x_train[self.members]),
                    predict(model, d.x_test))

    def views(self, key: str, models: list[nn.Module]) -> list[View]:
        """Views of a group that every record compares with (`control`, `oracle`, `reference`), made once."""
        if key not in self._cache:
            self._cache[key] = [self.view(m) for m in models]
        return self._cache[key]

    @property
    def control_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows the verdict's controls use: seeded samples (the panel's seed) of `CONTROL_ROWS` of the member
        sample (positions in it: retain rows) and of the test rows."""
        seed = self.configs[0].seed
        return (seeded_split(len(self.members), min(len(self.members), CONTROL_ROWS), seed)[0],
                seeded_split(len(self.data.x_test), min(len(self.data.x_test), CONTROL_ROWS), seed)[0])

    @property
    def labels(self) -> View:
        d = self.data
        return View(d.y_train[self.forget], d.y_train[self.members], d.y_test)

    def method_configs(self, method: str, setting=None, point: Callable[[Config], Config] | None = None
                       ) -> list[Config]:
        """The panel's configs, with `setting` (the method's settings object) in place of the preset's, or
        each turned into a point of the method's search by `point` (e.g. `tuning.tuned_config`)."""
        if point is not None:
            return [point(c) for c in self.configs]
        return self.configs if setting is None else [c.with_method(method, setting) for c in self.configs]

    def run(self, method: str, setting=None, point: Callable[[Config], Config] | None = None) -> list[UnlearnResult]:
        """`method` (with `setting` or at `point`, else the preset's) on every original (one batch where it can be)."""
        k = self.n_models
        with threads.policy(self.data.spec or self.data.name):
            return unlearn_many(method, self.originals, [self.data] * k, [self.forget] * k,
                                self.method_configs(method, setting, point))


def _members(data: Data, forget: torch.Tensor, seed: int) -> torch.Tensor:
    """The MIA members: a seeded sample of at most `MIA_MAX_PER_SIDE` retain rows."""
    kept = torch.nonzero(data.retain_mask(forget)).flatten()
    return kept[seeded_split(len(kept), min(len(kept), fg.MIA_MAX_PER_SIDE), seed)[0]]


def build_panel(data: Data, config: Config, size: int, n_models: int, regime: str = "random",
                forget_class: int = DEFAULT_CLASS, shared: dict | None = None) -> Panel:
    """Train a panel's N originals and its N reference models (see the module docstring).

    `shared`: a dict kept by the caller across panels of one dataset and config. Where the
    regime leaves the training data as it is (random, classwise: only canaries change
    labels before training), the N originals do not depend on the forget set, so panels
    of every size and of both regimes take the same originals from it (trained once)."""
    if n_models < 3:
        raise ValueError(f"n_models={n_models}: the forgetting audit needs at least 3 models per group")
    with threads.policy(data.spec or data.name):
        return _build_panel(data, config, size, n_models, regime, forget_class, shared)


def _build_panel(data, config, size, n_models, regime, forget_class, shared) -> Panel:
    base = with_holdout(data, config.seed)
    data, forget = select(base, size, config.seed, regime, forget_class)
    configs = [dataclasses.replace(config, seed=config.seed + i) for i in range(n_models)]
    if data is base and shared is not None:
        if n_models not in shared:
            shared[n_models] = train_originals([data] * n_models, configs)
        originals = shared[n_models]
    else:
        originals = train_originals([data] * n_models, configs)
    x, y = data.oracle_set(forget, config.forget_policy)       # what naive retraining trains on
    retain = Data(data.name, data.task, x, y, data.x_test, data.y_test, data.num_classes, info=dict(data.info),
                  spec=data.spec)
    ref_configs = [dataclasses.replace(c, seed=c.seed + REFERENCE_SEED_OFFSET) for c in configs]
    reference = train_originals([retain] * n_models, ref_configs)
    members = _members(data, forget, config.seed)
    return Panel(data, forget, regime, configs, originals, [t.model for t in reference], members,
                 sum(t.record.seconds for t in reference) / n_models)


def seed_panel(data: Data, forget: torch.Tensor, config: Config, trained: Trained) -> Panel:
    """A panel of one original (already trained, on `data` as given) and no reference group:
    the per-model comparisons (utility, MIA, loss AUC, KL / JS to the oracle) on full data
    where an ensemble is unaffordable (paper 002's lr sweep on MNIST). Per-example ε and F
    need the N-model panels of `build_panel`."""
    members = _members(data, forget, config.seed)
    return Panel(data, forget, "random", [config], [trained], [], members)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(statistics.fmean(values)) if values else None


def spread(name: str, values, absolute: bool = False) -> dict:
    """`name_lo`, `name_hi`: the `INTERVAL` Student t interval (scipy.stats) of the mean of `values`, one per
    model of the group, cut at the range `schema.value_range(name)` allows; `absolute`: of |mean| (a gap), from
    the interval of the signed mean. None for both where fewer than 2 models."""
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if len(v) < 2:
        return {f"{name}_lo": None, f"{name}_hi": None}
    if np.ptp(v) == 0:
        lo = hi = float(v[0])
    else:
        lo, hi = (float(x) for x in stats.ttest_1samp(v, 0).confidence_interval(INTERVAL))
    if absolute:
        lo, hi = (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))), max(abs(lo), abs(hi))
    low, high = schema.value_range(name)
    lo, hi = (lo if low is None else max(lo, low)), (hi if high is None else min(hi, high))
    return {f"{name}_lo": lo, f"{name}_hi": hi}


def _utility(v: View, labels: View, task: str) -> dict[str, float]:
    """Accuracy (or MSE for regression) of one model on the forget, retain-sample and test rows."""
    return {k: score(getattr(v, k), getattr(labels, k), task) for k in ("forget", "retain", "test")}


def _mia(v: View, labels: View, task: str, seed: int) -> float:
    feats = [fg.mia_features(getattr(v, k), getattr(labels, k), task) for k in ("retain", "test", "forget")]
    return fg.mia_efficacy(*feats, seed=seed)


def _auc(v: View, labels: View, task: str) -> float:
    return fg.loss_auc(fg.per_example_loss(v.forget, labels.forget, task),
                       fg.per_example_loss(v.test, labels.test, task))


def _phi(views: list[View], labels: View, task: str) -> np.ndarray:
    return np.stack([fg.logit_confidence(v.forget, labels.forget, task) for v in views])


def forget_phi(panel: Panel, views: list[View]) -> np.ndarray:
    """φ of each model of a group on the panel's forget set, (models, examples)."""
    return _phi(views, panel.labels, panel.data.task)


def test_utility(panel: Panel, views: list[View]) -> float:
    """The group's mean test accuracy (MSE for regression)."""
    return _mean(_utility(v, panel.labels, panel.data.task)["test"] for v in views)


def _attacks(panel: Panel, views: list[View], key: str | None = None) -> tuple[list[float], list[float]]:
    """MIA-efficacy and loss-attack AUC of each model of a group (cached for the panel's own groups)."""
    if key is not None and key in panel._cache:
        return panel._cache[key]
    task, labels, seed = panel.data.task, panel.labels, panel.configs[0].seed
    out = ([_mia(v, labels, task, seed) for v in views], [_auc(v, labels, task) for v in views])
    if key is not None:
        panel._cache[key] = out
    return out


def attack_metrics(panel: Panel, views: list[View], oracle: list[View], control: list[View]) -> dict:
    """MIA-efficacy and loss-attack AUC of a group, its oracles' and the controls', averaged over models; the
    group's with their intervals over the models (the gap's from the per-seed differences to the oracle)."""
    (mia, auc), (mia_o, auc_o), (mia_c, auc_c) = (_attacks(panel, views), _attacks(panel, oracle, "attacks_oracle"),
                                                  _attacks(panel, control, "attacks_control"))
    return {"mia_efficacy": _mean(mia), "mia_efficacy_oracle": _mean(mia_o), "mia_efficacy_control": _mean(mia_c),
            "mia_gap": abs(_mean(mia) - _mean(mia_o)), "loss_auc": _mean(auc), "loss_auc_oracle": _mean(auc_o),
            "loss_auc_control": _mean(auc_c), **spread("mia_efficacy", mia), **spread("loss_auc", auc),
            **spread("mia_gap", [a - b for a, b in zip(mia, mia_o, strict=True)], absolute=True),
            "mia_feature": fg.default_feature(panel.data.task), "mia_attacker": "svc"}


def divergence_metrics(panel: Panel, views: list[View], oracle: list[View]) -> dict:
    """Mean KL and JS of each model to the oracle of its seed, on the forget and the test rows."""
    if not panel.data.is_classification:
        return dict.fromkeys(("kl_to_oracle", "js_to_oracle", "kl_to_oracle_test", "js_to_oracle_test"))
    out = {}
    for part, suffix in (("forget", ""), ("test", "_test")):
        divs = [fg.divergences(getattr(v, part), getattr(o, part), panel.data.task)
                for v, o in zip(views, oracle, strict=True)]
        out[f"kl_to_oracle{suffix}"] = _mean(d["kl"] for d in divs)
        out[f"js_to_oracle{suffix}"] = _mean(d["js"] for d in divs)
        if part == "forget":
            out.update(spread("js_to_oracle", [d["js"] for d in divs]))
    return out


def quality_metrics(panel: Panel, views: list[View], oracle: list[View], reference: list[View]) -> dict:
    """Per-example ε and F against the reference group, its ceiling, the score and ToW."""
    task, labels, n = panel.data.task, panel.labels, panel.n_models
    eps = fg.epsilon_per_example(_phi(views, labels, task), _phi(reference, labels, task))
    f = fg.forget_quality(eps, n)
    ceiling, ceiling_lo, ceiling_hi = _ceiling(panel, oracle, reference)
    util = [_utility(v, labels, task) for v in views]
    ref = [_utility(v, labels, task) for v in reference]
    up = (lambda u: u) if panel.data.is_classification else (lambda u: 1 / u if u > 0 else float("inf"))
    score_ = fg.unlearn_score(f, [up(u["retain"]) for u in util], [up(u["retain"]) for u in ref],
                              [up(u["test"]) for u in util], [up(u["test"]) for u in ref])
    tows = ([fg.tug_of_war(u, _utility(o, labels, task)) for u, o in zip(util, oracle, strict=True)]
            if panel.data.is_classification else [])
    null = verdict.f_null(n, len(reference))[0]
    return {"forget_quality": f, "forget_quality_ceiling": ceiling,
            "forget_quality_normalised": f / ceiling if ceiling > 0 else None,
            "forget_quality_null": null, "forget_quality_vs_null": f / null,
            **dict(zip(("forget_quality_lo", "forget_quality_hi"), verdict.f_interval(eps, n), strict=True)),
            "forget_quality_ceiling_lo": ceiling_lo, "forget_quality_ceiling_hi": ceiling_hi,
            "epsilon_cap": fg.epsilon_cap(n), "n_models": n, "epsilon_per_example": eps.tolist(),
            "epsilon_mean": float(eps.mean()), "unlearn_score": score_, "tow": _mean(tows), **spread("tow", tows)}


def _ceiling(panel: Panel, oracle: list[View], reference: list[View]) -> tuple[float, float, float]:
    """F of the oracle group (naive retraining) against the reference group, and its interval; the same for
    every method of the panel."""
    if "ceiling" not in panel._cache:
        labels, task = panel.labels, panel.data.task
        eps = fg.epsilon_per_example(_phi(oracle, labels, task), _phi(reference, labels, task))
        panel._cache["ceiling"] = (fg.forget_quality(eps, panel.n_models), *verdict.f_interval(eps, panel.n_models))
    return panel._cache["ceiling"]


def _rounded(phi: np.ndarray) -> np.ndarray:
    """φ to `PHI_DIGITS` significant digits: what the record keeps, and what the verdict is computed
    from, so that the saved φ reproduce it exactly."""
    return np.array([[float(f"{v:.{PHI_DIGITS}g}") for v in row] for row in phi])


def _control_phi(panel: Panel, views: list[View]) -> list[np.ndarray]:
    """φ (rounded as the record keeps it) of a group on the panel's control rows (`Panel.control_rows`), by part:
    retain rows, then test rows."""
    labels, task = panel.labels, panel.data.task
    retain, test = panel.control_rows
    return [_rounded(np.stack([fg.logit_confidence(v.retain[retain], labels.retain[retain], task) for v in views])),
            _rounded(np.stack([fg.logit_confidence(v.test[test], labels.test[test], task) for v in views]))]


def judgement(u, r, uc=None, rc=None, *, gate, originals=None, seed: int = 0) -> dict:
    """The record keys computed from φ alone, here and in every recomputation from stored φ
    (`unlearning.bench.rejudge`): the verdict with its control rows (`verdict.judge`; `uc`, `rc`: the
    unlearned and reference models' φ on the control rows by part, retain then test, or None), whether
    "matches retraining" was attainable (`verdict.attainable` at this N, M and measured ρ) and U-LiRA
    (`ulira.ulira_metrics`; `originals`: the originals' φ on the forget set, which choose its most
    vulnerable points; the retain-row attack on `uc[0]`, `rc[0]`)."""
    u, r = np.asarray(u, dtype=np.float64), np.asarray(r, dtype=np.float64)
    judged = verdict.judge(u, r, gate=gate, uc_parts=uc, rc_parts=rc, seed=seed)
    out = judged.record()
    out["matches_attainable"] = verdict.attainable(len(u), len(r), u.shape[1], judged.model_share)
    retain = {} if uc is None else {"u_retain": np.asarray(uc[0]), "r_retain": np.asarray(rc[0])}
    out.update(ulira.ulira_metrics(u, r, control=None if originals is None else np.asarray(originals), seed=seed,
                                   **retain))
    return out


def verdict_metrics(panel: Panel, method: str, views: list[View], control: list[View],
                    reference: list[View]) -> dict:
    """The verdict of `method` on the panel (`judgement`: the permutation test against the reference group,
    the effect's interval, the control rows, attainability, U-LiRA), power, the no-op gate; φ of every
    model on the forget set and the control rows for recomputation; the no-op's record also carries the
    power curve over fewer models and the models needed."""
    labels, task = panel.labels, panel.data.task
    u, r = (_rounded(_phi(g, labels, task)) for g in (views, reference))
    seed = panel.configs[0].seed
    if "noop_difference" not in panel._cache:      # the gate: the originals are the no-op's models
        originals = _rounded(_phi(control, labels, task))
        panel._cache["noop_difference"] = verdict.difference(originals, r, seed=seed)
        panel._cache["originals_phi"] = originals
        panel._cache["reference_control_phi"] = _control_phi(panel, reference)
    gate = verdict.SELF if method == "noop" else panel._cache["noop_difference"].p_value
    uc, rc = _control_phi(panel, views), panel._cache["reference_control_phi"]
    out = {**judgement(u, r, uc, rc, gate=gate, originals=panel._cache["originals_phi"], seed=seed),
           "phi": u.tolist(), "phi_retain": uc[0].tolist(), "phi_test": uc[1].tolist()}
    if method in ("noop", "naive_retrain"):
        out.update(phi_reference=r.tolist(), phi_reference_retain=rc[0].tolist(), phi_reference_test=rc[1].tolist())
    if method == "noop":
        curve = verdict.power_curve(u, r, seed=seed)
        out.update(power_curve_models=list(curve), power_curve=list(curve.values()),
                   models_needed=verdict.models_needed(curve))
    return out


def utility_metrics(panel: Panel, views: list[View], prefix: str = "") -> dict:
    """Mean accuracy (MSE for regression) of the group on the forget, retain-sample and test rows
    (keys `forget_acc`, ...; `prefix` before each, e.g. `control_` for the originals)."""
    suffix = "acc" if panel.data.is_classification else "mse"
    util = [_utility(v, panel.labels, panel.data.task) for v in views]
    out = {f"{prefix}{k}_{suffix}": _mean(u[k] for u in util) for k in ("forget", "retain", "test")}
    if not prefix:
        for k in ("forget", "retain", "test"):
            out.update(spread(f"{k}_{suffix}", [u[k] for u in util]))
    return out


def _details(results: list[UnlearnResult]) -> dict:
    """The numeric details the results report (e.g. weights zeroed), averaged over the models."""
    keys = [k for k, v in results[0].details.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: _mean(r.details.get(k) for r in results) for k in keys}


def record(panel: Panel, method: str, results: list[UnlearnResult], oracle: list[UnlearnResult],
           setting=None, point: Callable[[Config], Config] | None = None) -> dict:
    """One flat record of `method` (run with `setting` or at `point`, else the preset's) on the panel (keys:
    `unlearning.common.schema`), every value a mean over the N models. A panel without a reference
    group (`seed_panel`) gets no ε, F or score."""
    views = [panel.view(r.model) for r in results]
    ov = panel.views("oracle", [r.model for r in oracle])
    cv = panel.views("control", [t.model for t in panel.originals])
    rv = panel.views("reference", panel.reference)
    seconds, oracle_seconds = _mean(r.cost.seconds for r in results), _mean(r.cost.seconds for r in oracle)
    data = panel.data
    return {"dataset": data.name, "method": method, "forget_regime": panel.regime, "removal_size": len(panel.forget),
            "seed": panel.configs[0].seed, "train_size": data.n_train, "test_size": len(data.x_test),
            "device": str(next(results[0].model.parameters()).device), "threads": torch.get_num_threads(),
            "epochs": _mean(r.cost.epochs for r in results), "seconds": seconds,
            **spread("seconds", [r.cost.seconds for r in results]),
            "batch_seconds": max(r.cost.cost()["batch_seconds"] for r in results),
            "batch_models": results[0].cost.batch_models, "oracle_seconds": oracle_seconds,
            "oracle_epochs": _mean(r.cost.epochs for r in oracle), "rte": fg.rte(oracle_seconds, seconds),
            "reference_seconds": panel.reference_seconds,
            **attack_metrics(panel, views, ov, cv), **divergence_metrics(panel, views, ov),
            **utility_metrics(panel, views), **utility_metrics(panel, cv, "control_"), **_details(results),
            **(quality_metrics(panel, views, ov, rv) if panel.reference else {"n_models": panel.n_models}),
            **(verdict_metrics(panel, method, views, cv, rv) if panel.reference else {}),
            "config": panel.method_configs(method, setting, point)[0].as_dict(), "data_info": dict(data.info)}
