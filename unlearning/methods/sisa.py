"""SISA: exact unlearning by Sharded, Isolated, Sliced and Aggregated training.

Bourtoule, Chandrasekaran, Choquette-Choo, Jia, Travers, Zhang, Lie, Papernot: "Machine Unlearning",
IEEE S&P 2021 (arXiv 1912.03817); reference implementation cleverhans-lab/machine-unlearning
(`sisa.py`, `sharded.py`, `distribution.py`, `aggregation.py`), read for its defaults, not copied.

The training rows (the original's training set, forget points included) are split by a seeded
permutation into S shards, each shard into R slices. Constituent model s starts from a fresh
seeded init (`train.fresh_model`) and is trained slice by slice on the *cumulative* slices
1..r, with a checkpoint after every slice. A removal retrains only the shards that held a
removed point, each from its last checkpoint before the first slice holding one, on its
remaining rows; the other constituents are kept bit for bit. The unlearned model is the
ensemble of the constituents (`ShardEnsemble`): classification outputs whose softmax is the
mean of the constituents' softmaxes (the log of the mean probability; binary: the logit of the
mean sigmoid), regression the mean prediction.

SISA does not use the trained original's weights at all: it trains its own constituents (its
amortised training cost is in `details`, apart from the removal cost in `cost`). The forgetting
audit compares it with single models retrained from scratch, so its F measures its distance
from a single retrained model (an ensemble of S models on 1/S of the data each is not that),
not its own exactness guarantee: that guarantee is what `tests/test_method_sisa.py` checks
(no retrained constituent ever trained on a removed point; untouched shards bit-identical).

Cost. `UnlearnResult.cost` is the removal's: `epochs` the retrained slice steps' epochs summed
(each a pass over that step's cumulative rows), `steps`, `samples`, `seconds` (the amortised share
of each `fit_many` batch it took part in); `details["retrain_data_passes"]` = samples / remaining
rows, comparable with a retrained model's epochs. `details` carries the amortised training cost
apart (`training_seconds`, `training_epochs`, `training_steps`, `training_samples`,
`training_data_passes`) and `shards_retrained`, `slices_retrained`, `shards_emptied`. After a
removal the shards' sizes differ, and `fit_many` stacks only sets of one size, so a retraining
batches less well than the training (a few stacks per slice across the K problems).

Choices where the paper or the reference is silent, or where we differ:
- Partition: `torch.randperm` seeded per problem (`derived_seed`: a stream no forget-set draw
  uses), shards and slices by `torch.tensor_split` (sizes differ by at most one row). The
  reference's uniform split (`distribution.py`) cuts the rows in *file order* (a dataset sorted by
  class gives class-skewed shards) and gives the remainder to the last shard; the paper assumes a
  uniform random partition. Its request generator (`distribution.py --requests`) draws unseeded,
  with repeats, and its exponential draws are overwritten by uniform ones (an `if` that should be
  `elif`); here the forget set is the caller's.
- Per-slice training (`SisaConfig.slice_epochs`): `train` (default) runs the dataset preset's own
  training rule `config.train` on each cumulative slice (the MLP presets train to a loss level,
  MNIST 14 epochs); `paper` gives slice r the reference's schedule, int((r+1)a) − int(ra)
  epochs with a = 2e/(R+1) (`sisa.py`, `avg_epochs_per_slice`), e = the preset's epoch count,
  so slicing costs what e epochs on the whole shard cost; it needs a `fixed_epochs` preset.
- Each slice is one `fit` run with a fresh optimizer (and, for MNIST, its lr decay restarted);
  a checkpoint is the weights alone. So resuming from a checkpoint is exactly the procedure that
  made it: a retrained shard equals the shard SISA would have trained without the removed rows.
  The reference carries one optimizer across the slices of a full training but starts a fresh
  one when it resumes from a checkpoint, which is only equivalent for its stateless SGD default
  (with `--optimizer adam` a retrained shard follows a different procedure).
- Shuffling: slice r of shard s shuffles with its own seed (reproducible, independent of which
  other shards train beside it). The reference never shuffles (`sharded.fetchShardBatch` walks
  the shard in a fixed order every epoch) and resumes a partial slice one epoch early
  (a checkpoint saved after epoch e restarts at e).
- Aggregation: the mean of the softmaxes (the issue's rule, and the reference's `--output_type
  softmax`); the reference's default is a majority vote of argmax labels, which has no scores
  for the audit's attacks.
- Seeds: every seed SISA draws (partition, constituent inits, each slice's shuffling) is
  `derived_seed`, a hash of (purpose, config.seed, shard, slice) to 32 bits: torch's CPU generator
  keeps only a seed's low 32 bits (manual_seed(2**33) draws what manual_seed(0) draws), so offset
  or strided seeds wrap onto small ones. Seeded with config.seed itself, the partition would be
  the very permutation `forget_sets` draws a random forget set from, and every forget point of
  the audit's first model would fall in its shard 0. Inits are independent of the original's,
  and redrawn (`fresh_model`) only while constant on the shard's first slice, so a
  retrain from slice 0 redraws on the remaining rows. A slice left empty by a removal is skipped
  (its checkpoint is the one before); a shard left empty leaves the ensemble.
- Forget policy `replace` (paper 000's synthetic set): a removed row is replaced in its slice by
  its replacement point, as the oracle set does; `remove` drops it.
- `on_epoch` is not called: there is no single model whose epochs it could follow.
- MNIST's ConvNet does not stack: its constituents train one by one with `train.fit`; the MLPs
  train as `ensemble.fit_many` batches of every constituent (of every problem) of one size.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from ..config import Convergence, check_choice, check_int
from ..data import Data
from ..training.ensemble import fit_many, stack_reason
from ..training.train import TrainRecord, fit, fresh_model
from .base import UnlearnResult, register
from .space import Int, Space

PAPER = ("Bourtoule et al.: Machine Unlearning (IEEE S&P 2021), SISA training; reference "
         "cleverhans-lab/machine-unlearning")
SLICE_EPOCHS = ("train", "paper")
MAX_SHARDS = 1_000       # bounds of the settings
MAX_SLICES = 1_000


@dataclass(frozen=True)
class SisaConfig:
    """S shards × R slices and the per-slice training rule (see the module docstring)."""

    # 5: the reference's example (example-scripts/purchase-sharding: `init.sh 5`, `train.sh 5`);
    # its `aggregation.py --shards` default 1 would be one model, no sharding at all.
    shards: int = 5
    # 1: the reference's `sisa.py --slices` default (no slicing: checkpoint = the init).
    slices: int = 1
    # `train`: config.train per cumulative slice; `paper`: sisa.py's avg_epochs_per_slice schedule.
    slice_epochs: str = "train"

    def __post_init__(self):
        check_int("shards", self.shards, 1, MAX_SHARDS)
        check_int("slices", self.slices, 1, MAX_SLICES)
        check_choice("slice_epochs", self.slice_epochs, SLICE_EPOCHS)


class ShardEnsemble(nn.Module):
    """The constituents as one model: log of the mean softmax (multiclass), logit of the mean
    sigmoid (binary), mean prediction (regression). `trained_rows[s]`: every row constituent s
    ever trained on (row ids of the training set; n + i: the replacement of row i);
    `restarts[s]`: the slice it was retrained from by the last removal (None: kept as trained)."""

    def __init__(self, models, task: str, trained_rows=None, restarts=None):
        super().__init__()
        self.constituents = nn.ModuleList(models)
        self.task = task
        self.trained_rows = list(trained_rows or [])
        self.restarts = list(restarts or [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([m(x) for m in self.constituents])
        log_s = torch.log(torch.tensor(float(len(self.constituents)), device=outs.device))
        if self.task == "multiclass":
            return torch.logsumexp(F.log_softmax(outs, dim=-1), dim=0) - log_s
        if self.task == "binary":
            log_p = torch.logsumexp(F.logsigmoid(outs), dim=0) - log_s
            log_q = torch.logsumexp(F.logsigmoid(-outs), dim=0) - log_s
            return log_p - log_q
        return outs.mean(0)


@dataclass
class Shard:
    """One constituent: its slices' row ids, checkpoints[r] = weights before slice r (r = 0: the
    init, r = R: the final model), the rows each slice's step trained on and its cost records."""

    index: int
    slices: list[torch.Tensor]
    checkpoints: list[dict] = field(default_factory=list)
    seen: list[torch.Tensor] = field(default_factory=list)
    records: list[TrainRecord] = field(default_factory=list)
    redraws: int = 0
    restart: int | None = None

    def rows(self, r: int) -> torch.Tensor:
        """The cumulative rows of slices 0..r."""
        return torch.cat(self.slices[:r + 1])

    def trained_rows(self) -> torch.Tensor:
        return torch.unique(torch.cat(self.seen)) if self.seen else torch.empty(0, dtype=torch.long)

    @property
    def empty(self) -> bool:
        return not any(len(s) for s in self.slices)


@dataclass
class Problem:
    """One SISA run (one seed): its data table and its shards (what SISA keeps of the `methods.Problem`
    it was handed, with the state it builds)."""

    data: Data
    config: object
    x: torch.Tensor          # training rows, then (policy `replace`) the replacement rows
    y: torch.Tensor
    shards: list[Shard]
    model_of: dict = field(default_factory=dict)

    @property
    def settings(self) -> SisaConfig:
        return self.config.method_settings("sisa")


def partition(n: int, shards: int, slices: int, seed: int) -> list[list[torch.Tensor]]:
    """Row ids of every shard's slices: a seeded permutation of 0..n-1, cut in S shards, each in R slices."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [list(torch.tensor_split(s, slices)) for s in torch.tensor_split(perm, shards)]


def derived_seed(purpose: str, seed: int, shard: int = 0, r: int = 0) -> int:
    """A 32-bit seed for one of SISA's draws (`partition`, `init`, `slice`), from the run's seed, the
    shard and the slice: the same in training and in retraining, apart from every other draw."""
    digest = hashlib.sha256(f"sisa:{purpose}:{seed}:{shard}:{r}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def slice_rule(config, r: int):
    """The training rule of slice r's step (None: a step of 0 epochs, skipped)."""
    cfg = config.method_settings("sisa")
    if cfg.slice_epochs == "train":
        return config.train
    a = 2 * config.train.convergence.max_epochs / (cfg.slices + 1)   # sisa.py: avg_epochs_per_slice
    epochs = int((r + 1) * a) - int(r * a)
    return replace(config.train, convergence=Convergence("fixed_epochs", 0.0, epochs)) if epochs else None


def _table(data: Data, config) -> tuple[torch.Tensor, torch.Tensor]:
    if config.forget_policy == "replace":
        return torch.cat([data.x_train, data.x_replacement]), torch.cat([data.y_train, data.y_replacement])
    return data.x_train, data.y_train


def _init(problem: Problem, shard: Shard, device) -> nn.Module:
    """A fresh constituent (the checkpoint before slice 0), redrawn while constant on slice 0's rows."""
    d = problem.data
    first = shard.slices[0]
    probe = Data(d.name, d.task, problem.x[first], problem.y[first], d.x_test[:0], d.y_test[:0], d.num_classes)
    model, shard.redraws = fresh_model(probe, derived_seed("init", problem.config.seed, shard.index), device)
    return model


def _fit_group(jobs, rule, task: str, device) -> list[TrainRecord]:
    """Train every (problem, shard, model, rows, seed) of `jobs` (one set size) on its rows with `rule`."""
    xs = [p.x[rows] for p, _, _, rows, _ in jobs]
    ys = [p.y[rows] for p, _, _, rows, _ in jobs]
    models = [m for _, _, m, _, _ in jobs]
    seeds = [s for *_, s in jobs]
    if stack_reason(models[0]) is None:
        return fit_many(models, xs, ys, task, rule, seeds=seeds, device=device)
    return [fit(m, x, y, task, rule, seed=s, device=device) for m, x, y, s in zip(models, xs, ys, seeds, strict=True)]


def _step(jobs_at_r, r: int, device) -> None:
    """Slice r's step for every (problem, shard) given: skip empty slices, group by set size and rule."""
    groups: dict = {}
    for problem, shard in jobs_at_r:
        rule = slice_rule(problem.config, r)
        rows = shard.rows(r)
        if rule is None or not len(shard.slices[r]):
            shard.seen.append(torch.empty(0, dtype=torch.long))      # nothing new: the checkpoint carries over
            continue
        seed = derived_seed("slice", problem.config.seed, shard.index, r)
        job = (problem, shard, problem.model_of[shard.index], rows, seed)
        groups.setdefault((len(rows), rule), []).append(job)
    for (_, rule), jobs in groups.items():
        recs = _fit_group(jobs, rule, jobs[0][0].data.task, device)
        for (_, shard, _, rows, _), rec in zip(jobs, recs, strict=True):
            shard.records.append(rec)
            shard.seen.append(rows)


def _train_from(work: list[tuple[Problem, Shard, int]], device) -> None:
    """Run each (problem, shard, start) from slice `start` to the end, checkpointing after every
    slice (in place). Start 0: a fresh init; else `problem.model_of` holds the shard's model,
    which is set to the checkpoint before slice `start`."""
    n_slices = max((len(s.slices) for _, s, _ in work), default=0)
    for problem, shard, start in work:
        if start == 0:
            problem.model_of[shard.index] = _init(problem, shard, device)
            shard.checkpoints = [copy.deepcopy(problem.model_of[shard.index].state_dict())]
        else:
            problem.model_of[shard.index].load_state_dict(shard.checkpoints[start])
            shard.checkpoints = shard.checkpoints[:start + 1]
    for r in range(n_slices):
        active = [(p, s) for p, s, start in work if start <= r]
        _step(active, r, device)
        for p, s in active:
            s.checkpoints.append(copy.deepcopy(p.model_of[s.index].state_dict()))


def train_shards(datas, configs, device) -> tuple[list[Problem], float]:
    """SISA training of K problems (one data and config each): every shard from its init through
    every slice. Returns the problems and the wall time of the whole batch."""
    problems = []
    for d, c in zip(datas, configs, strict=True):
        cfg = c.method_settings("sisa")
        x, y = _table(d, c)
        cuts = partition(d.n_train, cfg.shards, cfg.slices, derived_seed("partition", c.seed))
        problems.append(Problem(d, c, x, y, [Shard(i, sl) for i, sl in enumerate(cuts)]))
    t0 = time.perf_counter()
    _train_from([(p, s, 0) for p in problems for s in p.shards], device)
    return problems, time.perf_counter() - t0


def _drop(shard: Shard, forget: torch.Tensor, n: int, policy: str) -> tuple[Shard, int | None]:
    """A copy of `shard` without the `forget` rows (or with their replacements, ids n + i), and the
    first slice that held one (None: untouched)."""
    hit = [bool(torch.isin(s, forget).any()) for s in shard.slices]
    if not any(hit):
        return shard, None
    if policy == "replace":
        slices = [torch.where(torch.isin(s, forget), s + n, s) for s in shard.slices]
    else:
        slices = [s[~torch.isin(s, forget)] for s in shard.slices]
    first = hit.index(True)
    new = Shard(shard.index, slices, list(shard.checkpoints), shard.seen[:first],
                [], shard.redraws, restart=first)
    return new, first


def remove(problems: list[Problem], forgets, device) -> tuple[list[Problem], float]:
    """Unlearn `forgets[k]` from problem k: the shards that held a removed row retrain from the
    checkpoint before their first such slice; the others keep their trained model bit for bit.
    Returns new problems (the given ones are left unchanged) and the wall time of the batch."""
    t0 = time.perf_counter()
    out, work = [], []
    for p, forget in zip(problems, forgets, strict=True):
        dropped = [_drop(shard, forget, p.data.n_train, p.config.forget_policy) for shard in p.shards]
        q = Problem(p.data, p.config, p.x, p.y, [s for s, _ in dropped],
                    {i: copy.deepcopy(m) for i, m in p.model_of.items()})
        work += [(q, s, first) for s, first in dropped if first is not None]
        out.append(q)
    _train_from(work, device)
    return out, time.perf_counter() - t0


def ensemble(problem: Problem) -> ShardEnsemble:
    """The problem's constituents (every shard that still holds a row) as one model, eval mode."""
    kept = [s for s in problem.shards if not s.empty]
    models = [problem.model_of[s.index].eval() for s in kept]
    return ShardEnsemble(models, problem.data.task, [s.trained_rows() for s in kept],
                         [s.restart for s in kept]).eval()


def _total(recs: list[TrainRecord], n_rows: int, what: str) -> dict:
    samples = sum(r.samples for r in recs)
    return {f"{what}_seconds": sum(r.seconds for r in recs), f"{what}_epochs": sum(r.epochs for r in recs),
            f"{what}_steps": sum(r.steps for r in recs), f"{what}_samples": samples,
            f"{what}_data_passes": samples / max(n_rows, 1)}


def _result(trained: Problem, unlearned: Problem, k: int, seconds: float) -> UnlearnResult:
    """Problem k's UnlearnResult: the removal's cost as `cost`, the training's in `details`."""
    cfg = unlearned.settings
    hit = [s for s in unlearned.shards if s.restart is not None]
    recs = [r for s in hit for r in s.records]
    n_left = sum(len(s.rows(len(s.slices) - 1)) for s in unlearned.shards)
    cost = _total(recs, n_left, "retrain")
    rec = TrainRecord(epochs=cost["retrain_epochs"], steps=cost["retrain_steps"], samples=cost["retrain_samples"],
                      seconds=cost["retrain_seconds"], converged=all(r.converged for r in recs) if recs else None,
                      hit_cap=any(r.hit_cap for r in recs), collapsed=any(r.collapsed for r in recs),
                      rule=f"SISA: retrain {len(hit)} of {cfg.shards} shards from their last clean slice "
                           f"({cfg.slices} slice{'s' if cfg.slices > 1 else ''}; each: {_describe(unlearned.config)})",
                      batch_models=k, batch_seconds=seconds)
    details = {"shards": cfg.shards, "slices": cfg.slices, "shards_retrained": len(hit),
               "slices_retrained": sum(len(s.slices) - s.restart for s in hit),
               "shards_emptied": sum(s.empty for s in unlearned.shards), "train_size": n_left,
               "init_redraws": sum(s.redraws for s in trained.shards),
               "retrain_data_passes": cost["retrain_data_passes"],
               **_total([r for s in trained.shards for r in s.records], trained.data.n_train, "training")}
    return UnlearnResult("sisa", ensemble(unlearned), rec, details)


def _describe(config) -> str:
    cfg = config.method_settings("sisa")
    if cfg.slice_epochs == "train":
        return config.train.convergence.describe()
    return f"2e/(R+1) epochs, e = {config.train.convergence.max_epochs}"


def _validate(data, model, config, forget) -> None:
    cfg = config.method_settings("sisa")
    if cfg.shards * cfg.slices > data.n_train:
        raise ValueError(f"method 'sisa': shards × slices = {cfg.shards} × {cfg.slices} = "
                         f"{cfg.shards * cfg.slices} exceeds the {data.n_train} training rows of {data.name}; "
                         "every slice needs at least one row: use fewer shards or slices")
    if cfg.slice_epochs == "paper" and config.train.convergence.rule != "fixed_epochs":
        raise ValueError(f"method 'sisa': slice_epochs='paper' spreads a fixed number of epochs over the slices, "
                         f"but {data.name}'s training rule is {config.train.convergence.describe()!r}; "
                         "use slice_epochs='train'")


# Ranges that fit the 10-point synthetic set (S × R <= 10) as well as digits' 1,438 rows.
SEARCH = Space({"shards": Int(2, 5), "slices": Int(1, 2)}, does_little=False)      # exact: always a shard ensemble


@register("sisa", settings=SisaConfig, paper=PAPER, validate=_validate, search=SEARCH, batched=True)
def sisa(problems) -> list[UnlearnResult]:
    """Exact unlearning by S shards × R slices: retrain only the affected shards from their last clean slice.

    The K problems at once: every problem's shards trained (one `fit_many` batch per slice and set
    size where the model stacks), then the affected shards of each retrained.
    """
    device = problems[0].trained.device
    runs, _ = train_shards([p.data for p in problems], [p.config for p in problems], device)
    unlearned, seconds = remove(runs, [p.forget for p in problems], device)
    return [_result(r, u, len(runs), seconds) for r, u in zip(runs, unlearned, strict=True)]
