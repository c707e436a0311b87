"""What a run will cost on this machine, said before it starts.

A short timing of the preset's own training step (`PROBE_STEPS` batches of the real
data through the real model and optimizer, after one warm-up batch), scaled by the
preset: batches per epoch, plus one whole-set loss pass per epoch under `loss_below`.
Every trial trains the original and the oracle with `config.train`; each method that
fine-tunes adds up to `config.finetune_train`'s cap. Under `loss_below` the caps are an
upper bound (training stops once the loss is low enough); under `fixed_epochs` they are
what runs. The probe trains a throwaway model under its own seed: no result changes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from ..config import Config, Convergence, TrainConfig
from ..data import Data
from ..training import progress, threads
from ..training.models import resolve_device, seeded
from ..training.progress import clock
from ..training.train import fit, fresh_model, predict

PROBE_STEPS = 5              # timed batches; one more before them warms up allocators and kernels
PROBE_EVAL_ROWS = 4096       # rows of the whole-set loss pass timed, scaled to the training set


@dataclass(frozen=True)
class Estimate:
    """Seconds per epoch of `train` and of `finetune`, measured now, and their epoch caps."""

    train: TrainConfig
    finetune: TrainConfig
    train_epoch_seconds: float
    finetune_epoch_seconds: float
    threads: str = ""               # `threads.describe`: the thread count it was timed (and will train) with

    def training(self) -> float:
        """Seconds of one training with `train` (the original, the oracle), to its cap."""
        return self.train_epoch_seconds * self.train.convergence.max_epochs

    def finetuning(self) -> float:
        return self.finetune_epoch_seconds * self.finetune.convergence.max_epochs

    def line(self, trials: int) -> str:
        conv = self.train.convergence
        bound = "up to " if conv.rule == "loss_below" else "about "
        per_trial = 2 * self.training()
        return (f"expected cost here (one epoch timed now: {clock(self.train_epoch_seconds)}): the original and the "
                f"oracle train {bound}{conv.max_epochs} epochs each ({conv.describe()}), {bound}{clock(per_trial)} "
                f"per trial, {clock(per_trial * trials)} for {trials}; each method that fine-tunes adds "
                f"{bound}{clock(self.finetuning())}" + (f"; training with {self.threads}" if self.threads else ""))

def epoch_seconds(data: Data, cfg: TrainConfig, device) -> float:
    """Seconds of one epoch of `cfg` on `data` (its batches, and its whole-set loss pass under `loss_below`)."""
    n = data.n_train
    bs = n if cfg.batch_size is None else min(cfg.batch_size, n)
    one = replace(cfg, convergence=Convergence("fixed_epochs", 0.0, 1), lr_decay=None)
    model, _ = fresh_model(data, seed=0, device=device)
    with progress.showing(False), seeded(0), threads.policy(data.spec or data.name):
        fit(model, data.x_train[:bs], data.y_train[:bs], data.task, one, device=device)        # warm-up
        steps = min(PROBE_STEPS, math.ceil(n / bs))
        rec = fit(model, data.x_train[:bs * steps], data.y_train[:bs * steps], data.task, one, device=device)
        seconds = rec.seconds / rec.steps * math.ceil(n / bs)
        if cfg.convergence.rule == "loss_below":
            rows = min(n, PROBE_EVAL_ROWS)
            t0 = time.perf_counter()
            predict(model, data.x_train[:rows], device)
            seconds += (time.perf_counter() - t0) * n / rows
    return seconds


def estimate(data: Data, config: Config) -> Estimate:
    device = resolve_device(config.device)
    train = epoch_seconds(data, config.train, device)
    ft = config.finetune_train
    finetune = train if ft == config.train else epoch_seconds(data, ft, device)
    return Estimate(config.train, ft, train, finetune, threads.describe(data.name))

