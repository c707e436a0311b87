"""The one interface every unlearning method implements, and the registry.

A method is a function

    unlearn(trained, data, forget, config, on_epoch=None) -> UnlearnResult

registered by name with `@register("name", applies=...)`. It must not modify
`trained.model`: it works on a copy. `applies(data, model)` returns None when
the method can run, else the reason it cannot; `get_method` / `check_applicable`
turn that into a clear error before any work starts. Adding a method is one
new module in this package that uses the decorator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn

from ..config import Config
from ..data import Data
from ..train import TrainRecord, Trained


@dataclass
class Checkpoint:
    """The model of a removal stream after its first `removed` requests, and the cost so far."""

    removed: int
    state: dict
    cost: TrainRecord


@dataclass
class UnlearnResult:
    """An unlearned model, what producing it cost, and the method's own details."""

    method: str
    model: nn.Module
    cost: TrainRecord
    details: dict = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)


class UnlearnFn(Protocol):
    def __call__(self, trained: Trained, data: Data, forget: torch.Tensor, config: Config,
                 on_epoch: Callable[[int, nn.Module], None] | None = None) -> UnlearnResult: ...


@dataclass(frozen=True)
class Method:
    name: str
    fn: UnlearnFn
    applies: Callable[[Data, nn.Module], str | None]
    description: str


class MethodNotApplicable(ValueError):
    """The method is not defined for this dataset or model."""


METHODS: dict[str, Method] = {}


def always(data: Data, model: nn.Module) -> str | None:
    return None


def register(name: str, applies: Callable[[Data, nn.Module], str | None] = always):
    """Register an unlearning function under `name`."""

    def wrap(fn: UnlearnFn) -> UnlearnFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        METHODS[name] = Method(name, fn, applies, doc[0] if doc else "")
        return fn

    return wrap


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(sorted(METHODS))}") from None


def check_applicable(name: str, data: Data, model: nn.Module) -> Method:
    """The method, or MethodNotApplicable saying why it cannot run on this dataset/model."""
    method = get_method(name)
    reason = method.applies(data, model)
    if reason:
        raise MethodNotApplicable(f"method {name!r} cannot run on dataset {data.name!r}: {reason}")
    return method


def unlearn(name: str, trained: Trained, data: Data, forget, config: Config,
            on_epoch: Callable[[int, nn.Module], None] | None = None) -> UnlearnResult:
    """Run method `name`: validate everything first, then remove `forget` from `trained`."""
    method = check_applicable(name, data, trained.model)
    forget = data.check_forget(forget)
    return method.fn(trained, data, forget, config, on_epoch=on_epoch)
