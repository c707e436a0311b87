"""K models updated by one objective of the method's own, as one batch: the loop the baselines share.

The papers' methods and the oracle train with `train.fit` / `ensemble.fit_many` on one fixed
loss. The baselines of today's unlearning papers (gradient ascent, NegGrad+, ℓ1-sparse, SalUn,
SCRUB) each step on a loss of their own — ascent on the forget set, a retain/forget mix, a
penalty, a distillation — so they share this smaller loop instead: a `Group` of K models of
one architecture whose `forward` maps per-model inputs (K, B, ...) to outputs (K, B, ...).

- Models that stack (`ensemble.stack_reason` finds nothing: the MLPs) run as one stacked
  model, one batched matmul per layer for all K; the others (MNIST's ConvNet) as a list, one
  forward each. Either way the K losses are summed before `backward`, so no gradient mixes
  models, and one elementwise optimizer over all parameters is K independent optimizers.
- `batches` draws each model's own shuffling order from its own seeded generator (`fit`'s
  rule: file order when one batch holds the whole set; from `training.ensemble`); `train_pass`
  (from `training.train`) is the one training pass (zero the gradients, the losses, backward,
  step) that `fit`, `fit_many` and every method here share, with the method's losses as a callback.
- `optimizer` builds the methods' optimizers: `config.make_optimizer`'s three, plus the
  momentum and weight decay the reference implementations use with SGD; `check_optimizer`
  validates those three settings (each method's settings `__post_init__` calls it).
- `forget_sets` / `retain_sets` stack each problem's forget set / retain set (its oracle set)
  on the device; `generators` gives each its own seeded generator; `EpochCalls` calls `on_epoch`
  with written-back weights in eval mode, untimed.
- `Loop` is the K-model loop of the baselines that step on the forget set with one optimizer and
  watch its loss (`gradient_ascent`, `neggrad_plus`); `batch_of` and `describe` serve their settings.

A method written once against a `Group` serves K problems at once (`register(..., batched=True)`)
and, with K = 1, one; each method's `tests/test_method_<name>.py` checks that both give the same
weights within float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..config import OPTIMIZERS, Config, check_choice, check_real, make_optimizer
from ..training import progress
from ..training.ensemble import Stack, batches, per_model_loss, stack_reason
from ..training.models import seeded
from ..training.train import TrainRecord, train_pass
from .base import Problem, UnlearnResult

__all__ = ["EpochCalls", "Group", "Loop", "Timer", "batch_of", "batches", "check_optimizer", "describe",
           "forget_sets", "generators", "optimizer", "per_model_loss", "retain_sets", "rows", "stacked_rows",
           "tally", "train_pass"]
EVAL_ROWS = 1024          # rows per forward pass when `Loop` measures the watched forget loss


class Group:
    """K models of one architecture as one trainable unit (see the module docstring).

    `params`: every trainable tensor (stacked: each with a leading K axis); `model_params(k)`:
    model k's own tensors, in `nn.Module.parameters()` order (views into the stack). Call
    `finish()` when done: it writes stacked weights back into the models and sets eval mode.
    """

    def __init__(self, models: Sequence[nn.Module], device: torch.device):
        self.models = list(models)
        self.device = device
        for m in self.models:
            m.to(device)
        self.stack = Stack.of(self.models, device) if stack_reason(self.models[0]) is None else None
        self.params = (self.stack.params if self.stack is not None
                       else [p for m in self.models for p in m.parameters() if p.requires_grad])

    def __len__(self) -> int:
        return len(self.models)

    def train(self, mode: bool = True) -> Group:
        """Train (dropout on, BatchNorm updating its statistics) or eval mode, for unstacked models;
        stacked models have neither."""
        for m in self.models:
            m.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (K, B, ...) -> outputs (K, B, ...): model k sees x[k]."""
        if self.stack is not None:
            return self.stack.forward(x)
        return torch.stack([m(x[k]) for k, m in enumerate(self.models)])

    def model_params(self, k: int) -> list[torch.Tensor]:
        """Model k's trainable tensors (in the stack: row k of each stacked tensor)."""
        if self.stack is not None:
            return [p[k] for p in self.params]
        return [p for p in self.models[k].parameters() if p.requires_grad]

    def per_model(self, values) -> list[list[torch.Tensor]]:
        """`values` (one tensor per entry of `params`, e.g. their gradients or masks) split by model."""
        values = list(values)
        if self.stack is not None:
            return [[v[k] for v in values] for k in range(len(self))]
        sizes = [len([p for p in m.parameters() if p.requires_grad]) for m in self.models]
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        return [values[s:s + n] for s, n in zip(starts, sizes, strict=True)]

    def l1(self) -> torch.Tensor:
        """‖θ_k‖₁ of each model (K,), differentiable."""
        return torch.stack([sum(p.abs().sum() for p in self.model_params(k)) for k in range(len(self))])

    def finish(self) -> list[nn.Module]:
        """Write the stacked weights back into the models; every model in eval mode. Returns the models."""
        if self.stack is not None:
            self.stack.write_back(self.models, range(len(self)))
        for m in self.models:
            m.eval()
        return self.models


def check_optimizer(name: str, momentum: float, weight_decay: float, *, momentum_off_sgd: bool = False) -> None:
    """The optimizer settings the methods share, each a ValueError naming the value: `name` one of
    `config.OPTIMIZERS`, `momentum` in [0, 1), `weight_decay` >= 0, and momentum only with SGD unless
    `momentum_off_sgd` (a method that ignores its momentum under other optimizers, as SCRUB does)."""
    check_choice("optimizer", name, OPTIMIZERS)
    check_real("momentum", momentum, 0.0, 1.0, high_open=True)
    check_real("weight_decay", weight_decay, 0.0)
    if momentum and name != "sgd" and not momentum_off_sgd:
        raise ValueError(f"momentum={momentum!r} is an SGD setting; optimizer {name!r} takes momentum=0")


def optimizer(name: str, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    """`name` (`config.OPTIMIZERS`) over `params` at `lr`, with SGD's `momentum` and any optimizer's
    (coupled, L2) `weight_decay`; torch's defaults for everything else."""
    check_optimizer(name, momentum, weight_decay)
    if not momentum and not weight_decay:
        return make_optimizer(name, params, lr)
    extra = {"momentum": momentum} if name == "sgd" else {}
    return OPTIMIZERS[name](list(params), lr=lr, weight_decay=weight_decay, **extra)


def rows(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """Rows `idx` (K, B) of per-model sets x (K, n, ...); all of x where idx is None."""
    if idx is None:
        return x
    k = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[k, idx]


def stacked_rows(x: torch.Tensor, indices: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Per-model sets (K, n, ...) from one tensor `x` and each model's row indices (all of one length)."""
    return torch.stack([x[i] for i in indices]).to(device)


def forget_sets(problems: Sequence[Problem], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each problem's forget set (rows `forget` of its data's training set), stacked on `device`:
    inputs (K, n_f, ...), targets (K, n_f). The K forget sets have one size."""
    return (torch.stack([p.data.x_train[p.forget] for p in problems]).to(device),
            torch.stack([p.data.y_train[p.forget] for p in problems]).to(device))


def retain_sets(problems: Sequence[Problem], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each problem's retain set (its oracle set under its config's forget policy, `Data.oracle_set`), stacked
    on `device`: inputs (K, n, ...), targets (K, n)."""
    sets = [p.data.oracle_set(p.forget, p.config.forget_policy) for p in problems]
    return torch.stack([x for x, _ in sets]).to(device), torch.stack([y for _, y in sets]).to(device)


def generators(problems: Sequence[Problem]) -> list[torch.Generator]:
    """Each problem's own shuffling generator, seeded with its config's seed (`train.fit`'s rule)."""
    return [torch.Generator().manual_seed(p.config.seed) for p in problems]


class Timer:
    """Seconds of the timed part of a run, for the `TrainRecord` of each of the K models
    (`batch_seconds` the whole batch, `seconds` each model's amortised share)."""

    def __init__(self):
        self.t0 = time.perf_counter()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """What runs inside is not timed (its seconds move the start on); do not nest."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.t0 += time.perf_counter() - t0

    def records(self, recs: Sequence[TrainRecord]) -> list[TrainRecord]:
        seconds = time.perf_counter() - self.t0
        for rec in recs:
            rec.batch_models, rec.batch_seconds, rec.seconds = len(recs), seconds, seconds / len(recs)
        return list(recs)


def tally(recs: Sequence[TrainRecord], steps: int, samples: int) -> None:
    """Count one epoch of `steps` optimizer steps over `samples` rows in each model's record."""
    for rec in recs:
        rec.epochs, rec.steps, rec.samples = rec.epochs + 1, rec.steps + steps, rec.samples + samples


class EpochCalls:
    """`on_epoch[k](epoch, model k)` for the models that have one, with current weights (written back
    from the stack) in eval mode, untimed (`timer.paused`); the group is back in train mode after."""

    def __init__(self, group: Group, on_epoch, timer: Timer):
        self.group, self.on_epoch, self.timer = group, list(on_epoch or [None] * len(group)), timer

    def __call__(self, epoch: int) -> None:
        if not any(self.on_epoch):
            return
        g = self.group
        with self.timer.paused():
            if g.stack is not None:
                g.stack.write_back(g.models, range(len(g)))
            for fn, model in zip(self.on_epoch, g.models, strict=True):
                if fn is not None:
                    model.eval()
                    fn(epoch, model)
            g.train()


def batch_of(settings, config: Config, field: str = "batch_size") -> int | None:
    """The settings' batch size `field`, or the training's where they give None (None: full batch)."""
    size = getattr(settings, field)
    return size if size is not None else config.train.batch_size


def describe(s, batch_size: int | None) -> str:
    """The optimizer part of a record's `rule`, from settings with epochs, optimizer, lr, momentum, weight_decay."""
    return (f"{s.epochs} epochs of {s.optimizer} (lr {s.lr:g}, momentum {s.momentum:g}, weight decay "
            f"{s.weight_decay:g}, batch {batch_size or 'full'})")


class Loop:
    """K problems of a baseline that steps on its forget set and watches its loss, as one `Group`: copies
    of the trained models, one optimizer (`settings`' optimizer, lr, momentum, weight_decay), each model's
    own shuffling generator, its forget set (`xf`, `yf`: (K, n_f, ...)), records. Used by
    `gradient_ascent` and `neggrad_plus`."""

    def __init__(self, problems: Sequence[Problem], settings, rule: str):
        first = problems[0]
        self.device = first.trained.device
        self.group = Group([p.trained.copy_model() for p in problems], self.device)
        self.opt = optimizer(settings.optimizer, self.group.params, settings.lr, settings.momentum,
                             settings.weight_decay)
        self.gens = generators(problems)
        self.task, self.seed = first.data.task, first.config.seed
        # one batch size for the forget set (gradient ascent); NegGrad+ reads its two itself (`batch_of`)
        self.batch_size = batch_of(settings, first.config) if hasattr(settings, "batch_size") else None
        self.xf, self.yf = forget_sets(problems, self.device)
        self.on_epoch = [p.on_epoch for p in problems]
        self.recs = [TrainRecord(epochs=settings.epochs, rule=rule, converged=None) for _ in problems]

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each model's mean loss on its own batch (K,), differentiable."""
        return per_model_loss(self.task, self.group.forward(x), y)

    def train(self, batches: Iterable, objective: Callable[[Any], tuple[torch.Tensor, int]]) -> None:
        """One pass (`train_pass`): per batch, one optimizer step down the summed per-model objective
        (K,) that `objective(batch)` returns with the number of rows it used (counted in the records)."""

        def losses(batch) -> torch.Tensor:
            values, samples = objective(batch)
            for rec in self.recs:
                rec.steps += 1
                rec.samples += samples
            return values

        train_pass(self.opt, batches, losses)

    @torch.no_grad()
    def forget_loss(self) -> list[float]:
        """Each model's mean loss on its whole forget set, in eval mode (no dropout, BatchNorm's running stats)."""
        self.group.train(False)
        n = self.xf.shape[1]
        total = torch.zeros(len(self.group), dtype=torch.float64, device=self.device)
        for i in range(0, n, EVAL_ROWS):
            xb, yb = self.xf[:, i:i + EVAL_ROWS], self.yf[:, i:i + EVAL_ROWS]
            total += self.losses(xb, yb).double() * xb.shape[1]
        self.group.train()
        return (total / n).tolist()

    def observe(self, epoch: int, timer: Timer, calls: EpochCalls) -> None:
        """Record the watched forget loss (untimed), then the `on_epoch` calls."""
        with timer.paused():
            for rec, loss in zip(self.recs, self.forget_loss(), strict=True):
                if epoch == 0:
                    rec.initial_loss = loss
                else:
                    rec.loss_history.append(loss)
        calls(epoch)

    def run(self, name: str, epochs: int, epoch: Callable[[], None]) -> list[UnlearnResult]:
        """`epochs` calls of `epoch()` in train mode under the first seed's RNG; one result per model."""
        with seeded(self.seed, self.device), progress.bar(epochs, "epoch") as shown:
            timer = Timer()
            calls = EpochCalls(self.group, self.on_epoch, timer)
            self.group.train()
            self.observe(0, timer, calls)
            for e in range(1, epochs + 1):
                epoch()
                self.observe(e, timer, calls)
                shown.update()
            timer.records(self.recs)
        models = self.group.finish()
        return [UnlearnResult(name, m, rec, {}) for m, rec in zip(models, self.recs, strict=True)]
