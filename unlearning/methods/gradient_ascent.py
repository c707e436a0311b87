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

The K-model loop both ascent baselines share is `group.Loop` (with `group.batch_of`, `group.describe`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check_int, check_real
from .base import UnlearnResult, register
from .group import Loop, batch_of, batches, check_optimizer, describe, rows
from .space import Int, Real, Space, read_fields

PAPER = ("NegGrad: gradient ascent on the forget set (Kurmanji et al. 2023, Towards Unbounded Machine Unlearning, "
         "NeurIPS; reference: OPTML-Group/Unlearn-Sparse unlearn/GA.py, Jia et al. 2023, Model Sparsity Can "
         "Simplify Machine Unlearning, NeurIPS)")


@dataclass(frozen=True)
class GradientAscentConfig:
    """NegGrad's settings; defaults from OPTML-Group/Unlearn-Sparse (see the module docstring)."""

    lr: float = 1e-4             # Unlearn-Sparse README, the GA command: --unlearn_lr 0.0001
    epochs: int = 5              # ibid.: --unlearn_epochs 5 (arg_parser.py's --unlearn_epochs 10 is FT's)
    EPOCH_CAPPED = ("epochs",)       # not a field: what a profile's epoch cap bounds (Config.with_epoch_cap)
    optimizer: str = "sgd"       # unlearn/impl.py: torch.optim.SGD
    momentum: float = 0.9        # arg_parser.py: --momentum 0.9 (passed to impl.py's SGD)
    weight_decay: float = 5e-4   # arg_parser.py: --weight_decay 5e-4 (ibid.)
    batch_size: int | None = None  # None: the training's batch size (the reference shares --batch_size 256)

    def __post_init__(self):
        check_real("lr", self.lr, 0.0, low_open=True)
        check_int("epochs", self.epochs, 1)
        check_optimizer(self.optimizer, self.momentum, self.weight_decay)
        check_int("batch_size", self.batch_size, 1, none="the training's batch size")


def _preset_point(config, method: str, names: tuple) -> dict:
    """The preset's knobs, its batch (None: the training's) read as the batch it runs at."""
    point = read_fields(config, method, names)
    if point.get("batch_size") is None:
        point["batch_size"] = config.train.batch_size
    return point


# lr from the preset's 1e-4 down to a near no-op and up to 0.1; the batch (the reference's 256 is the training's) from
# 8 to 256: at n = 100 a small batch takes many more ascent steps per epoch than a large one.
SEARCH = Space({"lr": Real(1e-6, 1e-1), "epochs": Int(1, 10), "batch_size": Int(8, 256, log=True)},
               preset=_preset_point)


@register("gradient_ascent", settings=GradientAscentConfig, paper=PAPER, search=SEARCH, batched=True)
def gradient_ascent(problems) -> list[UnlearnResult]:
    """Gradient ascent on the forget set's training loss for a few epochs (NegGrad).

    The K problems run as one batch (stacked models where they stack).
    """
    s = problems[0].config.method_settings("gradient_ascent")
    loop = Loop(problems, s, f"gradient ascent on the forget loss: {describe(s, batch_of(s, problems[0].config))}")

    def ascent(idx):
        xb, yb = rows(loop.xf, idx), rows(loop.yf, idx)
        return -loop.losses(xb, yb), xb.shape[1]

    def epoch() -> None:
        loop.train(batches(loop.xf.shape[1], loop.batch_size, loop.gens, loop.device), ascent)

    return loop.run("gradient_ascent", s.epochs, epoch)
