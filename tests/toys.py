"""The toy unlearning problems the method tests share: two MLP tasks and one ConvNet task, small enough for a unit
test, built once a process (`conftest.py` serves them as fixtures; method test files import the builders).

A problem is what `unlearning.methods.unlearn` takes: data, a config (the dataset's preset with small epoch caps),
an original trained on the data with that config, and the points to forget.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from unlearning import get_config
from unlearning.config import Config
from unlearning.data import Data
from unlearning.data.forget_sets import select_random
from unlearning.data.registry import load_dataset
from unlearning.training.train import Trained, TrainRecord, train_original


@dataclass(frozen=True)
class Problem:
    """One unlearning problem: the data, its config (the preset with small epoch caps), the original trained on it
    with that config, and the points to forget. Shared by many tests: nothing may modify it (the contract test,
    `tests/test_method_contract.py`, checks that every method leaves `trained` as it was)."""

    data: Data
    config: Config
    trained: Trained
    forget: torch.Tensor


# The toy worlds by name: the dataset's preset, capped at `epochs`, on `rows` training rows (a seeded subset per
# problem); `forget` points. "digits": scikit-learn's digits (bundled, no download), 10 classes, its MLP 64-32-16-10;
# "synthetic": paper 000's 10-point binary draws (one per problem) with its `replace` forget policy, MLP 1-3-1;
# "convnet": MNIST-shaped random images (no MNIST files needed) and MNIST's ConvNet (`mnist.mnist_convnet`), SISA on
# 2 shards (`methods`: settings changed from the preset's; 5 ConvNets of 3 images each test no more, at 2.5x the cost).
TOYS = {"digits": {"dataset": "digits", "rows": 120, "epochs": 2, "forget": 6},
        "synthetic": {"dataset": "synthetic", "rows": None, "epochs": 40, "forget": 1},
        "convnet": {"dataset": "mnist", "rows": 16, "epochs": 1, "forget": 3, "methods": {"sisa": {"shards": 2}}}}


def mnist_like(rows: int, test_rows: int = 4, seed: int = 0) -> Data:
    """Random 28x28 images under MNIST's name (so MNIST's model and preset apply), labels 0..9 in turn."""
    gen = torch.Generator().manual_seed(seed)
    return Data(name="mnist", task="multiclass", num_classes=10,
                x_train=torch.rand(rows, 1, 28, 28, generator=gen), y_train=torch.arange(rows) % 10,
                x_test=torch.rand(test_rows, 1, 28, 28, generator=gen), y_test=torch.arange(test_rows) % 10)


@cache
def toy_data(world: str, seed: int = 0) -> Data:
    """The data of problem `seed` of toy world `world` (`TOYS`): its own draw, of one size for all problems."""
    toy = TOYS[world]
    if world == "convnet":
        return mnist_like(toy["rows"], seed=seed)
    if toy["rows"] is None:
        return load_dataset(toy["dataset"], seed=seed)
    return _loaded(toy["dataset"]).subset(toy["rows"], 40, seed=seed)


@cache
def _loaded(dataset: str) -> Data:
    return load_dataset(dataset)


def toy_config(world: str, seed: int = 0) -> Config:
    """The config of problem `seed` of toy world `world`: the dataset's preset, its epochs capped (`TOYS`).

    Built anew on every call, never cached: a config holds the settings of every method registered when it was built,
    and a plug-in a test registers for a while (`tests/test_method_contract.py`) must not outlive that test in it."""
    toy = TOYS[world]
    config = get_config(toy["dataset"], seed=seed).with_epoch_cap(toy["epochs"])
    for name, changes in toy.get("methods", {}).items():
        config = config.with_method(name, **changes)
    return config


@cache
def toy_original(world: str, seed: int = 0) -> Trained:
    """The original of problem `seed` of toy world `world`, trained once a process."""
    return train_original(toy_data(world, seed), toy_config(world, seed))


def toy_problem(world: str, seed: int = 0) -> Problem:
    """Problem `seed` of toy world `world` (`TOYS`): its own data, config seed, original and forget set."""
    data = toy_data(world, seed)
    return Problem(data, toy_config(world, seed), toy_original(world, seed),
                   select_random(data, TOYS[world]["forget"], seed))


def trained_of(model: nn.Module, seed: int = 0) -> Trained:
    """`model` as it is (hand-made or hand-trained) standing in for a trained original on the CPU."""
    return Trained(model, copy.deepcopy(model.state_dict()), TrainRecord(), 0, seed, torch.device("cpu"))


def this_thread_only(fake, real):
    """`fake` on the calling test's thread and `real` on any other, to monkeypatch an `os` function with: a test that
    breaks `os.write` (a full disk, a Ctrl-C) must not break the background Slurm smoke run (`tests/slurm_smoke.py`),
    which writes its manifest from its own thread meanwhile."""
    me = threading.get_ident()

    def routed(*args, **kwargs):
        return (fake if threading.get_ident() == me else real)(*args, **kwargs)
    return routed
