"""Naive retraining: the oracle `m_o` every other method is measured against."""

from __future__ import annotations

from ..train import fit, fresh_model
from .base import UnlearnResult, register

INDEPENDENT_SEED_OFFSET = 10_007   # seed shift for an oracle with its own init (oracle_init="independent")


@register("naive_retrain", paper="retraining from scratch on what remains: the oracle of both papers")
def naive_retrain(trained, data, forget, config, on_epoch=None) -> UnlearnResult:
    """Train a fresh model to convergence on what remains (the oracle set).

    With `config.oracle_init == "same"` it starts from the control's initial
    weights and shuffles with the control's seed, so it differs from the
    control only by the data; `independent` draws its own init.
    """
    x, y = data.oracle_set(forget, config.forget_policy)
    if config.oracle_init == "same":
        model, redraws = trained.initial_model(data.name), trained.init_redraws
    else:
        model, redraws = fresh_model(data, config.seed + INDEPENDENT_SEED_OFFSET, trained.device)
    rec = fit(model, x, y, data.task, config.train, seed=config.seed, device=trained.device, on_epoch=on_epoch)
    return UnlearnResult("naive_retrain", model, rec,
                         {"oracle_init": config.oracle_init, "init_redraws": redraws, "train_size": len(x)})
