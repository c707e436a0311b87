"""Naive retraining: the oracle `m_o` every other method is measured against."""

from __future__ import annotations

from ..training.ensemble import fit_many
from ..training.train import fit, fresh_model
from .base import UnlearnResult, register

INDEPENDENT_SEED_OFFSET = 10_007   # seed shift for an oracle with its own init (oracle_init="independent")


def _start(trained, data, config):
    """The oracle's initial model and its init redraws (see `naive_retrain`)."""
    if config.oracle_init == "same":
        return trained.initial_model(data.name), trained.init_redraws
    return fresh_model(data, config.seed + INDEPENDENT_SEED_OFFSET, trained.device)


def _result(model, rec, redraws, config, train_size) -> UnlearnResult:
    return UnlearnResult("naive_retrain", model, rec,
                         {"oracle_init": config.oracle_init, "init_redraws": redraws, "train_size": train_size})


def _retrain_many(problems) -> list[UnlearnResult]:
    """K oracles at once (`fit_many`), each as `_retrain` would train it."""
    starts = [_start(p.trained, p.data, p.config) for p in problems]
    sets = [p.data.oracle_set(p.forget, p.config.forget_policy) for p in problems]
    first = problems[0]
    recs = fit_many([m for m, _ in starts], [x for x, _ in sets], [y for _, y in sets], first.data.task,
                    first.config.train, seeds=[p.config.seed for p in problems], device=first.trained.device,
                    on_epoch=[p.on_epoch for p in problems])
    return [_result(m, rec, redraws, p.config, len(x))
            for (m, redraws), rec, p, (x, _) in zip(starts, recs, problems, sets, strict=True)]


def _retrain(problem) -> UnlearnResult:
    """One oracle, trained alone (`fit`)."""
    trained, data, config = problem.trained, problem.data, problem.config
    x, y = data.oracle_set(problem.forget, config.forget_policy)
    model, redraws = _start(trained, data, config)
    rec = fit(model, x, y, data.task, config.train, seed=config.seed, device=trained.device, on_epoch=problem.on_epoch)
    return _result(model, rec, redraws, config, len(x))


@register("naive_retrain", paper="retraining from scratch on what remains: the oracle of both papers", batched=True)
def naive_retrain(problems) -> list[UnlearnResult]:
    """Train a fresh model to convergence on what remains (the oracle set).

    With `config.oracle_init == "same"` it starts from the control's initial
    weights and shuffles with the control's seed, so it differs from the
    control only by the data; `independent` draws its own init. One problem
    is trained alone (`fit`), K handed together at once (`fit_many`).
    """
    return [_retrain(problems[0])] if len(problems) == 1 else _retrain_many(problems)
