"""The session's shared work: data, trained originals and oracles, each computed once.

A `Lab` caches, per `Cell` (dataset, seed, removal size, profile part: one frozen key), the
dataset at its part's scale, the trained control model `m_c` (the cell without its size), and
the reference (oracle `m_o` and both models' outputs) of its forget set. Benchmarks that time a
computation the lab also needs (training the original, naive retraining) hand their
result to the lab, so nothing is trained twice. The cache lives in memory for one
pytest session; nothing is written to disk, so it can never be stale across code,
config or torch versions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass

import pytest
import torch

from unlearning import get_config
from unlearning.common import schema
from unlearning.common.files import json_safe
from unlearning.config import Config
from unlearning.data import Data, DataUnavailableError
from unlearning.data.registry import get_dataset, names
from unlearning.evaluation.audit import Panel, build_panel
from unlearning.methods import get_method, unlearn_many
from unlearning.running.experiment import ORACLE, Reference, select_forget
from unlearning.training import throughput
from unlearning.training.ensemble import stack_reason, train_originals
from unlearning.training.models import model_for
from unlearning.training.train import Trained

from .profiles import Profile, Scale

log = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Cell:
    """One cell's name: a dataset at one part's scale (`paper`, `grid`, `forgetting`), one seed, one removal
    size (None where the work does not depend on it: the data, the originals). Hashable: the Lab's caches are
    keyed by it."""

    dataset: str
    seed: int = 0
    size: int | None = None
    part: str = "paper"

    def with_seed(self, seed: int) -> Cell:
        return dataclasses.replace(self, seed=seed)

    @property
    def originals(self) -> Cell:
        """The key of what does not depend on the removal size (the data's draw, the trained originals)."""
        return dataclasses.replace(self, size=None)


class Lab:
    def __init__(self, profile: Profile, device: torch.device | None = None):
        self.profile = profile
        self.device = device
        self._data: dict[Cell, Data] = {}
        self._trained: dict[Cell, Trained] = {}
        self._oracles: dict[Cell, object] = {}
        self._refs: dict[Cell, Reference] = {}
        self._results: dict = {}       # (method, cell with seed 0, config) -> {seed: (result, series)} not yet used
        self._panels: dict = {}        # (dataset, regime, size) -> forgetting Panel
        self._panel_oracles: dict = {}  # (dataset, regime, size) -> naive retraining of the panel's originals
        self._panel_originals: dict = {}  # dataset -> originals the panels of unchanged data share (build_panel)
        self.built: list[dict] = []    # what this session trained before cells could use it (`unlearning.bench.shards`)

    def _built(self, what: str, key: tuple, started: float | None, share: int = 1) -> None:
        """Note one build and its untimed seconds (`share`: of a batch of that many; `started` None: a timed cell
        handed it over, its time is the cell's): in a sharded run the same entry in two shards is work the split
        duplicated (`unlearning.bench.shards.duplicated_work`)."""
        seconds = 0.0 if started is None else (time.perf_counter() - started) / share
        self.built.append({"what": what, "key": "/".join(map(str, key)), "seconds": seconds, "cell": started is None})

    # -- configuration ---------------------------------------------------------------------------
    def scale(self, dataset: str, part: str) -> Scale:
        return self.profile.scale(dataset, part)

    def config(self, cell: Cell, **overrides) -> Config:
        """The paper preset of the cell's dataset and seed, with its part's epoch cap and the lab's device."""
        cfg = get_config(cell.dataset, seed=cell.seed, device=str(self.device) if self.device else None)
        cfg = cfg.with_epoch_cap(self.scale(cell.dataset, cell.part).max_epochs)
        return dataclasses.replace(cfg, **overrides) if overrides else cfg

    # -- cached work -----------------------------------------------------------------------------
    def data(self, cell: Cell) -> Data:
        """The cell's dataset at its part's scale (it carries its spec: `Data.spec`); skips the test (with the
        loader's reason) when absent.

        A dataset whose spec says `new_draw_per_seed` (the synthetic set) is drawn per
        seed (each trial a new draw, as in the paper); others are loaded once and subset
        with a fixed seed.
        """
        spec = get_dataset(cell.dataset)
        key = Cell(cell.dataset, cell.seed if spec.new_draw_per_seed else 0, None, cell.part)
        if key not in self._data:
            try:
                data = spec.load(seed=key.seed)
            except DataUnavailableError as exc:
                pytest.skip(f"{cell.dataset} data unavailable: {exc}")
            sc = self.scale(cell.dataset, cell.part)
            if sc.train is not None or sc.test is not None:
                data = data.subset(sc.train, sc.test, seed=0)
            self._data[key] = data
        return self._data[key]

    def seeds(self, cell: Cell) -> tuple[int, ...]:
        """The seeds this profile runs the cell's dataset with in its part: what the lab trains together."""
        if cell.part == "grid":
            return tuple(self.profile.grid.seeds)
        return tuple(self.profile.paper000.trials.get(cell.dataset, ()))

    def batch(self, cell: Cell, config: Config, method: str | None = None) -> tuple[list[Cell], list[Config]]:
        """The cells to run with `cell` as one `fit_many` batch (the cell at each of the profile's seeds of its
        dataset and part, when its seed is one of them, the model stacks and `method`, if given, is `batched`; else
        `cell` alone), and their configs (`config` with each seed)."""
        seeds = list(self.seeds(cell))
        if (cell.seed not in seeds or len(seeds) < 2 or stack_reason(model_for(self.data(cell)))
                or (method is not None and not get_method(method).batched)):
            seeds = [cell.seed]
        return [cell.with_seed(s) for s in seeds], [dataclasses.replace(config, seed=s) for s in seeds]

    def trained(self, cell: Cell, given: Trained | None = None) -> Trained:
        """The control model of the cell's dataset, seed and part; the profile's seeds are trained together."""
        key = cell.originals
        if given is not None:
            self._trained[key] = given
            self._built("originals", (key.dataset, key.part, key.seed), None)
        if key not in self._trained:
            cells, configs = self.batch(key, self.config(key))
            cells, configs = zip(*[(c, cfg) for c, cfg in zip(cells, configs, strict=True)
                                   if c not in self._trained], strict=True)
            log.info("training original %s seeds %s (%s)", key.dataset, tuple(c.seed for c in cells), key.part)
            started = time.perf_counter()
            got = train_originals([self.data(c) for c in cells], list(configs))
            self._trained.update(zip(cells, got, strict=True))
            for c in cells:
                self._built("originals", (c.dataset, c.part, c.seed), started, share=len(cells))
        return self._trained[key]

    def forget(self, cell: Cell) -> torch.Tensor:
        data = self.data(cell)
        if cell.size >= data.n_train:
            pytest.skip(f"removal size {cell.size} needs more than the {data.n_train} training points of "
                        f"{cell.dataset}")
        return select_forget(data, cell.size, cell.seed)

    def oracle(self, cell: Cell, given=None, config=None):
        """Naive retraining on the cell's forget set: the oracle, computed once.

        It is computed as the timed naive-retraining cell computes it: with the profile's other seeds of the dataset
        as one `unlearn_many` batch where the model stacks (`batch`), so that an oracle is the same bits whichever
        cell needs it first (in a sharded run, a shard may start with a cell that compares with it)."""
        if given is not None:
            self._oracles[cell] = given
            self._built("oracle", _oracle_key(cell), None)
        if cell not in self._oracles:
            cfg = config or self.config(cell)
            cells, configs = self.batch(cell, cfg, ORACLE)
            log.info("retraining oracle %s seeds %s n=%d (%s)", cell.dataset, tuple(c.seed for c in cells),
                     cell.size, cell.part)
            trained = [self.trained(c) for c in cells]
            started = time.perf_counter()
            results = unlearn_many(ORACLE, trained, [self.data(c) for c in cells], [self.forget(c) for c in cells],
                                   configs)
            for c, result in zip(cells, results, strict=True):
                self._oracles.setdefault(c, result)
                self._built("oracle", _oracle_key(c), started, share=len(cells))
        return self._oracles[cell]

    def _batch_inputs(self, method, cells, configs, track):
        """The arguments of `unlearn_many` for one batch (everything untimed is computed here),
        and per cell its (S/d series, on_epoch) pair: empty series and no callback for the
        oracle with `track` (its loss curve only), None without `track`."""
        datas = [self.data(c) for c in cells]
        trained = [self.trained(c) for c in cells]
        forgets = [self.forget(c) for c in cells]
        series = [((None, None) if not track else ({}, None) if method == ORACLE
                   else self.reference(c).tracker()) for c in cells]
        return (method, trained, datas, forgets, configs), series

    def reference(self, cell: Cell) -> Reference:
        if cell not in self._refs:
            cfg = self.config(cell)
            data = self.data(cell)
            self._refs[cell] = Reference(data, self.trained(cell), self.forget(cell), self.oracle(cell), cfg,
                                         d_on=data.spec.d_on, sets=data.spec.eval_sets)
        return self._refs[cell]

    def timed_unlearn(self, benchmark, method: str, cell: Cell, config: Config | None = None, track: bool = False):
        """Time one unlearning operation (once: `pedantic`, rounds=1) and return (record, result).

        The profile's seeds of a dataset whose model stacks run as one batch
        (`methods.unlearn_many`): the first seed's cell times the whole batch, the others
        take their results from it (pytest-benchmark's own time for them is ~0; the
        records' `seconds` is each model's amortised share, `batch_seconds` the batch's).
        Naive retraining hands its models to the lab as the oracles of their forget sets, so
        no oracle is trained twice; other methods are compared with those oracles.
        `track` records the per-epoch S / d / loss series.
        """
        cfg = config or self.config(cell)
        cells, configs = self.batch(cell, cfg, method)
        key = (method, cell.with_seed(0), json.dumps(dataclasses.replace(cfg, seed=0).as_dict(), sort_keys=True))
        done = self._results.setdefault(key, {})
        if cell.seed not in done:
            args, series = self._batch_inputs(method, cells, configs, track)
            results = benchmark.pedantic(unlearn_many, args=args, kwargs={"on_epoch": [s[1] for s in series]},
                                         rounds=1, iterations=1)
            if method == ORACLE:
                for c, result in zip(cells, results, strict=True):
                    self.oracle(c, given=result)
            done.update({c.seed: (r, ser[0]) for c, r, ser in zip(cells, results, series, strict=True)})
        else:
            benchmark.pedantic(done.get, args=(cell.seed,), rounds=1, iterations=1)
        result, series = done.pop(cell.seed)
        rec = self.reference(cell).record(method, result.cost, result.model, result.details, series)
        if method == ORACLE and track:                                 # and the control's, for paper 000's plot
            trained = self.trained(cell)
            rec.update(control_loss_series=list(trained.record.loss_history),
                       control_initial_loss=trained.record.initial_loss)
        return rec, result


    # -- the forgetting audit -------------------------------------------------------------------
    def forgetting_cell(self, dataset: str) -> Cell:
        """The cell the forgetting panels of `dataset` draw their data and configs from (the audit's seed)."""
        return Cell(dataset, self.profile.forgetting.seed, None, "forgetting")

    def n_models(self, dataset: str) -> int:
        """Models per group in the forgetting audit: more where the model stacks (one batch)."""
        f = self.profile.forgetting
        stacks = stack_reason(model_for(self.data(self.forgetting_cell(dataset)))) is None
        return f.n_models if stacks else f.n_models_unstacked

    def panel(self, dataset: str, regime: str, size: int) -> Panel:
        """The forgetting panel of (dataset, regime, size): N originals and N reference models,
        trained once (untimed); skipped with the reason when the forget set cannot be drawn."""
        key = (dataset, regime, size)
        if key not in self._panels:
            cell = self.forgetting_cell(dataset)
            data, cfg = self.data(cell), self.config(cell)
            log.info("training forgetting panel %s %s n=%d (%d models per group)", dataset, regime, size,
                     self.n_models(dataset))
            started = time.perf_counter()
            try:
                self._panels[key] = build_panel(data, cfg, size, self.n_models(dataset), regime,
                                                shared=self._panel_originals.setdefault(dataset, {}))
            except ValueError as exc:
                if "removal size" not in str(exc):
                    raise
                pytest.skip(str(exc))
            self._built("panel", key, started)
        return self._panels[key]

    def panel_oracle(self, dataset: str, regime: str, size: int, given: list | None = None) -> list:
        """Naive retraining of the panel's originals, one per seed: each model's oracle."""
        key = (dataset, regime, size)
        if given is not None:
            self._panel_oracles[key] = given
            self._built("panel oracles", key, None)
        if key not in self._panel_oracles:
            panel, started = self.panel(dataset, regime, size), time.perf_counter()
            self._panel_oracles[key] = panel.run(ORACLE)
            self._built("panel oracles", key, started)
        return self._panel_oracles[key]


def _oracle_key(cell: Cell) -> tuple:
    """How `built` names an oracle (dataset/seed/size/part), as the shards' duplicated-work report reads it."""
    return cell.dataset, cell.seed, cell.size, cell.part


def _throughput(record: dict) -> dict:
    """FLOPs per training sample of the record's model, the GFLOP/s its training reached
    (amortised seconds) and that as a fraction of the measured GEMM peak of its device."""
    if record.get("dataset") not in names() or not record.get("device"):
        return {}
    flops = throughput.train_flops_per_sample(record["dataset"])
    seconds = record.get("seconds")
    return {"flops_per_sample": flops, "matmul_gflops": throughput.matmul_gflops(record["device"]),
            **throughput.achieved(flops, record.get("samples_processed") or 0, seconds or 0.0,
                                  throughput.matmul_gflops(record["device"]))}


def stamp(benchmark, profile: Profile, *, paper: str, table: str, record: dict, trial: int | None = None,
          optimizer: str | None = None, lr: float | None = None) -> dict:
    """Put one record into `benchmark.extra_info`, completed by `unlearning.common.schema.finish`
    (every required key, None where it does not apply) with the benchmark's context."""
    info = schema.finish(record, paper=paper, table=table, profile=profile.name, trial=trial,
                         optimizer=optimizer, lr=lr, load_avg_1m=os.getloadavg()[0],
                         threads=record.get("threads", torch.get_num_threads()), **_throughput(record))
    benchmark.extra_info.update(json_safe(info))
    return info
