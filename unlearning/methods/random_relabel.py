"""Random relabeling, paper 002 section 3 ("Online Unlearning Configuration").

Each removal request, in order, is answered with ONE optimizer step on one
mini-batch holding the point under each of the other k−1 labels (or k′ of
them, drawn at random). See `RelabelConfig` for the optimizer-state choice.
"""

from __future__ import annotations

import copy
import time

import torch

from ..config import make_optimizer
from ..models import seeded
from ..train import TrainRecord, loss_fn
from .base import Checkpoint, UnlearnResult, register


def _applies(data, model) -> str | None:
    if not data.is_classification:
        return f"random relabeling needs class labels; {data.name!r} is a {data.task} task"
    return None


def _validate(data, model, config, forget) -> None:
    bad = [c for c in config.relabel.checkpoints if c > len(forget)]
    if bad:
        raise ValueError(f"checkpoint(s) {bad} exceed the {len(forget)} removal requests of this stream")


def relabel_batch(y_true: int, num_classes: int, k_prime: int | None = None,
                  gen: torch.Generator | None = None) -> torch.Tensor:
    """The labels one request trains on: every class but `y_true` once, or `k_prime` of them at random."""
    others = torch.tensor([c for c in range(num_classes) if c != y_true])
    if k_prime is None or k_prime >= len(others):
        return others
    return others[torch.randperm(len(others), generator=gen)[:k_prime]]


@register("random_relabel", applies=_applies, validate=_validate)
def random_relabel(trained, data, forget, config, on_epoch=None) -> UnlearnResult:
    """One step per removal request on the point under every other label (paper 002)."""
    cfg = config.relabel
    k = data.num_classes
    model = trained.copy_model()
    device = trained.device
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    lossf = loss_fn(data.task)
    gen = torch.Generator().manual_seed(config.seed)
    marks = set(cfg.checkpoints)
    rec = TrainRecord(rule=f"one {cfg.optimizer} step (lr {cfg.lr:g}) per removal request", converged=None)
    checkpoints = []
    model.train()
    with seeded(config.seed, device):
        t0 = time.perf_counter()
        for n_done, i in enumerate(forget.tolist(), start=1):
            labels = relabel_batch(int(data.y_train[i]), k, cfg.k_prime, gen)
            xb = data.x_train[i:i + 1].expand(len(labels), *data.x_train.shape[1:]).to(device)
            yb = labels.to(device=device, dtype=data.y_train.dtype)
            opt.zero_grad(set_to_none=True)
            lossf(model(xb), yb).backward()
            opt.step()
            rec.steps += 1
            rec.samples += len(labels)
            if n_done in marks:
                rec.seconds += time.perf_counter() - t0
                checkpoints.append(Checkpoint(n_done, copy.deepcopy(model.state_dict()), copy.copy(rec)))
                t0 = time.perf_counter()
        rec.seconds += time.perf_counter() - t0
    model.eval()
    return UnlearnResult("random_relabel", model, rec,
                         {"optimizer": cfg.optimizer, "lr": cfg.lr,
                          "k_prime": cfg.k_prime if cfg.k_prime else k - 1}, checkpoints)
