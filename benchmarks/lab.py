"""The session's shared work: data, trained originals and oracles, each computed once.

A `Lab` caches, per profile part ("paper" or "grid"), the dataset at its scale, the
trained control model `m_c` per (dataset, seed), and the reference (oracle `m_o` and
both models' outputs) per (dataset, seed, forget set). Benchmarks that time a
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

import pytest
import torch

from unlearning.common import schema
from unlearning.common.files import json_safe
from unlearning.config import Config, get_config
from unlearning.data import Data, DataUnavailableError
from unlearning.data.registry import Scale, get_dataset, load_dataset, names
from unlearning.evaluation.audit import Panel, build_panel
from unlearning.methods import get_method, unlearn_many
from unlearning.running.experiment import ORACLE, Reference, select_forget
from unlearning.training import throughput
from unlearning.training.ensemble import stack_reason, train_originals
from unlearning.training.train import Trained

from .profiles import Profile

log = logging.getLogger("benchmarks")


class Lab:
    def __init__(self, profile: Profile, device: torch.device | None = None):
        self.profile = profile
        self.device = device
        self._data: dict = {}
        self._trained: dict = {}
        self._oracles: dict = {}
        self._refs: dict = {}
        self._results: dict = {}       # (method, dataset, size, part, config) -> {seed: (result, series)} not yet used
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

    def config(self, dataset: str, seed: int, part: str = "paper", **overrides) -> Config:
        """The paper preset for `dataset`, with this profile's epoch cap and the lab's device."""
        cfg = get_config(dataset, seed=seed, device=str(self.device) if self.device else None)
        cfg = cfg.with_epoch_cap(self.scale(dataset, part).max_epochs)
        return dataclasses.replace(cfg, **overrides) if overrides else cfg

    # -- cached work -----------------------------------------------------------------------------
    def data(self, dataset: str, part: str = "paper", seed: int = 0) -> Data:
        """The dataset at this part's scale; skips the test (with the loader's reason) when absent.

        A dataset whose spec says `new_draw_per_seed` (the synthetic set) is drawn per
        seed (each trial a new draw, as in the paper); others are loaded once and subset
        with a fixed seed.
        """
        key = (dataset, part, seed if get_dataset(dataset).new_draw_per_seed else 0)
        if key not in self._data:
            try:
                data = load_dataset(dataset, seed=key[2])
            except DataUnavailableError as exc:
                pytest.skip(f"{dataset} data unavailable: {exc}")
            sc = self.scale(dataset, part)
            if sc.train is not None or sc.test is not None:
                data = data.subset(sc.train, sc.test, seed=0)
            self._data[key] = data
        return self._data[key]

    def seeds(self, dataset: str, part: str) -> tuple[int, ...]:
        """The seeds this profile runs `dataset` with in `part`: what the lab trains together."""
        if part == "grid":
            return tuple(self.profile.grid.seeds)
        return tuple(self.profile.paper000.trials.get(dataset, ()))

    def batch(self, dataset: str, seed: int, part: str, config: Config,
              method: str | None = None) -> tuple[list[int], list[Config]]:
        """The seeds to run with `seed` as one `fit_many` batch (the profile's seeds of this
        dataset and part, when `seed` is one of them, the model stacks and `method`, if
        given, is `batched`; else `seed` alone), and their configs (`config` with each seed)."""
        seeds = list(self.seeds(dataset, part))
        if (seed not in seeds or len(seeds) < 2 or stack_reason(get_dataset(dataset).build_model())
                or (method is not None and not get_method(method).batched)):
            seeds = [seed]
        return seeds, [dataclasses.replace(config, seed=s) for s in seeds]

    def trained(self, dataset: str, seed: int, part: str = "paper", given: Trained | None = None) -> Trained:
        """The control model of (dataset, seed, part); the profile's seeds are trained together."""
        key = (dataset, seed, part)
        if given is not None:
            self._trained[key] = given
            self._built("originals", (dataset, part, seed), None)
        if key not in self._trained:
            seeds, configs = self.batch(dataset, seed, part, self.config(dataset, seed, part))
            seeds, configs = zip(*[(s, c) for s, c in zip(seeds, configs, strict=True)
                                   if (dataset, s, part) not in self._trained], strict=True)
            log.info("training original %s seeds %s (%s)", dataset, seeds, part)
            started = time.perf_counter()
            datas = [self.data(dataset, part, s) for s in seeds]
            got = train_originals(datas, list(configs))
            self._trained.update({(dataset, s, part): t for s, t in zip(seeds, got, strict=True)})
            for s in seeds:
                self._built("originals", (dataset, part, s), started, share=len(seeds))
        return self._trained[key]

    def forget(self, dataset: str, seed: int, size: int, part: str = "paper") -> torch.Tensor:
        data = self.data(dataset, part, seed)
        if size >= data.n_train:
            pytest.skip(f"removal size {size} needs more than the {data.n_train} training points of {dataset}")
        return select_forget(data, size, seed)

    def oracle(self, dataset: str, seed: int, size: int, part: str = "paper", given=None, config=None):
        """Naive retraining on the forget set of (dataset, seed, size): the oracle, computed once.

        It is computed as the timed naive-retraining cell computes it: with the profile's other seeds of the dataset
        as one `unlearn_many` batch where the model stacks (`batch`), so that an oracle is the same bits whichever
        cell needs it first (in a sharded run, a shard may start with a cell that compares with it)."""
        key = (dataset, seed, size, part)
        if given is not None:
            self._oracles[key] = given
            self._built("oracle", key, None)
        if key not in self._oracles:
            cfg = config or self.config(dataset, seed, part)
            seeds, configs = self.batch(dataset, seed, part, cfg, ORACLE)
            log.info("retraining oracle %s seeds %s n=%d (%s)", dataset, seeds, size, part)
            trained = [self.trained(dataset, s, part) for s in seeds]
            started = time.perf_counter()
            results = unlearn_many(ORACLE, trained, [self.data(dataset, part, s) for s in seeds],
                                   [self.forget(dataset, s, size, part) for s in seeds], configs)
            for s, result in zip(seeds, results, strict=True):
                self._oracles.setdefault((dataset, s, size, part), result)
                self._built("oracle", (dataset, s, size, part), started, share=len(seeds))
        return self._oracles[key]

    def _batch_inputs(self, method, dataset, size, part, seeds, configs, track):
        """The arguments of `unlearn_many` for one batch (everything untimed is computed here),
        and per seed its (S/d series, on_epoch) pair: empty series and no callback for the
        oracle with `track` (its loss curve only), None without `track`."""
        datas = [self.data(dataset, part, s) for s in seeds]
        trained = [self.trained(dataset, s, part) for s in seeds]
        forgets = [self.forget(dataset, s, size, part) for s in seeds]
        series = [((None, None) if not track else ({}, None) if method == ORACLE
                   else self.reference(dataset, s, size, part).tracker()) for s in seeds]
        return (method, trained, datas, forgets, configs), series

    @staticmethod
    def sets(dataset: str) -> tuple[str, ...]:
        return get_dataset(dataset).eval_sets

    def reference(self, dataset: str, seed: int, size: int, part: str = "paper") -> Reference:
        key = (dataset, seed, size, part)
        if key not in self._refs:
            cfg = self.config(dataset, seed, part)
            self._refs[key] = Reference(self.data(dataset, part, seed), self.trained(dataset, seed, part),
                                        self.forget(dataset, seed, size, part),
                                        self.oracle(dataset, seed, size, part), cfg,
                                        d_on=get_dataset(dataset).d_on, sets=self.sets(dataset))
        return self._refs[key]

    def timed_unlearn(self, benchmark, method: str, dataset: str, seed: int, size: int, part: str = "paper",
                      config: Config | None = None, track: bool = False):
        """Time one unlearning operation (once: `pedantic`, rounds=1) and return (record, result).

        The profile's seeds of a dataset whose model stacks run as one batch
        (`methods.unlearn_many`): the first seed's cell times the whole batch, the others
        take their results from it (pytest-benchmark's own time for them is ~0; the
        records' `seconds` is each model's amortised share, `batch_seconds` the batch's).
        Naive retraining hands its models to the lab as the oracles of their forget sets, so
        no oracle is trained twice; other methods are compared with those oracles.
        `track` records the per-epoch S / d / loss series.
        """
        cfg = config or self.config(dataset, seed, part)
        seeds, configs = self.batch(dataset, seed, part, cfg, method)
        key = (method, dataset, size, part, json.dumps(dataclasses.replace(cfg, seed=0).as_dict(), sort_keys=True))
        done = self._results.setdefault(key, {})
        if seed not in done:
            args, series = self._batch_inputs(method, dataset, size, part, seeds, configs, track)
            results = benchmark.pedantic(unlearn_many, args=args, kwargs={"on_epoch": [s[1] for s in series]},
                                         rounds=1, iterations=1)
            if method == ORACLE:
                for s, result in zip(seeds, results, strict=True):
                    self.oracle(dataset, s, size, part, given=result)
            done.update({s: (r, ser[0]) for s, r, ser in zip(seeds, results, series, strict=True)})
        else:
            benchmark.pedantic(done.get, args=(seed,), rounds=1, iterations=1)
        result, series = done.pop(seed)
        rec = self.reference(dataset, seed, size, part).record(method, result.cost, result.model, result.details,
                                                               series)
        if method == ORACLE and track:                                 # and the control's, for paper 000's plot
            trained = self.trained(dataset, seed, part)
            rec.update(control_loss_series=list(trained.record.loss_history),
                       control_initial_loss=trained.record.initial_loss)
        return rec, result


    # -- the forgetting audit -------------------------------------------------------------------
    def n_models(self, dataset: str) -> int:
        """Models per group in the forgetting audit: more where the model stacks (one batch)."""
        f = self.profile.forgetting
        return f.n_models if stack_reason(get_dataset(dataset).build_model()) is None else f.n_models_unstacked

    def panel(self, dataset: str, regime: str, size: int) -> Panel:
        """The forgetting panel of (dataset, regime, size): N originals and N reference models,
        trained once (untimed); skipped with the reason when the forget set cannot be drawn."""
        key = (dataset, regime, size)
        if key not in self._panels:
            data = self.data(dataset, "forgetting", self.profile.forgetting.seed)
            cfg = self.config(dataset, self.profile.forgetting.seed, "forgetting")
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
