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
  rule: file order when one batch holds the whole set).
- `optimizer` builds the methods' optimizers: `config.make_optimizer`'s three, plus the
  momentum and weight decay the reference implementations use with SGD.

A method written once against a `Group` is its own batched form (`Method.many`) and, with
K = 1, its single-model form; `tests/test_baselines.py` checks that both give the same
weights within float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ..config import OPTIMIZERS, check_choice, check_real, make_optimizer
from ..ensemble import Stack, per_model_loss, stack_reason
from ..train import TrainRecord

__all__ = ["Group", "batches", "optimizer", "per_model_loss", "rows", "stacked_rows"]


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


def optimizer(name: str, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    """`name` (`config.OPTIMIZERS`) over `params` at `lr`, with SGD's `momentum` and any optimizer's
    (coupled, L2) `weight_decay`; torch's defaults for everything else."""
    check_choice("optimizer", name, OPTIMIZERS)
    check_real("momentum", momentum, 0.0, 1.0, high_open=True)
    check_real("weight_decay", weight_decay, 0.0)
    if momentum and name != "sgd":
        raise ValueError(f"momentum={momentum!r} is an SGD setting; optimizer {name!r} takes momentum=0")
    if not momentum and not weight_decay:
        return make_optimizer(name, params, lr)
    extra = {"momentum": momentum} if name == "sgd" else {}
    return OPTIMIZERS[name](list(params), lr=lr, weight_decay=weight_decay, **extra)


def batches(n: int, batch_size: int | None, gens: Sequence[torch.Generator],
            device: torch.device) -> Iterator[torch.Tensor | None]:
    """One epoch of row indices (K, B) per batch, each model's order from its own generator;
    a single None when one batch holds all `n` rows (file order, as `train.fit` does)."""
    bs = n if batch_size is None else min(batch_size, n)
    if bs >= n:
        yield None
        return
    perm = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
    for i in range(0, n, bs):
        yield perm[:, i:i + bs]


def rows(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """Rows `idx` (K, B) of per-model sets x (K, n, ...); all of x where idx is None."""
    if idx is None:
        return x
    k = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[k, idx]


def stacked_rows(x: torch.Tensor, indices: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Per-model sets (K, n, ...) from one tensor `x` and each model's row indices (all of one length)."""
    return torch.stack([x[i] for i in indices]).to(device)


class Timer:
    """Seconds of the timed part of a run, for the `TrainRecord` of each of the K models
    (`batch_seconds` the whole batch, `seconds` each model's amortised share)."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def records(self, recs: Sequence[TrainRecord]) -> list[TrainRecord]:
        seconds = time.perf_counter() - self.t0
        for rec in recs:
            rec.batch_models, rec.batch_seconds, rec.seconds = len(recs), seconds, seconds / len(recs)
        return list(recs)
