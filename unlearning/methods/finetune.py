"""Warm-start fine-tuning: the ablation that separates pruning's effect from starting warm."""

from __future__ import annotations

from ..ensemble import fit_many
from ..train import fit
from .base import UnlearnResult, register


def warm_finetune(model, data, forget, config, on_epoch=None):
    """Fine-tune `model` in place on the oracle set with `config.finetune_train` (fresh optimizer)."""
    x, y = data.oracle_set(forget, config.forget_policy)
    return fit(model, x, y, data.task, config.finetune_train, seed=config.seed,
               device=next(model.parameters()).device, on_epoch=on_epoch)


def warm_finetune_many(models, datas, forgets, configs, on_epoch):
    """`warm_finetune` of K models at once (`fit_many`), each on its own oracle set and seed."""
    sets = [d.oracle_set(f, c.forget_policy) for d, f, c in zip(datas, forgets, configs, strict=True)]
    return fit_many(models, [x for x, _ in sets], [y for _, y in sets], datas[0].task, configs[0].finetune_train,
                    seeds=[c.seed for c in configs], device=next(models[0].parameters()).device, on_epoch=on_epoch)


def finetune_many(trained, datas, forgets, configs, on_epoch) -> list[UnlearnResult]:
    """K `finetune`s at once."""
    models = [t.copy_model() for t in trained]
    recs = warm_finetune_many(models, datas, forgets, configs, on_epoch)
    return [UnlearnResult("finetune", m, rec, {}) for m, rec in zip(models, recs, strict=True)]


@register("finetune", paper="ablation (ours): weight pruning without the pruning step", many=finetune_many)
def finetune(trained, data, forget, config, on_epoch=None) -> UnlearnResult:
    """Fine-tune the trained model, unpruned, to convergence on the oracle set.

    Same rule, optimizer and data as weight pruning's fine-tune: the
    difference between the two is what pruning itself does.
    """
    model = trained.copy_model()
    rec = warm_finetune(model, data, forget, config, on_epoch)
    return UnlearnResult("finetune", model, rec, {})
