"""How many CPU threads torch uses: the CPUs this process was given, and one thread for small models.

torch's default is one intra-op thread per core of the machine, whoever else runs there. For
the suite's small models that is the wrong trade: a step of a 64-32-16-10 MLP is a few
microseconds of arithmetic, and spreading it over threads buys nothing on an idle machine
and costs a great deal on a busy one, where the threads wait for each other in OpenMP
barriers while other processes hold the cores (measured by `benchmarks/test_threads.py`).
The policy, in one place:

1. **Budget**: the CPUs this process may run on, its affinity mask (`os.sched_getaffinity`:
   taskset, cpusets, Slurm's binding), capped by `SLURM_CPUS_PER_TASK` and `OMP_NUM_THREADS`
   where set (`budget()`).
2. **Per dataset**: a model whose training step is small, under `PARALLEL_MIN_FLOPS` counted
   FLOPs (forward and backward of one batch of the preset, `throughput.train_flops_per_sample`),
   trains with one thread and leaves parallelism to processes; a larger one (MNIST's ConvNet,
   ~5 GFLOP a step) uses the budget (`for_dataset`). A dataset spec may say so itself
   (`DatasetSpec.threads`: an int, or `"budget"`).
3. **Override**: `$UNLEARNING_THREADS=N` runs everything with N threads (`THREADS_ENV`).

`policy(dataset)` applies it to a block (the CLI's trials, `run_trial`, each benchmark cell)
and restores the previous setting after it; every record carries the count it ran with
(`threads`). Thread counts change float summation order in some kernels, so results made
with another count can differ in the last digits (see docs/determinism.md).
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

THREADS_ENV = "UNLEARNING_THREADS"
# A training step under this many counted FLOPs runs single-threaded. The suite's MLPs do
# at most 0.4 MFLOP a step (digits, batch 32: 0.39 MFLOP; California, batch 32: 12 kFLOP;
# synthetic, its 10 points full batch: 300 FLOP); MNIST's ConvNet 4.6 GFLOP (batch 64).
# benchmarks/test_threads.py measures both sides of the line (2-core CPU, paper profile):
# alone, two threads make digits' MLP 0.9x as fast as one and the ConvNet 1.68x as fast.
PARALLEL_MIN_FLOPS = 50e6
BUDGET = "budget"
BUSY_LOAD = 0.75       # `describe` calls a machine busy when its 1-minute load is this share of the budget or more


def _positive_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"${name}={raw!r} is not a whole number of threads; set it to an integer >= 1 "
                         "or unset it") from None
    if value < 1:
        raise ValueError(f"${name}={raw!r}: the number of threads must be >= 1")
    return value


def _slurm_cpus() -> int | None:
    # SLURM_CPUS_PER_TASK is set only with --cpus-per-task; a malformed one is Slurm's, not the user's: ignore it
    raw = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def budget() -> int:
    """CPUs this process was given: its affinity mask, capped by $SLURM_CPUS_PER_TASK and $OMP_NUM_THREADS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):         # not on Linux
        cpus = os.cpu_count() or 1
    caps = [c for c in (_slurm_cpus(), _positive_env("OMP_NUM_THREADS")) if c is not None]
    return max(1, min([cpus, *caps]))


def step_flops(dataset) -> float:
    """Counted FLOPs of one training step of `dataset`'s preset (its spec or its name): per sample times its
    batch (full batch: the set)."""
    from .models import dataset_spec
    from .throughput import train_flops_per_sample

    spec = dataset_spec(dataset)
    batch = spec.preset().train.batch_size or spec.n_train
    return train_flops_per_sample(spec) * batch


@functools.cache
def _dataset_rule(spec) -> int | str:
    if spec.threads is not None:
        return spec.threads
    return BUDGET if step_flops(spec) >= PARALLEL_MIN_FLOPS else 1


def override() -> int | None:
    """$UNLEARNING_THREADS, when set: the count for everything."""
    return _positive_env(THREADS_ENV)


def for_dataset(dataset) -> int:
    """Threads for training `dataset`'s model here (its spec, its name, or None: no one dataset's):
    $UNLEARNING_THREADS, else its rule within the budget."""
    from .models import dataset_spec

    forced = override()
    if forced is not None:
        return forced
    rule = _dataset_rule(dataset_spec(dataset)) if dataset is not None else BUDGET
    return budget() if rule == BUDGET else min(int(rule), budget())


@contextlib.contextmanager
def using(n: int):
    """torch runs with `n` intra-op threads inside the block; the previous count after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def policy(dataset):
    """`using(for_dataset(dataset))`: the suite's thread policy for a block of work on `dataset` (its spec, its
    name, or None)."""
    return using(for_dataset(dataset))


def describe(dataset) -> str:
    """What the policy chose and why, in words; on a busy machine, with the remedy when it uses several threads."""
    n, cap = for_dataset(dataset), budget()
    if override() is not None:
        return f"{n} thread(s) (${THREADS_ENV})"
    why = "small model: one thread, parallelism left to processes" if n == 1 and cap > 1 else f"{cap} CPU(s) given"
    line = f"{n} thread(s) ({why})"
    load = _load()
    if n > 1 and load is not None and load >= BUSY_LOAD * cap:
        line += (f"; the machine is busy (load {load:.1f} on {cap} CPUs): beside other jobs several threads can be "
                 f"slower than one (benchmarks/test_threads.py), ${THREADS_ENV}=1 trains single-threaded")
    return line


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):         # not on Unix
        return None
