"""NegGrad+: descend the retain loss while ascending the forget loss, `α·L(retain) − (1 − α)·L(forget)`.

Kurmanji et al. 2023 ("Towards Unbounded Machine Unlearning", NeurIPS) define NegGrad+ as the
stronger NegGrad baseline: each step pairs a retain batch with a forget batch and minimises
α·L(retain) − (1 − α)·L(forget), so the ascent on the forget set is held back by fitting the rest.
The reference is meghdadk/SCRUB: `negative_grad` / `run_neggrad_epoch` in `small_scale_unlearning.ipynb`
(one epoch = `zip(retain_loader, cycle(forget_loader))`, plain SGD) and `train_negrad` in
`thirdparty/repdistiller/helper/loops.py` (the large-scale notebooks' loop).

It applies to every task: L is the training loss (`ensemble.per_model_loss`), cross-entropy, BCE on
one logit or MSE. The retain set is what the oracle trains on (`Data.oracle_set` under the config's
forget policy: the remaining points, or with `replace` the replacements in the removed points' place).

What the reference gets wrong, and what this does instead:
- **BatchNorm frozen.** `run_neggrad_epoch` calls `model.eval()` before stepping, so BatchNorm uses
  and never updates its running statistics and dropout is off: the model is trained in a mode it was
  never trained in. (`loops.py`'s `train_negrad` calls `model.train()`.) Here every step runs in train
  mode, like the training that made the model: dropout on, BatchNorm normalising with the batch's
  statistics and updating its running ones (`tests/test_method_neggrad_plus.py` checks this on an
  `nn.Sequential` with `BatchNorm1d`).
- **Momentum differs between peers.** SCRUB's NegGrad+ steps `torch.optim.SGD(lr, weight_decay=0.0)`:
  momentum 0. OPTML-Group's GA (`gradient_ascent` here) uses 0.9 with weight decay 5e-4. Each
  baseline keeps its own reference's values, so each is the method its authors ran (the NegGrad+ of
  the papers that cite SCRUB is SCRUB's): here momentum 0, weight decay 0. Both are settings.

Choices where the reference is silent or does not fit our scale:
- The small-scale notebook adds `α·(wd/2)·‖θ − θ₀‖²` (θ₀ the model at the start of unlearning,
  `l2_penalty`, `args.weight_decay`) inside the retain term; `train_negrad` and the paper's formula do
  not. This follows the formula (no penalty).
- Batches: the notebook's retain loader uses the training's `args.batch_size` and the forget loader
  `args.forget_bs = 64`. At our scale (forget sets of 1 to a few hundred points, training batches of
  32 or 64) both default to the training's batch size (`config.train.batch_size`; full batch on the
  synthetic set), one `batch_size` setting.
- The forget set cycles within an epoch and reshuffles at each pass through it (`itertools.cycle`,
  as the reference uses it, replays its first pass's batches instead); like the reference, the cycle
  restarts with each epoch. An epoch is one pass over the retain set (the reference's `zip`).
- Records: `epochs` = passes over the retain set, `samples` = retain plus forget rows; the watched
  loss (`initial_loss`, `loss_history`) is the forget set's mean loss in eval mode, the quantity the
  ascent raises (untimed, like `on_epoch`). `converged` is None (a fixed schedule).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..config import check_int, check_real
from .base import UnlearnResult, register
from .group import Loop, batch_of, batches, check_optimizer, describe, retain_sets, rows
from .space import Int, Real, Space

PAPER = ("NegGrad+ (Kurmanji et al. 2023, Towards Unbounded Machine Unlearning, NeurIPS; reference: meghdadk/SCRUB "
         "negative_grad)")


@dataclass(frozen=True)
class NegGradPlusConfig:
    """NegGrad+'s settings; defaults from meghdadk/SCRUB (see the module docstring)."""

    alpha: float = 0.95          # SCRUB small_scale_unlearning.ipynb: args.ng_alpha = 0.95 (large-scale: 0.9999)
    lr: float = 0.01             # ibid.: args.ng_lr = 0.01
    epochs: int = 10             # ibid.: args.ng_epochs = 10
    EPOCH_CAPPED = ("epochs",)       # not a field: what a profile's epoch cap bounds (Config.with_epoch_cap)
    optimizer: str = "sgd"       # ibid., negative_grad: torch.optim.SGD(model.parameters(), lr=lr, weight_decay=0.0)
    momentum: float = 0.0        # ibid.: no momentum given, torch's default 0
    weight_decay: float = 0.0    # ibid.: weight_decay=0.0
    batch_size: int | None = None  # None: the training's batch size (the notebook's retain loader: args.batch_size)

    def __post_init__(self):
        check_real("alpha", self.alpha, 0.0, 1.0)
        check_real("lr", self.lr, 0.0, low_open=True)
        check_int("epochs", self.epochs, 1)
        check_optimizer(self.optimizer, self.momentum, self.weight_decay)
        check_int("batch_size", self.batch_size, 1, none="the training's batch size")


def paired_batches(n_retain: int, n_forget: int, batch_size: int | None, gens: Sequence[torch.Generator],
                   device: torch.device) -> Iterator[tuple[torch.Tensor | None, torch.Tensor | None]]:
    """One epoch: each retain batch (K, B) of indices with the next batch of a cycle through the forget
    set, reshuffled at each pass (`group.batches`' rule for both: None where one batch holds the set)."""
    forget = batches(n_forget, batch_size, gens, device)
    for r in batches(n_retain, batch_size, gens, device):
        f = next(forget, False)
        if f is False:
            forget = batches(n_forget, batch_size, gens, device)
            f = next(forget)
        yield r, f


@register("neggrad_plus", settings=NegGradPlusConfig, paper=PAPER,
          search=Space({"lr": Real(1e-4, 1e-1), "epochs": Int(1, 15), "alpha": Real(0.5, 0.9999, log=False)}),
          batched=True)
def neggrad_plus(problems) -> list[UnlearnResult]:
    """Descend the retain loss and ascend the forget loss together, α·L(retain) − (1 − α)·L(forget) (NegGrad+).

    The K problems run as one batch (stacked models where they stack).
    """
    s = problems[0].config.method_settings("neggrad_plus")
    rule = (f"NegGrad+ ({s.alpha:g}·retain loss − {1 - s.alpha:g}·forget loss): "
            f"{describe(s, batch_of(s, problems[0].config))}")
    loop = Loop(problems, s, rule)
    xr, yr = retain_sets(problems, loop.device)

    def objective(pair):
        ri, fi = pair
        xb, yb, xfb, yfb = rows(xr, ri), rows(yr, ri), rows(loop.xf, fi), rows(loop.yf, fi)
        return s.alpha * loop.losses(xb, yb) - (1 - s.alpha) * loop.losses(xfb, yfb), xb.shape[1] + xfb.shape[1]

    def epoch() -> None:
        loop.train(paired_batches(xr.shape[1], loop.xf.shape[1], loop.batch_size, loop.gens, loop.device), objective)

    return loop.run("neggrad_plus", s.epochs, epoch)
