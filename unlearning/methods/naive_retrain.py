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


def naive_retrain_many(trained, datas, forgets, configs, on_epoch) -> list[UnlearnResult]:
    """K oracles at once (`fit_many`), each as `naive_retrain` would train it."""
    starts = [_start(t, d, c) for t, d, c in zip(trained, datas, configs, strict=True)]
    sets = [d.oracle_set(f, c.forget_policy) for d, f, c in zip(datas, forgets, configs, strict=True)]
    recs = fit_many([m for m, _ in starts], [x for x, _ in sets], [y for _, y in sets], datas[0].task,
                    configs[0].train, seeds=[c.seed for c in configs], device=trained[0].device, on_epoch=on_epoch)
    return [_result(m, rec, redraws, c, len(x))
            for (m, redraws), rec, c, (x, _) in zip(starts, recs, configs, sets, strict=True)]


@register("naive_retrain", paper="retraining from scratch on what remains: the oracle of both papers",
          many=naive_retrain_many)
def naive_retrain(trained, data, forget, config, on_epoch=None) -> UnlearnResult:
    """Train a fresh model to convergence on what remains (the oracle set).

    With `config.oracle_init == "same"` it starts from the control's initial
    weights and shuffles with the control's seed, so it differs from the
    control only by the data; `independent` draws its own init.
    """
    x, y = data.oracle_set(forget, config.forget_policy)
    model, redraws = _start(trained, data, config)
    rec = fit(model, x, y, data.task, config.train, seed=config.seed, device=trained.device, on_epoch=on_epoch)
    return _result(model, rec, redraws, config, len(x))
