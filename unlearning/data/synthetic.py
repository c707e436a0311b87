"""Paper 000, section 3.1: ten points x ~ 10·N(0, 1), label y = 1[x > 0].

Embedded, seeded, no download: the suite's default dataset. Each seed draws a new set
(each of the paper's trials is a new draw); the oracle set *replaces* the target by a
fresh draw (the paper's rule).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Config, Convergence, TrainConfig
from .base import Data
from .registry import DatasetSpec, register_dataset

N_POINTS = 10          # the paper's "10-point continuous dataset"
SCALE = 10.0           # "a 10 times scaling to spread the data from the decision boundary"
N_TEST = 1000          # fresh draws for held-out accuracy (the paper reports accuracy on its 10 points)
TARGET_RULES = ("random", "boundary", "outlier")


def _draw(gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = SCALE * torch.randn(n, 1, generator=gen)
    return x, (x[:, 0] > 0).float()


def pick_target(x: torch.Tensor, rule: str, gen: torch.Generator) -> int:
    """Index of the deletion target.

    `random` (default): a uniformly drawn point, as the paper's trials appear to do.
    `boundary`: the point closest to the decision boundary x = 0 (makes `d` negative:
    the replaced oracle barely differs from the control there).
    `outlier`: the point farthest from the boundary.
    """
    if rule == "random":
        return int(torch.randint(len(x), (1,), generator=gen))
    if rule == "boundary":
        return int(x[:, 0].abs().argmin())
    if rule == "outlier":
        return int(x[:, 0].abs().argmax())
    raise ValueError(f"unknown target rule {rule!r}; allowed: {', '.join(TARGET_RULES)}")


def load_synthetic(*, seed: int = 0, n_points: int = N_POINTS, n_test: int = N_TEST,
                   target: str = "random") -> Data:
    """Draw the synthetic set with `seed` (nothing to read: it takes no `data_dir`).

    Every training point i has a replacement (x', 1[x' > 0]) drawn from the same
    distribution: the oracle set of paper 000 replaces the target by it.
    """
    if n_points < 2:
        raise ValueError(f"n_points={n_points}: need at least 2 points")
    if n_test < 0:
        raise ValueError(f"n_test={n_test}: must be >= 0")
    gen = torch.Generator().manual_seed(seed)
    x, y = _draw(gen, n_points)
    x_rep, y_rep = _draw(gen, n_points)
    x_test, y_test = _draw(gen, n_test)
    return Data(
        name="synthetic", task="binary", num_classes=2,
        x_train=x, y_train=y, x_test=x_test, y_test=y_test,
        target_index=pick_target(x, target, gen),
        x_replacement=x_rep, y_replacement=y_rep,
        info={"seed": seed, "n_points": n_points, "scale": SCALE, "n_test": n_test, "target_rule": target},
    )


def synthetic_mlp() -> nn.Sequential:
    """Paper 000 section 4.2.1: 1 → 3 (ReLU) → 1, a single logit."""
    return nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))


def preset() -> Config:
    """Paper 000 section 4.2.1: lr 1e-3, threshold 9 (both layers).

    Optimizer, batch and the convergence level are not stated: Adam, full batch (10
    points) and BCE < 0.05 give epoch counts of the paper's magnitude; the cap of 2000
    matches its "1999". Neighbours n = 3 of the 9 other points (not stated).
    """
    return Config(
        dataset="synthetic",
        train=TrainConfig("adam", 1e-3, None, Convergence("loss_below", 0.05, 2000)),
        methods={"weight_pruning": {"thresholds": (9.0, 9.0), "n_neighbors": 3}},
        forget_policy="replace",
    )


SPEC = register_dataset(DatasetSpec(
    name="synthetic", task="binary", input_shape=(1,), num_classes=2, n_train=N_POINTS,
    loader=load_synthetic, model=synthetic_mlp, preset=preset, paper="000", order=0,
    description="ten 1-D Gaussian points x ~ 10·N(0, 1), label x > 0 (embedded, seeded)",
    provenance="drawn in code: x ~ 10·N(0, 1) from torch.Generator(seed); nothing is downloaded",
    new_draw_per_seed=True,
))
