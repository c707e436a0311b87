"""NegGrad: gradient ascent on the training loss of the forget set, for a few epochs.

The baseline every unlearning paper since 2022 reports: push the model *up* the loss it was trained
down, on the points to forget only. Kurmanji et al. 2023 ("Towards Unbounded Machine Unlearning",
NeurIPS) call it NegGrad; the implementation the defaults come from is OPTML-Group/Unlearn-Sparse
(Jia et al. 2023, "Model Sparsity Can Simplify Machine Unlearning", NeurIPS), `unlearn/GA.py`:
`loss = -criterion(model(image), target)` over the forget loader, SGD from `unlearn/impl.py`.

It applies to every task here: the loss ascended is the one the model was trained on (`train.loss_fn`,
`ensemble.per_model_loss`): cross-entropy (multiclass), BCE on one logit (binary), MSE (regression).
For regression, and for cross-entropy too, the ascent is unbounded: nothing but the fixed schedule
stops it, which is why the tuner's score (retain and test utility beside forgetting) matters here.

Choices where the reference is silent or does not fit:
- Batch size: the reference's one `--batch_size` (256, `arg_parser.py`) serves training and
  unlearning alike; here the default (None) is likewise the training's own (`config.train.batch_size`:
  32 on digits and California, 64 on MNIST, full batch on the 10-point synthetic set). A forget set
  no larger than a batch is one step per epoch.
- Learning-rate schedule: `impl.py` wraps the optimizer in `MultiStepLR(milestones=--decreasing_lr
  "91,136")`, which never fires within GA's 5 epochs: a constant rate, as here.
- Steps run in train mode (dropout on, BatchNorm updating its statistics), like the training that
  made the model and like `GA.py`'s `model.train()`.
- Each model shuffles its forget set with its own `torch.Generator` seeded by its config's seed;
  dropout draws from the global RNG under `models.seeded(seed)` (`group` module).
- Records: `epochs` = passes over the forget set; `initial_loss` / `loss_history` = each model's
  mean loss on its whole forget set (eval mode) before the first and after each epoch, the quantity
  ascended (so `final_loss - initial_loss` says how far it climbed); measuring it, and `on_epoch`,
  are not timed. `converged` is None: a fixed schedule, no convergence rule.
- Momentum: Unlearn-Sparse steps GA with `--momentum 0.9` and `--weight_decay 5e-4`
  (`arg_parser.py`, used by `impl.py`'s SGD); SCRUB's NegGrad+ uses plain SGD (momentum 0, no
  weight decay). Each baseline keeps its own reference's values (`neggrad_plus` the latter), so
  each is the method its authors ran; both are settings, and the tuner searches lr and epochs alike.

`Loop` is the K-model loop both ascent baselines share (`neggrad_plus` imports it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .. import progress
from ..config import OPTIMIZERS, Config, check_choice, check_int, check_real
from ..models import seeded
from ..space import Int, Real, Space
from ..train import TrainRecord
from .base import UnlearnResult, register
from .group import Group, Timer, batches, optimizer, per_model_loss, rows

PAPER = ("NegGrad: gradient ascent on the forget set (Kurmanji et al. 2023, Towards Unbounded Machine Unlearning, "
         "NeurIPS; reference: OPTML-Group/Unlearn-Sparse unlearn/GA.py, Jia et al. 2023, Model Sparsity Can "
         "Simplify Machine Unlearning, NeurIPS)")
EVAL_ROWS = 1024          # rows per forward pass when the watched loss is measured


def check_sgd(optimizer_name: str, momentum: float, weight_decay: float) -> None:
    """The optimizer fields both ascent baselines share, each a ValueError naming the value."""
    check_choice("optimizer", optimizer_name, OPTIMIZERS)
    check_real("momentum", momentum, 0.0, 1.0, high_open=True)
    check_real("weight_decay", weight_decay, 0.0)
    if momentum and optimizer_name != "sgd":
        raise ValueError(f"momentum={momentum!r} is an SGD setting; optimizer {optimizer_name!r} takes momentum=0")


@dataclass(frozen=True)
class GradientAscentConfig:
    """NegGrad's settings; defaults from OPTML-Group/Unlearn-Sparse (see the module docstring)."""

    lr: float = 1e-4             # Unlearn-Sparse README, the GA command: --unlearn_lr 0.0001
    epochs: int = 5              # ibid.: --unlearn_epochs 5 (arg_parser.py's --unlearn_epochs 10 is FT's)
    optimizer: str = "sgd"       # unlearn/impl.py: torch.optim.SGD
    momentum: float = 0.9        # arg_parser.py: --momentum 0.9 (passed to impl.py's SGD)
    weight_decay: float = 5e-4   # arg_parser.py: --weight_decay 5e-4 (ibid.)
    batch_size: int | None = None  # None: the training's batch size (the reference shares --batch_size 256)

    def __post_init__(self):
        check_real("lr", self.lr, 0.0, low_open=True)
        check_int("epochs", self.epochs, 1)
        check_sgd(self.optimizer, self.momentum, self.weight_decay)
        check_int("batch_size", self.batch_size, 1, none="the training's batch size")


def stacked_sets(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor],
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model sets of one size as (K, n, ...) inputs and (K, n) targets on `device`."""
    return torch.stack(list(xs)).to(device), torch.stack(list(ys)).to(device)


def batch_of(settings, config: Config) -> int | None:
    """The settings' batch size, or the training's where they give None (None: full batch)."""
    return settings.batch_size if settings.batch_size is not None else config.train.batch_size


def describe(s, batch_size: int | None) -> str:
    """The optimizer part of a record's `rule`."""
    return (f"{s.epochs} epochs of {s.optimizer} (lr {s.lr:g}, momentum {s.momentum:g}, weight decay "
            f"{s.weight_decay:g}, batch {batch_size or 'full'})")


class Loop:
    """K runs of one ascent baseline as one `Group`: copies of the trained models, one optimizer,
    each model's own shuffling generator, its forget set (`xf`, `yf`: (K, n_f, ...)), records."""

    def __init__(self, trained, datas, forgets, configs: Sequence[Config], on_epoch, settings, rule: str):
        self.device = trained[0].device
        self.group = Group([t.copy_model() for t in trained], self.device)
        self.opt = optimizer(settings.optimizer, self.group.params, settings.lr, settings.momentum,
                             settings.weight_decay)
        self.gens = [torch.Generator().manual_seed(c.seed) for c in configs]
        self.task, self.seed = datas[0].task, configs[0].seed
        self.batch_size = batch_of(settings, configs[0])
        self.xf, self.yf = stacked_sets([d.x_train[f] for d, f in zip(datas, forgets, strict=True)],
                                        [d.y_train[f] for d, f in zip(datas, forgets, strict=True)], self.device)
        self.on_epoch = list(on_epoch) if on_epoch is not None else [None] * len(trained)
        self.recs = [TrainRecord(epochs=settings.epochs, rule=rule, converged=None) for _ in trained]

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each model's mean loss on its own batch (K,), differentiable."""
        return per_model_loss(self.task, self.group.forward(x), y)

    def step(self, objective: torch.Tensor, samples: int) -> None:
        """One optimizer step down the summed per-model `objective` (K,): no gradient mixes models."""
        self.opt.zero_grad(set_to_none=True)
        objective.sum().backward()
        self.opt.step()
        for rec in self.recs:
            rec.steps += 1
            rec.samples += samples

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

    def observe(self, epoch: int, timer: Timer) -> None:
        """Record the watched forget loss and call `on_epoch` (current weights, eval mode); untimed."""
        t0 = time.perf_counter()
        for rec, loss in zip(self.recs, self.forget_loss(), strict=True):
            if epoch == 0:
                rec.initial_loss = loss
            else:
                rec.loss_history.append(loss)
        if any(self.on_epoch):
            models = self.group.finish()      # writes stacked weights back; eval mode
            for model, call in zip(models, self.on_epoch, strict=True):
                if call is not None:
                    call(epoch, model)
            self.group.train()
        timer.t0 += time.perf_counter() - t0

    def run(self, name: str, epochs: int, epoch: Callable[[], None]) -> list[UnlearnResult]:
        """`epochs` calls of `epoch()` in train mode under the first seed's RNG; one result per model."""
        with seeded(self.seed, self.device), progress.bar(epochs, "epoch") as shown:
            timer = Timer()
            self.group.train()
            self.observe(0, timer)
            for e in range(1, epochs + 1):
                epoch()
                self.observe(e, timer)
                shown.update()
            timer.records(self.recs)
        models = self.group.finish()
        return [UnlearnResult(name, m, rec, {}) for m, rec in zip(models, self.recs, strict=True)]


def gradient_ascent_many(trained, datas, forgets, configs, on_epoch) -> list[UnlearnResult]:
    """K `gradient_ascent` runs as one batch (stacked models where they stack)."""
    s = configs[0].method_settings("gradient_ascent")
    loop = Loop(trained, datas, forgets, configs, on_epoch, s,
                f"gradient ascent on the forget loss: {describe(s, batch_of(s, configs[0]))}")

    def epoch() -> None:
        for idx in batches(loop.xf.shape[1], loop.batch_size, loop.gens, loop.device):
            xb, yb = rows(loop.xf, idx), rows(loop.yf, idx)
            loop.step(-loop.losses(xb, yb), xb.shape[1])

    return loop.run("gradient_ascent", s.epochs, epoch)


@register("gradient_ascent", settings=GradientAscentConfig, paper=PAPER, many=gradient_ascent_many,
          search=Space({"lr": Real(1e-5, 1e-1), "epochs": Int(1, 10)}))
def gradient_ascent(trained, data, forget, config, on_epoch=None) -> UnlearnResult:
    """Gradient ascent on the forget set's training loss for a few epochs (NegGrad)."""
    return gradient_ascent_many([trained], [data], [forget], [config], [on_epoch])[0]
