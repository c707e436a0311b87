"""One training loop for every model and method, and the trained original model.

`fit` trains a model on tensors until the config's convergence rule says stop
and returns a `TrainRecord` of what it cost. Batches come from indexing
tensors that live on the device (no per-sample collation). Each of its epochs
is one `train_pass` (zero the gradients, a loss callback, backward, step), the
pass `ensemble.fit_many` and the methods' own loops run too.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..config import Config, TrainConfig, make_optimizer
from ..data import Data
from . import progress
from .models import build_model, model_for, resolve_device, seeded

log = logging.getLogger(__name__)

EVAL_BATCH = 4096            # rows per forward pass when evaluating a whole set
# Images on a CPU: 64 per pass in channels_last layout was the fastest of 32..10,000 in either
# layout for the MNIST ConvNet on the 2-core machine (10,000 test images: ~0.9 s against ~3.8 s
# at 4,096 in the default layout; from 256 up the activations outgrow the cache and it varies
# 1-2 s); outputs equal within float rounding (max |diff| ~1e-7).
EVAL_BATCH_IMAGES_CPU = 64
MAX_INIT_REDRAWS = 100       # fresh inits tried before giving up on a dead network
CONSTANT_OUTPUT_TOL = 1e-7   # outputs spread less than this over the set: constant
# Where no progress bar is drawn (not a terminal, e.g. a CI log): a line (logger "unlearning.training.train",
# INFO) every LOG_EVERY epochs, or after an epoch ending LOG_SECONDS after the last line (MNIST's are long).
LOG_EVERY = 100
LOG_SECONDS = 30.0


def loss_fn(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Mean loss of model outputs against 1-D targets: BCE on one logit, MSE, or cross-entropy."""
    if task == "binary":
        return lambda out, y: F.binary_cross_entropy_with_logits(out.reshape(-1), y)
    if task == "regression":
        return lambda out, y: F.mse_loss(out.reshape(-1), y)
    if task == "multiclass":
        return F.cross_entropy
    raise ValueError(f"unknown task {task!r}; allowed: binary, regression, multiclass")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """Model outputs on `x` in eval mode, batched, on the CPU.

    Images (4-D `x`) go through a channels_last copy of the model, in passes of
    `EVAL_BATCH_IMAGES_CPU` on a CPU; `model` itself is left as it was.
    """
    device = device or next(model.parameters()).device
    if x.dim() == 4:
        net = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
        step = EVAL_BATCH_IMAGES_CPU if device.type == "cpu" else EVAL_BATCH
        outs = [net(x[i:i + step].to(device).contiguous(memory_format=torch.channels_last)).cpu()
                for i in range(0, len(x), step)]
        return torch.cat(outs) if outs else torch.empty(0)
    was_training = model.training
    model.eval()
    try:
        outs = [model(x[i:i + EVAL_BATCH].to(device)).cpu() for i in range(0, len(x), EVAL_BATCH)]
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def is_constant(out: torch.Tensor) -> bool:
    return len(out) > 1 and float(out.max() - out.min()) < CONSTANT_OUTPUT_TOL


@dataclass
class TrainRecord:
    """What a training run (or any unlearning operation) cost, and how it ended.

    `converged` is None where no convergence rule applies (random relabeling's
    fixed single steps). `loss_history[e]` is the loss the rule watched after
    epoch e+1; `initial_loss` the same before the first epoch. `batch_models`: how many
    models were trained together (`ensemble.fit_many`); `batch_seconds` is then the whole
    batch's wall time and `seconds` this model's amortised share of it (`batch_seconds /
    batch_models`, plus any work done for this model alone). Trained alone, both are equal.
    """

    epochs: int = 0
    steps: int = 0
    samples: int = 0
    seconds: float = 0.0
    converged: bool | None = None
    hit_cap: bool = False
    collapsed: bool = False
    rule: str = ""
    initial_loss: float | None = None
    loss_history: list[float] = field(default_factory=list)
    batch_models: int = 1
    batch_seconds: float | None = None

    def cost(self) -> dict:
        """The flat cost fields every result carries (`samples` is reported as `samples_processed`)."""
        return {"epochs": self.epochs, "steps": self.steps, "samples_processed": self.samples,
                "seconds": self.seconds, "converged": self.converged, "hit_cap": self.hit_cap,
                "collapsed": self.collapsed, "rule": self.rule, "batch_models": self.batch_models,
                "batch_seconds": self.seconds if self.batch_seconds is None else self.batch_seconds}


def _full_loss(model, x, y, lossf, device) -> tuple[float, bool]:
    """Mean loss over the whole set in eval mode, and whether the model has collapsed.

    Collapsed: constant output on every row and a zero gradient for every
    parameter (e.g. a dead output ReLU): no amount of training will move it.
    """
    out = predict(model, x, device)
    loss = float(lossf(out, y.cpu()))
    if not is_constant(out):
        return loss, False
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()
    lossf(model(x[:EVAL_BATCH].to(device)), y[:EVAL_BATCH].to(device)).backward()
    model.train(was_training)
    grad = sum(float(p.grad.abs().sum()) for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    return loss, grad == 0.0


def train_pass(opt: torch.optim.Optimizer, batches: Iterable, losses: Callable[[Any], torch.Tensor],
               step: Callable[[], None] | None = None) -> int:
    """One training pass, the loop `fit`, `ensemble.fit_many` and the methods' loops share: for
    each batch of `batches` (whatever `losses` takes: row indices, or for K models row indices
    (K, B)), zero the gradients, take the losses `losses(batch)` (one model: a scalar; K models:
    (K,), one per model), back-propagate their sum (no gradient mixes models) and step (`step`,
    default `opt.step`). Returns the steps taken."""
    steps = 0
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        values = losses(batch)
        values.backward(torch.ones_like(values))       # d(sum of the losses)/d(each loss)
        (step or opt.step)()
        steps += 1
    return steps


def _run_epoch(model, x, y, bs: int, gen: torch.Generator, opt, lossf, rec: TrainRecord, shown=None) -> float:
    """One pass (`train_pass`) over (x, y) in shuffled batches of `bs` (in file order when one batch
    is all); counts steps and samples into `rec` and returns the mean training loss of the pass.
    `shown`: a progress bar advanced by 1/batches per batch."""
    n = len(x)
    share = bs / n
    model.train()
    perm = torch.randperm(n, generator=gen).to(x.device) if bs < n else None
    total = 0.0

    def loss(i: int) -> torch.Tensor:
        nonlocal total
        idx = perm[i:i + bs] if perm is not None else slice(None)
        xb, yb = x[idx], y[idx]
        value = lossf(model(xb), yb)
        total += float(value.detach()) * len(xb)
        rec.samples += len(xb)
        if shown is not None:
            shown.update(share)
        return value

    rec.steps += train_pass(opt, range(0, n, bs), loss)
    return total / n


def _finish(rec: TrainRecord, watch: bool, seconds: float) -> TrainRecord:
    rec.seconds = seconds
    if not watch:
        rec.converged = True
    rec.hit_cap = not rec.converged and not rec.collapsed
    if rec.collapsed:
        log.warning("model collapsed after %d epochs: constant output and zero gradient", rec.epochs)
    return rec


def _tell(shown, rec: TrainRecord, loss: float, cap: int, said: float) -> float:
    """Show the epoch's loss on the bar, or, where no bar is drawn, log a line now and then
    (see `LOG_EVERY`); the time of the last line."""
    shown.set_postfix_str(f"loss {loss:.4g}", refresh=False)
    if shown.disable and (rec.epochs % LOG_EVERY == 0 or time.perf_counter() - said > LOG_SECONDS):
        log.info("%s epoch %d/%d: loss %.5g (%s)", progress.label(), rec.epochs, cap, loss, rec.rule)
        return time.perf_counter()
    return said


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, cfg: TrainConfig, *,
        seed: int = 0, device: torch.device | str | None = None,
        on_epoch: Callable[[int, nn.Module], None] | None = None) -> TrainRecord:
    """Train `model` in place on (x, y) until `cfg.convergence` says stop.

    Shuffling uses its own generator seeded with `seed`; dropout uses torch's
    global RNG, seeded with `seed` for the duration of the run. `on_epoch(e, model)`
    is called after every epoch (e = 1, 2, …) and once before the first (e = 0),
    outside the timed part, with the model in eval mode (as `fit_many` and the methods' loops call it).
    """
    device = resolve_device(device)
    model.to(device)
    x, y = x.to(device), y.to(device)
    if len(x) == 0:
        raise ValueError("cannot train on an empty set")
    bs = len(x) if cfg.batch_size is None else min(cfg.batch_size, len(x))
    conv = cfg.convergence
    watch = conv.rule == "loss_below"
    lossf = loss_fn(task)
    rec = TrainRecord(rule=conv.describe())
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=cfg.lr_decay) if cfg.lr_decay else None
    gen = torch.Generator().manual_seed(seed)
    timed = 0.0
    said = time.perf_counter()

    with seeded(seed, device), progress.bar(conv.max_epochs, "epoch") as shown:
        if on_epoch:
            on_epoch(0, model.eval())
        t0 = time.perf_counter()
        if watch:
            rec.initial_loss, rec.collapsed = _full_loss(model, x, y, lossf, device)
            rec.converged = rec.initial_loss < conv.threshold
        while not (rec.converged or rec.collapsed) and rec.epochs < conv.max_epochs:
            loss_now = _run_epoch(model, x, y, bs, gen, opt, lossf, rec, shown)
            if sched:
                sched.step()
            rec.epochs += 1
            if watch:
                loss_now, rec.collapsed = _full_loss(model, x, y, lossf, device)
                rec.converged = loss_now < conv.threshold
            rec.loss_history.append(loss_now)
            said = _tell(shown, rec, loss_now, conv.max_epochs, said)
            if on_epoch:
                timed += time.perf_counter() - t0
                on_epoch(rec.epochs, model.eval())          # the next epoch puts it back in train mode
                t0 = time.perf_counter()
        timed += time.perf_counter() - t0
    model.eval()
    return _finish(rec, watch, timed)


def fresh_model(data: Data, seed: int, device: torch.device | str | None = None) -> tuple[nn.Module, int]:
    """A new model for `data`, redrawn while its output is constant on the training set.

    With PyTorch's default init the California net's output ReLU can be dead on
    every row; such a net has zero gradient and never trains. Returns the model
    and how many inits were redrawn (recorded in results).
    """
    device = resolve_device(device)
    with seeded(seed):
        for redraws in range(MAX_INIT_REDRAWS):
            model = model_for(data).to(device)
            if not is_constant(predict(model, data.x_train, device)):
                return model, redraws
    raise RuntimeError(f"{data.name}: every one of {MAX_INIT_REDRAWS} inits from seed {seed} gives a constant output")


@dataclass
class Trained:
    """The original (control) model `m_c`, its initial weights and what training it cost."""

    model: nn.Module
    init_state: dict
    record: TrainRecord
    init_redraws: int
    seed: int
    device: torch.device

    def copy_model(self) -> nn.Module:
        return copy.deepcopy(self.model)

    def initial_model(self, dataset: str) -> nn.Module:
        """A model holding the control's initial weights (for an oracle with the same init)."""
        model = build_model(dataset).to(self.device)
        model.load_state_dict(self.init_state)
        return model


def train_original(data: Data, config: Config,
                   on_epoch: Callable[[int, nn.Module], None] | None = None) -> Trained:
    """Train the control model `m_c` on the full training set with `config.train`."""
    device = resolve_device(config.device)
    model, redraws = fresh_model(data, config.seed, device)
    init_state = copy.deepcopy(model.state_dict())
    rec = fit(model, data.x_train, data.y_train, data.task, config.train,
              seed=config.seed, device=device, on_epoch=on_epoch)
    log.info("%s original: %d epochs, converged=%s, %.2fs", data.name, rec.epochs, rec.converged, rec.seconds)
    return Trained(model, init_state, rec, redraws, config.seed, device)
