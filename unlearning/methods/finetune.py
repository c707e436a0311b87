"""Warm-start fine-tuning: the ablation that separates pruning's effect from starting warm."""

from __future__ import annotations

from ..train import fit
from .base import UnlearnResult, register


def warm_finetune(model, data, forget, config, on_epoch=None):
    """Fine-tune `model` in place on the oracle set with `config.finetune_train` (fresh optimizer)."""
    x, y = data.oracle_set(forget, config.forget_policy)
    return fit(model, x, y, data.task, config.finetune_train, seed=config.seed,
               device=next(model.parameters()).device, on_epoch=on_epoch)


@register("finetune", paper="ablation (ours): weight pruning without the pruning step")
def finetune(trained, data, forget, config, on_epoch=None) -> UnlearnResult:
    """Fine-tune the trained model, unpruned, to convergence on the oracle set.

    Same rule, optimizer and data as weight pruning's fine-tune: the
    difference between the two is what pruning itself does.
    """
    model = trained.copy_model()
    rec = warm_finetune(model, data, forget, config, on_epoch)
    return UnlearnResult("finetune", model, rec, {})
