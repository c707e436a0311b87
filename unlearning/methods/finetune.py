"""Warm-start fine-tuning: the ablation that separates pruning's effect from starting warm."""

from __future__ import annotations

import dataclasses

from ..config import Convergence
from ..training.ensemble import fit_many
from ..training.train import fit
from .base import UnlearnResult, register
from .space import Int, Real, Space


def warm_finetune(model, data, forget, config, on_epoch=None):
    """Fine-tune `model` in place on the oracle set with `config.finetune_train` (fresh optimizer)."""
    x, y = data.oracle_set(forget, config.forget_policy)
    return fit(model, x, y, data.task, config.finetune_train, seed=config.seed,
               device=next(model.parameters()).device, on_epoch=on_epoch)


def warm_finetune_many(models, problems):
    """`warm_finetune` of K models at once (`fit_many`), model k on problem k's oracle set and seed."""
    sets = [p.data.oracle_set(p.forget, p.config.forget_policy) for p in problems]
    first = problems[0]
    return fit_many(models, [x for x, _ in sets], [y for _, y in sets], first.data.task, first.config.finetune_train,
                    seeds=[p.config.seed for p in problems], device=next(models[0].parameters()).device,
                    on_epoch=[p.on_epoch for p in problems])


def _fixed(config, method, values):
    """A point of the search: `epochs` fixed epochs at `lr_scale` times the preset's fine-tune lr."""
    ft = config.finetune_train
    return dataclasses.replace(config, finetune=dataclasses.replace(
        ft, lr=ft.lr * values["lr_scale"], convergence=Convergence("fixed_epochs", 0.0, values["epochs"])))


def _preset_point(config, method, names):
    ft = config.finetune_train
    return {"lr_scale": 1.0, "epochs": ft.convergence.max_epochs} if ft.convergence.rule == "fixed_epochs" else None


# A warm model already meets its preset's `loss_below` rule (digits: 0 epochs), so the search fine-tunes for a
# fixed number of epochs instead, at a multiple of the preset's lr (its optimizer and batch kept).
SEARCH = Space({"lr_scale": Real(1e-3, 10.0), "epochs": Int(1, 20)}, apply=_fixed, preset=_preset_point,
               note="fixed epochs at lr_scale x the preset fine-tune lr (the preset's optimizer and batch size)")


@register("finetune", paper="ablation (ours): weight pruning without the pruning step", search=SEARCH, batched=True)
def finetune(problems) -> list[UnlearnResult]:
    """Fine-tune the trained model, unpruned, to convergence on the oracle set.

    Same rule, optimizer and data as weight pruning's fine-tune: the
    difference between the two is what pruning itself does.
    """
    models = [p.trained.copy_model() for p in problems]
    if len(problems) == 1:                      # alone: `fit`; K at once (`unlearn_many` batches them): `fit_many`
        recs = [warm_finetune(models[0], p.data, p.forget, p.config, p.on_epoch) for p in problems]
    else:
        recs = warm_finetune_many(models, problems)
    return [UnlearnResult("finetune", m, rec, {}) for m, rec in zip(models, recs, strict=True)]
