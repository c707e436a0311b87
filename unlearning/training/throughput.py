"""How close training runs to the machine's arithmetic limit.

- `matmul_gflops(device)`: the machine's measured fp32 matrix-multiply throughput, from a
  short timed GEMM (square, `GEMM_SIZE`), best of `GEMM_REPEATS`; measured once per device
  and process. The benchmarks record it in their machine info when a run starts.
- `train_flops_per_sample(dataset)`: floating-point operations of one training step's
  forward and backward pass per sample for the dataset's model, counted by torch's own
  `torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions; elementwise work
  is not counted, so the fraction below is of the work GEMM-like kernels must do).
- `achieved(flops_per_sample, samples, seconds, peak)`: a run's training throughput in
  GFLOP/s and that as a fraction of `peak` (the benchmarks put both in every record).
"""

from __future__ import annotations

import functools
import time

import torch

GEMM_SIZE = 1024       # n of the n x n fp32 GEMM that measures the peak (~2 GFLOP a pass)
GEMM_REPEATS = 5       # timed passes after one warm-up; the best counts
FLOP_BATCH = 8         # samples in the counted step


@functools.cache
def matmul_gflops(device: str = "cpu") -> float:
    """Measured fp32 GEMM throughput of `device` in GFLOP/s (best of `GEMM_REPEATS` passes)."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(GEMM_SIZE, GEMM_SIZE, generator=gen).to(dev)
    b = torch.randn(GEMM_SIZE, GEMM_SIZE, generator=gen).to(dev)
    best = float("inf")
    for i in range(GEMM_REPEATS + 1):
        _sync(dev)
        t0 = time.perf_counter()
        a @ b
        _sync(dev)
        if i:                                   # the first pass warms up
            best = min(best, time.perf_counter() - t0)
    return 2 * GEMM_SIZE**3 / best / 1e9


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def train_flops_per_sample(dataset) -> float:
    """Counted FLOPs of one training step (forward + backward) per sample of `dataset`'s model (its spec or its
    name); counted once per spec and process."""
    from .models import dataset_spec

    return _flops_per_sample(dataset_spec(dataset))


@functools.cache
def _flops_per_sample(spec) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from .models import seeded
    from .train import loss_fn

    with seeded(0):
        model = spec.build_model().train()
        x = torch.randn(FLOP_BATCH, *spec.input_shape)
    y = (torch.zeros(FLOP_BATCH, dtype=torch.long) if spec.task == "multiclass" else torch.zeros(FLOP_BATCH))
    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(spec.task)(model(x), y).backward()
    return counter.get_total_flops() / FLOP_BATCH


def achieved(flops_per_sample: float, samples: int, seconds: float, peak_gflops: float) -> dict[str, float | None]:
    """`train_gflops` (FLOPs per sample x samples / seconds, in GFLOP/s) and `peak_fraction`
    (that / `peak_gflops`); None where no training happened or no time was measured."""
    if not samples or not seconds or seconds <= 0:
        return {"train_gflops": None, "peak_fraction": None}
    gflops = flops_per_sample * samples / seconds / 1e9
    return {"train_gflops": gflops, "peak_fraction": gflops / peak_gflops if peak_gflops else None}
