"""The one interface every unlearning method implements, and the registry.

A method is one function that receives K problems and returns K results, in order:

    method(problems: list[Problem]) -> list[UnlearnResult]

A `Problem` is one run: remove `forget` from `trained` (on `data`, under `config`), calling
`on_epoch(e, model)` after each epoch if given. `unlearn` hands the method one problem (K = 1);
`unlearn_many` hands it K (typically one per seed). The method must not modify `trained.model`:
it works on a copy (`problem.trained.copy_model()`). Most methods run their problems one after
another (`[one(p) for p in problems]`); a method registered with `batched=True` may train the
problems it is handed together as one batch (`ensemble.fit_many`, `group.Group`), and
`unlearn_many` hands it all K at once only where that is sound (`ensemble.batch_reason` finds
nothing against it and the forget sets have one size), else one problem at a time.

It is registered by name with `@register("name", settings=..., paper=..., applies=..., check=...,
validate=..., search=..., batched=...)` in its own module of this package (found by walking the
package: no list to edit) or of another package (entry-point group `unlearning_bench.methods`, see
`unlearning.common.plugins`).

- `settings`: the method's own frozen dataclass of settings, with defaults; a `Config`
  holds one per method (`config.method_settings(name)`), so adding a method adds no
  field to `Config`.
- `paper`: where the method comes from (a citation, or "ablation (ours)").
- `applies(data, model)`: None when the method can run on that dataset and model, else
  the reason it cannot (a grid lists it as skipped, with the reason).
- `check(settings, model)`: ValueError when the settings do not fit the model (checked
  on every dataset's preset by `check_preset` before `get_config` (`methods.settings`) hands it out, and
  before every run).
- `validate(data, model, config, forget)`: ValueError when a run's config does not fit
  the forget set.
- `search`: the method's knobs and their ranges (`unlearning.methods.space.Space`), which
  `unlearning.running.tuning` searches for every method alike; None: nothing to tune.
- `batched`: whether the method trains the problems it is handed as one batch (above); the
  benchmark harness then also times a dataset's seeds as one batch.
`check_applicable` runs them all, so errors come before any training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, is_dataclass, replace
from typing import Any, Protocol

import torch
from torch import nn

from ..config import Config, check_choice
from ..data import Data
from ..training.ensemble import batch_reason
from ..training.models import seeded
from ..training.train import Trained, TrainRecord
from .space import Space


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


@dataclass(frozen=True)
class Problem:
    """One unlearning run handed to a method: remove `forget` (validated row indices of
    `data`'s training set) from `trained` under `config`. `on_epoch(e, model)`, where given, is
    called with the model being unlearned once before the first epoch (e = 0) and after every
    epoch, outside the timed part (methods without epochs never call it)."""

    trained: Trained
    data: Data
    forget: torch.Tensor
    config: Config
    on_epoch: Callable[[int, nn.Module], None] | None = None


class MethodFn(Protocol):
    """A method: K problems in, their K results out, in order (see the module docstring)."""

    def __call__(self, problems: list[Problem]) -> list[UnlearnResult]: ...


@dataclass(frozen=True)
class Method:
    name: str
    fn: MethodFn
    applies: Callable[[Data, nn.Module], str | None]
    validate: Callable[[Data, nn.Module, Config, torch.Tensor], None]
    description: str
    settings: type | None = None
    paper: str = ""
    check: Callable[[Any, nn.Module], None] | None = None
    batched: bool = False
    search: Space | None = None

    def default_settings(self):
        """A fresh instance of the settings dataclass with its defaults (None: the method has none)."""
        return self.settings() if self.settings is not None else None

    def check_settings(self, settings, model: nn.Module) -> None:
        if self.check is not None and settings is not None:
            self.check(settings, model)


class MethodNotApplicable(ValueError):
    """The method is not defined for this dataset or model."""


METHODS: dict[str, Method] = {}


def always(data: Data, model: nn.Module) -> str | None:
    return None


def no_check(data: Data, model: nn.Module, config: Config, forget: torch.Tensor) -> None:
    return None


def register(name: str, *, settings: type | None = None, paper: str = "",
             applies: Callable[[Data, nn.Module], str | None] = always,
             check: Callable[[Any, nn.Module], None] | None = None,
             validate: Callable[[Data, nn.Module, Config, torch.Tensor], None] = no_check,
             search: Space | None = None, batched: bool = False):
    """Register method `fn(problems) -> results` under `name` (see the module docstring for the
    hooks; `search`: its tuning space; `batched`: whether it may be handed K problems at once)."""
    if not name.isidentifier():
        raise ValueError(f"method name {name!r}: use a Python identifier (letters, digits, _)")
    if settings is not None and not is_dataclass(settings):
        raise ValueError(f"method {name!r}: settings must be a dataclass type, got {settings!r}")
    if search is not None and not isinstance(search, Space):
        raise ValueError(f"method {name!r}: search must be an unlearning.methods.space.Space, got {search!r}")

    def wrap(fn: MethodFn) -> MethodFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        METHODS[name] = Method(name, fn, applies, validate, doc[0] if doc else "", settings, paper, check,
                               batched, search)
        return fn

    return wrap


def markdown_table() -> str:
    """The built-in methods as the Markdown table of README.md (`python -m unlearning.methods` prints it; a test keeps
    the two equal): registry name, where it comes from (`paper`), what it does (its docstring's first line).
    Methods of other packages (plug-ins) are left out: the README describes this package."""
    lines = ["| method | from | what it does |", "|---|---|---|"]
    for name in sorted(METHODS):
        m = METHODS[name]
        if m.fn.__module__.startswith(f"{__package__}."):
            lines.append(f"| `{name}` | {m.paper} | {m.description} |")
    return "\n".join(lines) + "\n"


def resolve_settings(given: dict) -> dict:
    """Every registered method's settings: `given[name]` (a dict of overrides or the settings
    dataclass itself) or the defaults; ValueError naming an unknown method or field."""
    out = {}
    for name, value in given.items():
        method = get_method(name)
        if method.settings is None:
            raise ValueError(f"method {name!r} takes no settings; got {value!r}")
        out[name] = _settings_instance(method, value)
    for name in sorted(METHODS):
        if name not in out and METHODS[name].settings is not None:
            out[name] = METHODS[name].default_settings()
    return dict(sorted(out.items()))


def _settings_instance(method: Method, value):
    if isinstance(value, method.settings):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"settings of method {method.name!r} must be a {method.settings.__name__} or a dict, "
                         f"got {type(value).__name__}")
    allowed = list(method.settings.__dataclass_fields__)
    for key in value:
        check_choice(f"setting of method {method.name!r}", key, allowed)
    return method.settings(**value)


def with_settings(name: str, config: Config) -> Config:
    """`config` holding method `name`'s settings as its dataclass: as they are where it holds them so (every config
    from `get_config`), else its dict of overrides, or the defaults where it holds nothing (a Config built by
    hand); ValueError naming an unknown field or a value of the wrong type."""
    method = get_method(name)
    value = config.methods.get(name, {})
    if method.settings is None or isinstance(value, method.settings):
        return config
    return replace(config, methods={**config.methods, name: _settings_instance(method, value)})


def get_method(name: str) -> Method:
    check_choice("method", name, sorted(METHODS))
    return METHODS[name]


def applicability(data: Data, model: nn.Module, names: Iterable[str] | None = None) -> dict[str, str | None]:
    """The one applicability probe: {method: None if it runs on this data and model, else why not}.

    `data` may be a dataset's two-row `probe()`: no files are read.
    """
    return {name: get_method(name).applies(data, model) for name in (sorted(METHODS) if names is None else names)}


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
        method.check_settings(config.method_settings(name), model)
        method.validate(data, model, config, forget)
    return method


def check_preset(spec) -> None:
    """ValueError unless dataset `spec`'s preset (a `data.registry.DatasetSpec`) builds, names its dataset,
    and its settings resolve (`resolve_settings`) and fit its model under every registered method that
    applies to it (`Method.check_settings`).

    Run where both registries are complete (`settings.check_preset_of`, which `get_config` calls): the
    method registry sits above the dataset registry, so a dataset cannot be checked while it registers.
    """
    cfg = spec.preset()
    if cfg.dataset != spec.name:
        raise ValueError(f"dataset {spec.name!r}: its preset is for dataset {cfg.dataset!r}")
    settings = resolve_settings(cfg.methods)
    with seeded(0):
        model = spec.build_model()
    probe = spec.probe()
    for name, method in METHODS.items():
        if method.applies(probe, model) is None:
            try:
                method.check_settings(settings.get(name), model)
            except ValueError as exc:
                raise ValueError(f"dataset {spec.name!r}: its preset does not fit its model for method "
                                 f"{name!r}: {exc}") from None


def _run(method: Method, problems: list[Problem]) -> list[UnlearnResult]:
    """The method on `problems`, checked to give one result per problem."""
    results = list(method.fn(problems))
    if len(results) != len(problems):
        raise RuntimeError(f"method {method.name!r} returned {len(results)} results for {len(problems)} problems; "
                           "a method returns one result per problem, in order")
    return results


def unlearn(name: str, trained: Trained, data: Data, forget, config: Config,
            on_epoch: Callable[[int, nn.Module], None] | None = None) -> UnlearnResult:
    """Run method `name` on one problem: validate everything first, then remove `forget` from `trained`."""
    forget = data.check_forget(forget)
    config = with_settings(name, config)
    method = check_applicable(name, data, trained.model, config, forget)
    (result,) = _run(method, [Problem(trained, data, forget, config, on_epoch)])
    return result


def unlearn_many(name: str, trained: Sequence[Trained], datas: Sequence[Data], forgets: Sequence,
                 configs: Sequence[Config], on_epoch: Sequence[Callable | None] | None = None) -> list[UnlearnResult]:
    """Run method `name` on K independent problems (typically one per seed): every one
    validated first, then the K handed to the method at once where it is `batched`, the forget
    sets have one size and `ensemble.batch_reason` finds nothing against it, else one at a time
    (as K `unlearn`s). Batched results' costs carry `batch_models` = K and amortised `seconds`."""
    k = len(trained)
    on_epoch = [None] * k if on_epoch is None else list(on_epoch)
    if not k or {len(datas), len(forgets), len(configs), len(on_epoch)} != {k}:
        raise ValueError(f"unlearn_many: give one data, forget set, config and on_epoch per trained model "
                         f"({k} models, {len(datas)}, {len(forgets)}, {len(configs)}, {len(on_epoch)})")
    forgets = [d.check_forget(f) for d, f in zip(datas, forgets, strict=True)]
    configs = [with_settings(name, c) for c in configs]
    method = get_method(name)
    for t, d, f, c in zip(trained, datas, forgets, configs, strict=True):
        check_applicable(name, d, t.model, c, f)
    problems = [Problem(*p) for p in zip(trained, datas, forgets, configs, on_epoch, strict=True)]
    if method.batched and len({len(f) for f in forgets}) == 1 \
            and batch_reason(datas, configs, trained[0].model) is None:
        return _run(method, problems)
    return [result for p in problems for result in _run(method, [p])]
