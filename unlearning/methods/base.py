"""The one interface every unlearning method implements, and the registry.

A method is a function

    unlearn(trained, data, forget, config, on_epoch=None) -> UnlearnResult

registered by name with `@register("name", applies=..., validate=...)`. It must
not modify `trained.model`: it works on a copy. `applies(data, model)` returns
None when the method can run on that dataset and model, else the reason it
cannot (a grid lists it as skipped, with the reason); `validate(data, model,
config, forget)` raises ValueError when the config does not fit them.
`check_applicable` runs both, so errors come before any training. Adding a method is one
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
    validate: Callable[[Data, nn.Module, Config, torch.Tensor], None]
    description: str


class MethodNotApplicable(ValueError):
    """The method is not defined for this dataset or model."""


METHODS: dict[str, Method] = {}


def always(data: Data, model: nn.Module) -> str | None:
    return None


def no_check(data: Data, model: nn.Module, config: Config, forget: torch.Tensor) -> None:
    return None


def register(name: str, applies: Callable[[Data, nn.Module], str | None] = always,
             validate: Callable[[Data, nn.Module, Config, torch.Tensor], None] = no_check):
    """Register an unlearning function under `name`."""

    def wrap(fn: UnlearnFn) -> UnlearnFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        METHODS[name] = Method(name, fn, applies, validate, doc[0] if doc else "")
        return fn

    return wrap


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(sorted(METHODS))}") from None


def check_applicable(name: str, data: Data, model: nn.Module, config: Config | None = None,
                     forget: torch.Tensor | None = None) -> Method:
    """The method, after checking it can run: MethodNotApplicable saying why not for this
    dataset/model; with `config` and `forget` (validated indices) also the method's own
    config checks and the forget policy, each a ValueError naming the bad value."""
    method = get_method(name)
    reason = method.applies(data, model)
    if reason:
        raise MethodNotApplicable(f"method {name!r} cannot run on dataset {data.name!r}: {reason}")
    if config is not None and forget is not None:
        data.check_policy(config.forget_policy)
        method.validate(data, model, config, forget)
    return method


def unlearn(name: str, trained: Trained, data: Data, forget, config: Config,
            on_epoch: Callable[[int, nn.Module], None] | None = None) -> UnlearnResult:
    """Run method `name`: validate everything first, then remove `forget` from `trained`."""
    forget = data.check_forget(forget)
    method = check_applicable(name, data, trained.model, config, forget)
    return method.fn(trained, data, forget, config, on_epoch=on_epoch)
