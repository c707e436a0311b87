"""Every setting an experiment depends on, in one place, with the papers' presets.

Where a paper leaves a choice open, the choice is a field here with a comment
saying why, and every result records the config it came from
(`Config.as_dict()`). The presets (`PRESETS`, `get_config`) reproduce the
papers' setups; `dataclasses.replace` or `get_config(..., **overrides)` changes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from .data.base import FORGET_POLICIES

OPTIMIZERS = {"adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta, "sgd": torch.optim.SGD}
CONVERGENCE_RULES = ("loss_below", "fixed_epochs")
DELTA_ON = ("input", "output")
SET_RULES = ("union", "sequential")
ORACLE_INITS = ("same", "independent")


def _check_choice(what: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


# Optimizers built with torch's fused kernel (same update rule, one kernel per step
# instead of one per tensor). Measured on the 2-core CPU: Adam 0.50 -> 0.34 ms per
# California step and 15.5 -> 9.6 ms per MNIST relabel step; SGD gains nothing
# (0.32 -> 0.31 ms) and AdaDelta has no fused kernel. Results match the unfused
# update to float rounding, not bit for bit.
FUSED = ("adam",)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """Build a torch optimizer by name (`adam`, `adadelta`, `sgd`) with torch's defaults besides `lr`.

    Optimizers in `FUSED` use torch's fused kernel where the parameters' device
    has one, else the default implementation.
    """
    _check_choice("optimizer", name, OPTIMIZERS)
    cls = OPTIMIZERS[name]
    if name in FUSED:
        params = list(params)
        try:
            return cls(params, lr=lr, fused=True)
        except RuntimeError:     # no fused kernel for this device or dtype
            pass
    return cls(params, lr=lr)


@dataclass(frozen=True)
class Convergence:
    """When a training run stops.

    `loss_below`: after every epoch the loss on the *whole* training set (eval
    mode, no dropout) is measured; the run has converged when it is below
    `threshold`. It is also checked before the first epoch, so a warm start that
    already satisfies it costs 0 epochs. Paper 000 trains "until convergence"
    and quotes a convergence threshold of 0.015 for California: a loss level is
    the reading that makes that number meaningful. `fixed_epochs`: exactly
    `max_epochs` epochs (the PyTorch MNIST example paper 002 builds on).
    Either way the run stops at `max_epochs`; a run stopped there without
    meeting `loss_below` is recorded as `hit_cap`, never dropped.
    """

    rule: str = "loss_below"
    threshold: float = 0.05
    max_epochs: int = 2000

    def __post_init__(self):
        _check_choice("convergence rule", self.rule, CONVERGENCE_RULES)
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs={self.max_epochs}: must be >= 1")

    def describe(self) -> str:
        if self.rule == "fixed_epochs":
            return f"fixed {self.max_epochs} epochs"
        return f"train loss < {self.threshold:g} (cap {self.max_epochs} epochs)"


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the original model, the oracle, and every fine-tune."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int | None = None          # None: full batch
    convergence: Convergence = field(default_factory=Convergence)
    lr_decay: float | None = None          # multiply lr by this after every epoch (StepLR(1, gamma))

    def __post_init__(self):
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr}: must be > 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: must be >= 1 or None (full batch)")


@dataclass(frozen=True)
class PruningConfig:
    """Paper 000, Algorithm 1.

    `delta_on`: the text writes `|Δ_j w_ij|` with `W ∈ R^{m×d}`, so `j` indexes
    the layer's *input*; `Δ` is then the difference of the previous layer's
    activations (the space the neighbours are searched in). That dimensionally
    consistent reading is the default; `output` uses the difference of the
    layer's own (activated) outputs, `|Δ_i w_ij|`, the literal reading of
    `A^(ℓ) = a^[1] ∘ … ∘ a^[ℓ]`.
    `set_rule`: the paper removes one point. `union` (default) computes every
    forget point's mask on the trained model, zeroes the union, resets the
    biases once and fine-tunes once; `sequential` prunes point after point,
    each on the model the previous one left, then fine-tunes once.
    `n_neighbors`: not stated in the paper; see the presets.
    """

    thresholds: tuple[float, ...] = (9.0, 9.0)
    n_neighbors: int = 3
    delta_on: str = "input"
    set_rule: str = "union"
    bias_value: float = 0.01               # "b ← 0.01" for every layer

    def __post_init__(self):
        _check_choice("delta_on", self.delta_on, DELTA_ON)
        _check_choice("set rule", self.set_rule, SET_RULES)
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors={self.n_neighbors}: must be >= 1")


@dataclass(frozen=True)
class RelabelConfig:
    """Paper 002, section 3 and "Online Unlearning Configuration".

    Each removal request is one optimizer step on one mini-batch holding the
    point under each of the other k−1 labels (or `k_prime` of them drawn at
    random). The unlearning optimizer is separate from the training one: its
    state is fresh at the start of a removal stream and carried across the
    requests of that stream. Default: AdaDelta (Table 1: "default adaptive
    learning rate method") at lr 1e-3, the largest of Figure 1's rates, where
    the paper sees no accuracy drop for AdaDelta. AdaDelta's own default lr 1.0
    (the MNIST example's training rate) was measured here to wreck the model:
    test accuracy 98.4 % -> 9.8 % after 100 requests (quick profile, seed 0),
    against the paper's 99.02 %. Steps run in train mode (dropout on), like training.
    `checkpoints`: removal counts at which the stream's model is kept, so one
    stream of 400 requests gives the 50, 100, …, 400 points of Figure 1.
    """

    optimizer: str = "adadelta"
    lr: float = 1e-3
    k_prime: int | None = None
    checkpoints: tuple[int, ...] = ()

    def __post_init__(self):
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr}: must be > 0")
        if self.k_prime is not None and self.k_prime < 1:
            raise ValueError(f"k_prime={self.k_prime}: must be >= 1 or None (all other labels)")
        if any(c < 1 for c in self.checkpoints):
            raise ValueError(f"checkpoints={self.checkpoints}: removal counts must be >= 1")


@dataclass(frozen=True)
class Config:
    """A whole experiment: dataset, model, training, and each method's settings.

    `forget_policy`: what the oracle (and every fine-tune) trains on: `remove`
    drops the forgotten points; `replace` swaps each for a fresh draw (paper
    000's synthetic oracle set). `oracle_init`: `same` (default) starts the
    oracle from the control model's initial weights, and with the same
    shuffling seed, so it differs from the control only by the data; with
    nets this small `d` can flip sign between that and `independent`.
    """

    dataset: str = "synthetic"
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: TrainConfig | None = None    # None: same as `train` (fresh optimizer state)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    relabel: RelabelConfig = field(default_factory=RelabelConfig)
    forget_policy: str = "remove"
    oracle_init: str = "same"
    seed: int = 0
    device: str | None = None              # None: CUDA when present, else CPU (or $UNLEARNING_DEVICE)
    dataset_options: dict = field(default_factory=dict)

    def __post_init__(self):
        _check_choice("dataset", self.dataset, PRESETS_FACTORIES)
        _check_choice("forget policy", self.forget_policy, FORGET_POLICIES)
        _check_choice("oracle init", self.oracle_init, ORACLE_INITS)
        if self.device is not None:
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ValueError(f"unknown device {self.device!r}; allowed: cpu, cuda, cuda:N, mps, or None (auto)") from None

    @property
    def finetune_train(self) -> TrainConfig:
        return self.finetune if self.finetune is not None else self.train

    def as_dict(self) -> dict:
        return asdict(self)


def _synthetic() -> Config:
    # Paper 000 section 4.2.1: lr 1e-3, threshold 9. Optimizer, batch and the
    # convergence level are not stated: Adam, full batch (10 points) and BCE < 0.05
    # give epoch counts of the paper's magnitude; the cap of 2000 matches its "1999".
    return Config(
        dataset="synthetic",
        train=TrainConfig("adam", 1e-3, None, Convergence("loss_below", 0.05, 2000)),
        pruning=PruningConfig(thresholds=(9.0, 9.0), n_neighbors=3),
        forget_policy="replace",
    )


def _california() -> Config:
    # Paper 000 section 4.2.2: lr 1e-3, thresholds 4e-4 / 1e-4 / 1e-5, convergence
    # threshold 0.015 (read as the full training-set MSE on the [0, 1] label scale).
    # Adam and batch 32 are our choices; the net's MSE levels off near 0.015-0.016,
    # so some seeds hit the 1000-epoch cap: they are recorded, not dropped.
    return Config(
        dataset="california",
        train=TrainConfig("adam", 1e-3, 32, Convergence("loss_below", 0.015, 1000)),
        pruning=PruningConfig(thresholds=(4e-4, 1e-4, 1e-5), n_neighbors=10),
        forget_policy="remove",
    )


def _mnist() -> Config:
    # Paper 002 builds on the PyTorch MNIST example: AdaDelta lr 1.0, StepLR gamma 0.7,
    # batch 64, 14 epochs. Fine-tuning (the warm-start ablation) gets one epoch.
    train = TrainConfig("adadelta", 1.0, 64, Convergence("fixed_epochs", 0.0, 14), lr_decay=0.7)
    return Config(
        dataset="mnist",
        train=train,
        finetune=replace(train, convergence=Convergence("fixed_epochs", 0.0, 1)),
        relabel=RelabelConfig("adadelta", 1e-3),
        forget_policy="remove",
    )


PRESETS_FACTORIES = {"synthetic": _synthetic, "california": _california, "mnist": _mnist}


def get_config(dataset: str = "synthetic", **overrides) -> Config:
    """The paper preset for `dataset`, with top-level fields replaced by `overrides`."""
    _check_choice("dataset", dataset, PRESETS_FACTORIES)
    return replace(PRESETS_FACTORIES[dataset](), **overrides)
