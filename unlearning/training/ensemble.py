"""Many small models trained at once: `fit_many`, the batched twin of `train.fit`.

The suite's MLPs (paper 000's 1→3→1 and 9→5→5→1, digits' 64→32→16→10) are bound by
per-operation framework overhead, not arithmetic: one step of one model does a handful of
tiny kernels. `fit_many` trains K models of one architecture as one stacked model — each
Linear layer's weights as a (K, out, in) tensor, applied with one batched matmul
(`torch.baddbmm`) — so one step of K models costs about as many kernel launches as one.

Each model keeps what makes it independent: its own initialisation (the models given),
its own shuffling order (a generator seeded with its own seed, exactly as `fit` seeds
one), its own optimizer state (the optimizer's update is elementwise, so one optimizer
over stacked tensors is K optimizers; every loss is a per-model mean and they are summed,
so no gradient mixes models), and its own convergence check after every epoch. A model
that converges, collapses or hits the cap leaves the stack: its weights are written back
and frozen, and the optimizer state of the others is carried over by slicing, so the rest
continue exactly as if trained alone. `fit` stays the reference: `tests/test_ensemble.py`
checks that both give the same epochs and weights within float rounding.

Only `nn.Sequential` nets of Linear layers and elementwise activations are stacked (no
dropout, no convolutions); anything else raises ValueError: use `fit`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..config import Config, TrainConfig, make_optimizer
from ..data import Data
from . import progress
from .models import model_for, resolve_device, seeded
from .train import CONSTANT_OUTPUT_TOL, EVAL_BATCH, Trained, TrainRecord, fresh_model, train_original, train_pass

log = logging.getLogger(__name__)

ELEMENTWISE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.Identity)


def stack_reason(model: nn.Module) -> str | None:
    """Why `model` cannot be stacked, or None."""
    if not isinstance(model, nn.Sequential):
        return f"fit_many stacks nn.Sequential nets, got {type(model).__name__}"
    for i, layer in enumerate(model):
        if not isinstance(layer, (nn.Linear, *ELEMENTWISE)) or (isinstance(layer, nn.Linear) and layer.bias is None):
            return (f"layer {i} is {type(layer).__name__}; fit_many stacks Linear layers (with bias) and elementwise "
                    "activations only: use fit")
    return None


def per_model_loss(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss of each model: `out` (K, B, outputs), `y` (K, B) -> (K,). The same losses as `train.loss_fn`."""
    k, b = y.shape
    if task == "binary":
        return F.binary_cross_entropy_with_logits(out.reshape(k, b), y, reduction="none").mean(1)
    if task == "regression":
        return F.mse_loss(out.reshape(k, b), y, reduction="none").mean(1)
    if task == "multiclass":
        return F.cross_entropy(out.reshape(k * b, -1), y.reshape(-1), reduction="none").reshape(k, b).mean(1)
    raise ValueError(f"unknown task {task!r}; allowed: binary, regression, multiclass")


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


@dataclass
class Stack:
    """The active models as stacked tensors: `params` are [W_0, b_0, W_1, b_1, ...] with a leading K axis."""

    layers: list                 # ("linear", index into params) or ("act", module), in order
    params: list[torch.Tensor]
    ids: list[int]               # position of each stacked model in the caller's list

    @classmethod
    def of(cls, models: Sequence[nn.Sequential], device: torch.device) -> Stack:
        layers, params = [], []
        for i, layer in enumerate(models[0]):
            if isinstance(layer, nn.Linear):
                layers.append(("linear", len(params)))
                for name in ("weight", "bias"):
                    t = torch.stack([getattr(m[i], name).detach() for m in models]).to(device)
                    params.append(t.requires_grad_())
            else:
                layers.append(("act", layer))
        return cls(layers, params, list(range(len(models))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (K, B, inputs) -> (K, B, outputs)."""
        h = x
        for kind, item in self.layers:
            if kind == "linear":
                w, b = self.params[item], self.params[item + 1]
                h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            else:
                h = item(h)
        return h

    def keep(self, rows: torch.Tensor) -> Stack:
        """The stack of the models at `rows` (positions in this stack), as new leaf tensors."""
        params = [p.detach()[rows].clone().requires_grad_() for p in self.params]
        return Stack(self.layers, params, [self.ids[i] for i in rows.tolist()])

    def write_back(self, models: Sequence[nn.Sequential], rows: Sequence[int]) -> None:
        """Copy the stacked weights of `rows` into their models."""
        linear = [i for i, layer in enumerate(models[0]) if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for r in rows:
                model = models[self.ids[r]]
                for li, i in enumerate(linear):
                    model[i].weight.copy_(self.params[2 * li][r])
                    model[i].bias.copy_(self.params[2 * li + 1][r])


def _sliced_optimizer(old, old_params, stack: Stack, rows: torch.Tensor, name: str, lr: float):
    """A new optimizer over `stack.params` carrying each kept model's state (sliced from `old`)."""
    opt = make_optimizer(name, stack.params, lr)
    k_old = old_params[0].shape[0]
    for p_old, p_new in zip(old_params, stack.params, strict=True):
        state = old.state.get(p_old, {})
        opt.state[p_new] = {key: (v[rows].clone() if torch.is_tensor(v) and v.dim() and v.shape[0] == k_old else v)
                            for key, v in state.items()}
    return opt


class _Run:
    """The state of one `fit_many` call: data, stack, optimizer, per-model records and generators."""

    def __init__(self, models, x, y, task, cfg: TrainConfig, seeds, device, on_epoch=None):
        self.models, self.task, self.cfg, self.device = models, task, cfg, device
        self.on_epoch, self.untimed = on_epoch, 0.0
        if x is not None and not torch.is_tensor(x):
            sizes = {len(xi) for xi in x}
            if len(x) != len(models) or len(sizes) != 1:
                raise ValueError(f"fit_many: give one training set per model, all of one size "
                                 f"({len(models)} models, {len(x)} sets of sizes {sorted(sizes)})")
        self.per_model_x = not torch.is_tensor(x)
        self.x = (torch.stack(list(x)) if self.per_model_x else x).to(device)
        self.y = (torch.stack(list(y)) if self.per_model_x else y).to(device)
        self.n = self.x.shape[1] if self.per_model_x else len(self.x)
        self.bs = self.n if cfg.batch_size is None else min(cfg.batch_size, self.n)
        self.stack = Stack.of(models, device)
        self.lr = cfg.lr
        self.opt = make_optimizer(cfg.optimizer, self.stack.params, self.lr)
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        rule = cfg.convergence.describe()
        self.recs = [TrainRecord(rule=rule, batch_models=len(models)) for _ in models]

    def call_back(self, ids, epoch: int) -> None:
        """`on_epoch[i](epoch, model i)` for each model i of `ids` whose weights are current; untimed."""
        if self.on_epoch is None or not any(self.on_epoch[i] for i in ids):
            return
        t0 = time.perf_counter()
        for i in ids:
            if self.on_epoch[i] is not None:
                self.models[i].eval()
                self.on_epoch[i](epoch, self.models[i])
        self.untimed += time.perf_counter() - t0

    def active(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every training row of every active model, (K, n, ...) and (K, n); kept until the stack changes."""
        ids = tuple(self.stack.ids)
        if getattr(self, "_active_ids", None) != ids:
            if self.per_model_x:
                sel = torch.tensor(ids, device=self.device)
                self._active = (self.x[sel], self.y[sel])
            else:
                self._active = (self.x.expand(len(ids), *self.x.shape), self.y.expand(len(ids), *self.y.shape))
            self._active_ids = ids
        return self._active

    def rows(self, idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (K, B, ...) of the active models: row indices `idx` (K, B), or every row."""
        if idx is None:
            return self.active()
        if self.per_model_x:
            x, y = self.active()
            k = torch.arange(len(idx), device=self.device)[:, None]
            return x[k, idx], y[k, idx]
        return self.x[idx], self.y[idx]

    def epoch(self) -> torch.Tensor:
        """One pass for every active model; returns each one's mean training loss (K,)."""
        ids = self.stack.ids
        total = torch.zeros(len(ids), device=self.device)

        def losses(idx: torch.Tensor | None) -> torch.Tensor:
            xb, yb = self.rows(idx)
            values = per_model_loss(self.task, self.stack.forward(xb), yb)
            total.add_(values.detach(), alpha=xb.shape[1])
            return values

        steps = train_pass(self.opt, batches(self.n, self.bs, [self.gens[i] for i in ids], self.device), losses)
        for r in ids:                     # every model took the same steps over the same number of rows
            self.recs[r].steps += steps
            self.recs[r].samples += self.n
        return total / self.n

    def full_loss(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each active model's loss on its whole training set, and whether it has collapsed
        (constant output and zero gradient), as `train._full_loss` decides for one model."""
        x, y = self.rows(None)
        with torch.no_grad():
            out = self.stack.forward(x)
            loss = per_model_loss(self.task, out, y)
        flat = out.reshape(out.shape[0], -1)
        constant = (flat.max(1).values - flat.min(1).values < CONSTANT_OUTPUT_TOL) & (self.n > 1)
        if not bool(constant.any()):
            return loss, constant
        grads = torch.autograd.grad(per_model_loss(self.task, self.stack.forward(x[:, :EVAL_BATCH]),
                                                   y[:, :EVAL_BATCH]).sum(), self.stack.params)
        size = sum(g.abs().reshape(g.shape[0], -1).sum(1) for g in grads)
        return loss, constant & (size == 0)


def fit_many(models: Sequence[nn.Module], x, y, task: str, cfg: TrainConfig, *, seeds: Sequence[int],
             device: torch.device | str | None = None,
             on_epoch: Sequence[Callable[[int, nn.Module], None] | None] | None = None) -> list[TrainRecord]:
    """Train every model of `models` (one architecture) in place on (x, y), all at once, each
    until `cfg.convergence` says stop for it; one `TrainRecord` per model, as `fit` gives.

    `x`, `y`: one training set for all, or a sequence of K sets of the same size (one per
    model). `seeds[k]`: model k's shuffling seed (what `fit(..., seed=)` takes). Every
    record's `batch_seconds` is the wall time of the whole batch, `batch_models` is K and
    `seconds` the amortised share, `batch_seconds / K`. `on_epoch[k](e, model)`, as `fit`'s
    `on_epoch` for model k: once before training and after each of its epochs, untimed.
    """
    if len(models) == 0 or len(seeds) != len(models):
        raise ValueError(f"fit_many: give one seed per model ({len(models)} models, {len(seeds)} seeds)")
    if on_epoch is not None and len(on_epoch) != len(models):
        raise ValueError(f"fit_many: give one on_epoch (or None) per model ({len(models)} models, {len(on_epoch)})")
    for m in models:
        if reason := stack_reason(m):
            raise ValueError(reason)
    run = _Run(models, x, y, task, cfg, seeds, resolve_device(device), on_epoch)
    if run.n == 0:
        raise ValueError("cannot train on an empty set")
    run.call_back(range(len(models)), 0)
    t0 = time.perf_counter()
    _train(run)
    seconds = time.perf_counter() - t0 - run.untimed
    for rec in run.recs:
        rec.batch_seconds, rec.seconds = seconds, seconds / len(models)
        if cfg.convergence.rule != "loss_below":
            rec.converged = True
        rec.hit_cap = not rec.converged and not rec.collapsed
    for m in models:
        m.to(run.device).eval()
    return run.recs


def _train(run: _Run) -> None:
    conv = run.cfg.convergence
    watch = conv.rule == "loss_below"
    if watch:
        loss, collapsed = run.full_loss()
        for r, i in enumerate(run.stack.ids):
            rec = run.recs[i]
            rec.initial_loss, rec.collapsed = float(loss[r]), bool(collapsed[r])
            rec.converged = rec.initial_loss < conv.threshold
        _retire(run)
    with progress.bar(conv.max_epochs, f"epoch ({len(run.models)} models)") as shown:
        while run.stack.ids:
            _epoch(run, watch, conv.threshold)
            shown.update()


def _epoch(run: _Run, watch: bool, threshold: float) -> None:
    """One epoch of every model still on the stack, their records, callbacks and retirements."""
    losses = run.epoch()
    if run.cfg.lr_decay:
        run.lr *= run.cfg.lr_decay
        for group in run.opt.param_groups:
            group["lr"] = run.lr
    if watch:
        losses, collapsed = run.full_loss()
    for r, i in enumerate(run.stack.ids):
        rec = run.recs[i]
        rec.epochs += 1
        if watch:
            rec.collapsed = bool(collapsed[r])
            rec.converged = float(losses[r]) < threshold
        rec.loss_history.append(float(losses[r]))
    if run.on_epoch is not None:
        run.stack.write_back(run.models, range(len(run.stack.ids)))
        run.call_back(run.stack.ids, run.recs[run.stack.ids[0]].epochs)
    _retire(run)


def _retire(run: _Run) -> None:
    """Write back and drop from the stack every model that has converged, collapsed or reached the cap."""
    cap = run.cfg.convergence.max_epochs
    done = [r for r, i in enumerate(run.stack.ids)
            if run.recs[i].converged or run.recs[i].collapsed or run.recs[i].epochs >= cap]
    if not done:
        return
    run.stack.write_back(run.models, done)
    keep = torch.tensor([r for r in range(len(run.stack.ids)) if r not in done], dtype=torch.long)
    old_params = run.stack.params
    run.stack = run.stack.keep(keep)
    if run.stack.ids:
        run.opt = _sliced_optimizer(run.opt, old_params, run.stack, keep.to(old_params[0].device),
                                    run.cfg.optimizer, run.lr)


def same_but_seed(configs: Sequence[Config]) -> bool:
    """Whether `configs` differ in nothing but their seeds (so their runs can be batched)."""
    return len({json.dumps(dataclasses.replace(c, seed=0).as_dict(), sort_keys=True) for c in configs}) == 1


def batch_reason(datas: Sequence[Data], configs: Sequence[Config], model: nn.Module) -> str | None:
    """Why K runs (one data and config each) cannot be trained as one `fit_many` batch, or None."""
    if len(datas) < 2:
        return "a single run"
    if reason := stack_reason(model):
        return reason
    if not same_but_seed(configs):
        return "the configs differ in more than their seeds"
    if len({(d.name, d.task, d.n_train) for d in datas}) != 1:
        return "the runs are on datasets of different kinds or sizes"
    return None


def train_original_many(datas: Sequence[Data], configs: Sequence[Config]) -> list[Trained]:
    """`train.train_original` for K (data, config) pairs at once (`fit_many`): each control
    model from its own seed's init (with the same dead-init redraws) and shuffling."""
    if len(datas) != len(configs):
        raise ValueError(f"train_original_many: {len(datas)} datasets for {len(configs)} configs")
    device = resolve_device(configs[0].device)
    fresh = [fresh_model(d, c.seed, device) for d, c in zip(datas, configs, strict=True)]
    models = [m for m, _ in fresh]
    inits = [copy.deepcopy(m.state_dict()) for m in models]
    recs = fit_many(models, [d.x_train for d in datas], [d.y_train for d in datas], datas[0].task,
                    configs[0].train, seeds=[c.seed for c in configs], device=device)
    log.info("%s originals x%d at once: epochs %s, %.2fs", datas[0].name, len(models), [r.epochs for r in recs],
             recs[0].batch_seconds)
    return [Trained(m, init, rec, redraws, c.seed, device)
            for m, init, rec, (_, redraws), c in zip(models, inits, recs, fresh, configs, strict=True)]


def train_originals(datas: Sequence[Data], configs: Sequence[Config]) -> list[Trained]:
    """K originals: one `train_original_many` batch where `batch_reason` finds nothing against
    it, else `train.train_original` one after another."""
    with seeded(0):                        # a probe for stackability; leaves the caller's RNG alone
        probe = model_for(datas[0])
    if batch_reason(datas, configs, probe) is None:
        return train_original_many(datas, configs)
    return [train_original(d, c) for d, c in zip(datas, configs, strict=True)]
