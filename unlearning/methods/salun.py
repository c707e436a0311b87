"""SalUn: random relabeling of the forget set restricted to the weights its loss is most sensitive to.

Fan, Liu, Zhang, Wong, Wei, Liu: "SalUn: Empowering Machine Unlearning via Gradient-based Weight
Saliency in Both Image Classification and Generation" (ICLR 2024). Reference implementation:
OPTML-Group/Unlearn-Saliency, `Classification/generate_mask.py` (the saliency map) and
`Classification/unlearn/RL.py` (random labeling under the mask), run with the README's CIFAR-10
command `main_random.py --unlearn RL --unlearn_epochs 10 --unlearn_lr 0.013 --mask_path mask/with_0.5.pt`.

1. Saliency: s = |∇θ ℓ(θ; D_f)|, the gradient of the forget set's loss (true labels) at the
   trained weights, in eval mode (as `generate_mask.py` computes it since its "Fix mask" commit).
2. Mask: the `share` (default 0.5) of entries with the LARGEST saliency, ranked globally over
   every trainable tensor of the model (weights and biases together, as `generate_mask.py`
   concatenates them all), not per layer: a layer may keep most of its weights or none.
   Exactly floor(share · N) entries (at least one) of the model's N are kept.
3. Unlearning: each epoch, every forget point gets one fresh random label and the forget
   batches are stepped on first, then the retain batches on their true labels (`RL.py`'s
   CIFAR-10 branch), SGD with momentum 0.9 and weight decay 5e-4 (`unlearn/impl.py`). Only
   masked-in entries may change: the gradient is masked, and after every optimizer step the
   masked-out entries are written back to their trained values, so they stay bit-identical
   whatever the optimizer's momentum or weight decay does.

How it relates to `random_relabel` (paper 002, `unlearning/methods/random_relabel.py`): the same
idea, training the model on the forget points under wrong labels, restricted here by the mask.
The relabeling differs: paper 002 answers each request with one step on the point under every
other label (k − 1 copies, or k′ of them); SalUn gives each forget point ONE label per epoch,
drawn uniformly from all k classes (`torch.randint(0, num_classes)` in `RL.py`, so it keeps
its own label with probability 1/k), for several epochs, interleaved with retain batches that
hold the rest of the model in place; paper 002 never sees the retain set.

Defects of the reference, and what this module does instead (each has a regression test):
- `generate_mask.py` before commit b874ee9 (Dec 2023) ranked the saliency ascending and kept
  the SMALLEST gradients; the fix negates the values before ranking. Here: `torch.topk` of |g|.
- Until commit a6e89fd (Feb 2026, "Fix weight decay") `RL.py` only multiplied the gradient
  by the mask, so SGD's weight decay and momentum still moved masked-out weights. Here: the
  write-back after every step makes them exact.
- Before b874ee9 the mask script also stepped an optimizer while accumulating gradients, so
  later batches' saliency was taken at moved weights. Here: one gradient at the trained weights.

Choices where the reference is silent or does not fit here:
- The saliency is the gradient of the mean loss over the whole forget set (accumulated in
  chunks of `batch_size`, each weighted by its size); the reference sums the means of its
  batches of 256, which weights a smaller last batch more. Scaling does not change the ranking.
- The retain set is the oracle's training set (`Data.oracle_set` under the config's forget policy).
- Batches of 256 (`arg_parser.py --batch_size`), or one batch where a set is smaller.
- Steps run in train mode (dropout on), like the training that made the model.
- Classification only: a regression target has no labels to draw (`MethodNotApplicable`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import check_int, check_real
from ..training.models import seeded
from ..training.train import TrainRecord
from .base import UnlearnResult, register
from .group import (
    EpochCalls,
    Group,
    Timer,
    batches,
    check_optimizer,
    forget_sets,
    generators,
    optimizer,
    per_model_loss,
    retain_sets,
    rows,
    tally,
    train_pass,
)
from .space import Int, Real, Space

PAPER = ("Fan et al.: SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency (ICLR 2024); "
         "reference OPTML-Group/Unlearn-Saliency Classification/generate_mask.py, unlearn/RL.py")


@dataclass(frozen=True)
class SalUnConfig:
    """SalUn (Fan et al. 2024); defaults from OPTML-Group/Unlearn-Saliency, Classification/."""

    share: float = 0.5               # README: --mask_path mask/with_0.5.pt (generate_mask.py threshold_list)
    lr: float = 0.013                # README's CIFAR-10 SalUn command: --unlearn_lr 0.013
    epochs: int = 10                 # README's command and arg_parser.py --unlearn_epochs: 10
    EPOCH_CAPPED = ("epochs",)       # not a field: what a profile's epoch cap bounds (Config.with_epoch_cap)
    batch_size: int | None = 256     # arg_parser.py --batch_size; None: each set in one batch
    optimizer: str = "sgd"           # unlearn/impl.py builds torch.optim.SGD
    momentum: float = 0.9            # arg_parser.py --momentum
    weight_decay: float = 5e-4       # arg_parser.py --weight_decay

    def __post_init__(self):
        check_real("share", self.share, 0.0, 1.0, low_open=True)
        check_real("lr", self.lr, 0.0, low_open=True)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1, none="each set in one batch")
        check_optimizer(self.optimizer, self.momentum, self.weight_decay)


def _applies(data, model) -> str | None:
    if not data.is_classification:
        return f"SalUn relabels the forget set at random and needs class labels; {data.name!r} is a {data.task} task"
    return None


def saliency(group: Group, x: torch.Tensor, y: torch.Tensor, task: str, chunk: int | None) -> list[torch.Tensor]:
    """|∇θ mean loss over (x, y)| of each model (x: (K, n, ...)), one tensor per entry of `group.params`,
    at the current weights in eval mode; the weights are left as they were."""
    n = x.shape[1]
    step = n if chunk is None else min(chunk, n)
    group.train(False)
    total = [torch.zeros_like(p) for p in group.params]
    ones = torch.ones(len(group), device=group.device)
    for i in range(0, n, step):
        xb, yb = x[:, i:i + step], y[:, i:i + step]
        losses = per_model_loss(task, group.forward(xb), yb) * (xb.shape[1] / n)
        for t, g in zip(total, torch.autograd.grad(losses, group.params, ones), strict=True):
            t.add_(g)
    return [t.abs_() for t in total]


def top_share_mask(scores: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """Boolean masks (shaped like `scores`) keeping the floor(share · N) largest of all N entries
    together (at least one): one global ranking over every tensor, not per tensor."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    keep = max(1, int(flat.numel() * share))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    chosen[torch.topk(flat, keep, sorted=False).indices] = True
    out, start = [], 0
    for s in scores:
        out.append(chosen[start:start + s.numel()].reshape(s.shape))
        start += s.numel()
    return out


def group_masks(group: Group, scores: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """Each model's own `top_share_mask` of its scores, laid out like `group.params`."""
    per_model = [top_share_mask(s, share) for s in group.per_model(scores)]
    if group.stack is not None:
        return [torch.stack([m[i] for m in per_model]) for i in range(len(group.params))]
    return [m for ms in per_model for m in ms]


class Masked:
    """Optimizer steps that change masked-in entries only: the gradient is masked before the step
    and masked-out entries are written back to their values at construction after it (exact under
    momentum and weight decay)."""

    def __init__(self, params: list[torch.Tensor], masks: list[torch.Tensor], opt):
        self.params, self.masks, self.opt = params, masks, opt
        self.frozen = [p.detach().clone() for p in params]

    def step(self) -> None:
        with torch.no_grad():
            for p, m in zip(self.params, self.masks, strict=True):
                if p.grad is not None:
                    p.grad.mul_(m)
            self.opt.step()
            for p, m, p0 in zip(self.params, self.masks, self.frozen, strict=True):
                p.copy_(torch.where(m, p, p0))


def _pass(group: Group, masked: Masked, x, y, task: str, batch_size: int | None, gens) -> int:
    """One pass of masked steps over per-model sets (K, n, ...); returns the steps taken."""
    return train_pass(masked.opt, batches(x.shape[1], batch_size, gens, group.device),
                      lambda idx: per_model_loss(task, group.forward(rows(x, idx)), rows(y, idx)), masked.step)


def random_labels(y: torch.Tensor, num_classes: int, gens) -> torch.Tensor:
    """One label per point, uniform over all `num_classes` (`RL.py`'s torch.randint), from each model's generator."""
    drawn = torch.stack([torch.randint(num_classes, y.shape[1:], generator=g) for g in gens])
    return drawn.to(device=y.device, dtype=y.dtype)


# the mask share around the reference's 0.5 (generate_mask.py saves 0.1..1.0); lr from a near no-op (1e-5) past the
# reference's 0.013; epochs to 20; the momentum (the reference's 0.9) from none.
SEARCH = Space({"share": Real(0.05, 1.0, log=False), "lr": Real(1e-5, 1e-1), "epochs": Int(1, 20),
                "momentum": Real(0.0, 0.95, log=False)})


@register("salun", settings=SalUnConfig, paper=PAPER, applies=_applies, search=SEARCH, batched=True)
def salun(problems) -> list[UnlearnResult]:
    """Random relabeling of the forget set (plus retain batches) on the most forget-salient weights only.

    The K problems run at once (one `Group`), each with its own mask, forget and retain sets and seed.
    """
    first = problems[0]
    cfg = first.config.method_settings("salun")
    device, task, k = first.trained.device, first.data.task, first.data.num_classes
    group = Group([p.trained.copy_model() for p in problems], device)
    xf, yf = forget_sets(problems, device)
    xr, yr = retain_sets(problems, device)
    gens = generators(problems)
    rule = (f"SalUn: {cfg.epochs} epochs of {cfg.optimizer} (lr {cfg.lr:g}) on the relabeled forget set, then the "
            f"retain set, the top {cfg.share:g} of weights by forget-loss saliency")
    recs = [TrainRecord(rule=rule, converged=None) for _ in problems]
    timer = Timer()
    calls = EpochCalls(group, [p.on_epoch for p in problems], timer)
    with seeded(first.config.seed, device):
        masks = group_masks(group, saliency(group, xf, yf, task, cfg.batch_size), cfg.share)
        masked = Masked(group.params, masks, optimizer(cfg.optimizer, group.params, cfg.lr, cfg.momentum,
                                                       cfg.weight_decay))
        group.train()
        calls(0)
        for e in range(cfg.epochs):
            steps = _pass(group, masked, xf, random_labels(yf, k, gens), task, cfg.batch_size, gens)
            steps += _pass(group, masked, xr, yr, task, cfg.batch_size, gens)
            tally(recs, steps, xf.shape[1] + xr.shape[1])
            calls(e + 1)
    models = group.finish()
    timer.records(recs)
    kept = [sum(int(m.sum()) for m in ms) for ms in group.per_model(masks)]
    total = sum(p.numel() for p in group.model_params(0))
    return [UnlearnResult("salun", m, rec, {"salun_mask_share": n / total, "salun_updated_weights": n,
                                            "salun_total_weights": total})
            for m, rec, n in zip(models, recs, kept, strict=True)]
