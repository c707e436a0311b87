"""The papers' networks, built by dataset name.

All are `nn.Sequential`, so weight pruning can walk the layers in order and
see exactly which activation follows which weight matrix.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn


def synthetic_mlp() -> nn.Sequential:
    """Paper 000 section 4.2.1: 1 → 3 (ReLU) → 1, a single logit."""
    return nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))


def california_mlp() -> nn.Sequential:
    """Paper 000 section 4.2.2: 9 → 5 → 5 → 1, ReLU after every layer, the output's included."""
    return nn.Sequential(nn.Linear(9, 5), nn.ReLU(), nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 1), nn.ReLU())


def mnist_convnet() -> nn.Sequential:
    """The ConvNet of the PyTorch MNIST example (paper 002's 2-conv net), returning logits.

    conv 3x3 → 32, conv 3x3 → 64, max-pool 2, dropout 0.25, fc 9216 → 128,
    dropout 0.5, fc 128 → 10. The example returns log-softmax and uses NLL;
    logits with cross-entropy are the same loss.
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, 1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


MODELS = {"synthetic": synthetic_mlp, "california": california_mlp, "mnist": mnist_convnet}


def build_model(name: str) -> nn.Sequential:
    """A freshly initialised model for dataset `name` (PyTorch's default init, global RNG)."""
    try:
        return MODELS[name]()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}") from None


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device` if given, else $UNLEARNING_DEVICE, else CUDA when available, else CPU."""
    name = device if device is not None else os.environ.get("UNLEARNING_DEVICE") or None
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}; allowed: cpu, cuda, cuda:N, mps ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use 'cpu'")
    return dev


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None):
    """Seed torch's global RNG (CPU, and CUDA on a CUDA device) inside the block, restoring it after.

    Initialisation and dropout draw from the global RNG; this keeps each run
    reproducible from its own seed without disturbing the caller's RNG state.
    """
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
