"""Threads on a busy machine: the same training alone and beside competing processes, with one
torch thread and with the CPU budget (`unlearning.training.threads`), as ratios measured in one run.

Two models, one on each side of the policy's line (`threads.PARALLEL_MIN_FLOPS`):
- `digits-mlp`: digits' 64-32-16-10 MLP at its preset (Adam 1e-3, batch 32) on digits' rows,
  fixed epochs: the suite's small models, which the policy trains single-threaded.
- `mnist-convnet`: MNIST's 2-conv ConvNet at its preset (AdaDelta, batch 64) on MNIST-shaped
  random tensors (no download), fixed steps: the one model the policy gives the budget.

The load is `competitors` processes running small torch ops at torch's default thread count,
the situation of a shared node with several jobs (what the policy is for). Each is bounded in
time (it exits at its deadline or when this process goes away) and is stopped after the
loaded timings. Each setting is timed `repeats` times, alternating the thread settings, and the
median counts. No assertion on time: the ratios go into the record (`seconds_alone_1t`,
`seconds_alone_budget`, `seconds_loaded_1t`, `seconds_loaded_budget`, `thread_speedup_alone`,
`thread_speedup_loaded`, `load_slowdown_1t`, `load_slowdown_budget`), and the live line says them.
"""

from __future__ import annotations

import copy
import statistics

import pytest
import torch

from unlearning import get_config
from unlearning.config import Convergence, TrainConfig
from unlearning.data.registry import load_dataset
from unlearning.training import threads
from unlearning.training.models import build_model, seeded
from unlearning.training.train import fit

from .competitors import Competitors
from .lab import stamp


def mlp_case(profile):
    p = profile.threads
    data = load_dataset("digits")
    rows = min(p.mlp_rows, data.n_train)
    cfg = get_config("digits").train
    cfg = TrainConfig(cfg.optimizer, cfg.lr, cfg.batch_size, Convergence("fixed_epochs", 0.0, p.mlp_epochs))
    return "digits", data.x_train[:rows], data.y_train[:rows], "multiclass", cfg


def conv_case(profile):
    p = profile.threads
    cfg = get_config("mnist").train
    rows = cfg.batch_size * p.conv_steps
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 1, 28, 28, generator=gen)
    y = torch.randint(10, (rows,), generator=gen)
    cfg = TrainConfig(cfg.optimizer, cfg.lr, cfg.batch_size, Convergence("fixed_epochs", 0.0, 1))
    return "mnist", x, y, "multiclass", cfg


CASES = {"digits-mlp": mlp_case, "mnist-convnet": conv_case}


@pytest.mark.parametrize("case", sorted(CASES))
def test_threads_alone_and_loaded(benchmark, profile, progress, case):
    dataset, x, y, task, cfg = CASES[case](profile)
    p, cpus = profile.threads, threads.budget()
    with seeded(0):
        init = build_model(dataset)
    settings = {"1t": 1, "budget": cpus}

    def train(n: int) -> float:
        with threads.using(n):
            return fit(copy.deepcopy(init), x, y, task, cfg, seed=0, device="cpu").seconds

    def timed() -> dict[str, float]:
        train(1)                                          # warm-up (allocator, kernels)
        runs = {k: [] for k in settings}
        for _ in range(p.repeats):
            for key, n in settings.items():
                runs[key].append(train(n))
        return {k: statistics.median(v) for k, v in runs.items()}

    alone = timed()
    with Competitors(p.competitors):
        loaded = timed()
    chosen = threads.for_dataset(dataset)
    with threads.using(chosen):
        rec = benchmark.pedantic(fit, args=(copy.deepcopy(init), x, y, task, cfg),
                                 kwargs={"seed": 0, "device": "cpu"}, rounds=1, iterations=1)
    stamp(benchmark, profile, paper="overhead", table="threads", optimizer=cfg.optimizer, lr=cfg.lr, record={
        "dataset": dataset, "method": case, "seed": 0, "device": "cpu", "threads": chosen,
        "epochs": rec.epochs, "steps": rec.steps, "samples_processed": rec.samples, "seconds": rec.seconds,
        "thread_budget": cpus, "competitors": p.competitors,
        "seconds_alone_1t": alone["1t"], "seconds_alone_budget": alone["budget"],
        "seconds_loaded_1t": loaded["1t"], "seconds_loaded_budget": loaded["budget"],
        "thread_speedup_alone": alone["1t"] / alone["budget"], "thread_speedup_loaded": loaded["1t"] / loaded["budget"],
        "load_slowdown_1t": loaded["1t"] / alone["1t"], "load_slowdown_budget": loaded["budget"] / alone["budget"]})
    progress(f"{case}, policy {chosen} thread(s) of {cpus}: alone 1t {alone['1t']:.3f}s / {cpus}t "
             f"{alone['budget']:.3f}s; beside {p.competitors} competitors 1t {loaded['1t']:.3f}s / {cpus}t "
             f"{loaded['budget']:.3f}s ({cpus} threads {loaded['budget'] / loaded['1t']:.1f}x the time of one)")
    assert rec.steps == cfg.convergence.max_epochs * -(-len(x) // cfg.batch_size)
