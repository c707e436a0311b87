"""Models by dataset (its spec, the spec its data carries, or its name), their device, seeded initialisation.

Each dataset's network is declared in its module (`unlearning.data.<name>`); the
papers' networks are all `nn.Sequential`, so weight pruning can walk the layers in order
and see exactly which activation follows which weight matrix.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from ..config import check_device


def dataset_spec(dataset):
    """The spec of `dataset`: a `DatasetSpec` as it is, a name looked up in the registry (ValueError naming the
    registered ones)."""
    if not isinstance(dataset, str):
        return dataset
    # The dataset registry sits below this module (it imports no models, training or methods). Imported
    # here, not at the top, so that importing `models` does not load every dataset module and plug-in: a
    # dataset plug-in that imports `unlearning.training.models` would otherwise meet it half initialised.
    from ..data.registry import get_dataset

    return get_dataset(dataset)


def build_model(name: str) -> nn.Module:
    """A freshly initialised model for dataset `name`, from its spec (PyTorch's default init, global RNG)."""
    return dataset_spec(name).build_model()


def model_for(data) -> nn.Module:
    """A freshly initialised model for `data` (a `Data`), from the spec it carries (`Data.spec`); data built by
    hand carries none: the spec of its name (`build_model`)."""
    return data.spec.build_model() if data.spec is not None else build_model(data.name)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device` if given, else $UNLEARNING_DEVICE, else CUDA when available, else CPU."""
    name = device if device is not None else os.environ.get("UNLEARNING_DEVICE") or None
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = check_device(name)
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
