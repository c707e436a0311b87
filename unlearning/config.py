"""Every setting an experiment depends on, and the rules that check them.

Where a paper leaves a choice open, the choice is a field with a comment saying why,
and every result records the config it came from (`Config.as_dict()`). Settings that
belong to one dataset (its paper preset: optimizer, convergence level, pruning
thresholds) live in that dataset's module under `unlearning.data.registry`; settings of one
method (its dataclass and defaults) in that method's module under `unlearning.methods`.
`get_config(dataset, **overrides)` returns the dataset's preset; `Config.with_method`
and `Config.with_epoch_cap` derive variants.
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace

import torch

OPTIMIZERS = {"adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta, "sgd": torch.optim.SGD}
CONVERGENCE_RULES = ("loss_below", "fixed_epochs")
ORACLE_INITS = ("same", "independent")
# What the oracle (and every fine-tune) trains on after a deletion: `remove` drops the
# points; `replace` swaps each for a fresh draw (paper 000's synthetic oracle set).
FORGET_POLICIES = ("remove", "replace")
DEVICE_HELP = "cpu, cuda, cuda:N, mps, or None (auto: CUDA when available, else CPU)"
SEED_MAX = 2**32 - 1   # the largest seed every RNG the suite seeds accepts (scikit-learn's random_state)
# The sets a record can report (`metrics.evaluate`), and a dataset's spec chooses among
# (`DatasetSpec.eval_sets`): kept here, below both, so that the dataset registry needs no metrics.
EVAL_SETS = ("test", "forget", "total", "train")


def check_choice(what: str, value, allowed) -> None:
    """ValueError naming `value` and the allowed ones unless `value` is one of them."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _or_none(none: str | None) -> str:
    return f" or None ({none})" if none else ""


def check_int(what: str, value, minimum: int | None = None, maximum: int | None = None, *,
              none: str | None = None) -> None:
    """ValueError naming `what`, `value` and what is allowed unless `value` is an integer (a
    Python or numpy int, never a bool) in `minimum`..`maximum`; with `none` (what None
    means), None is allowed too."""
    if value is None and none is not None:
        return
    if _is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return
    if minimum is not None and maximum is not None:
        allowed = f"an integer in {minimum}..{maximum}"
    elif minimum is not None:
        allowed = f"an integer >= {minimum}"
    elif maximum is not None:
        allowed = f"an integer <= {maximum}"
    else:
        allowed = "an integer"
    raise ValueError(f"{what}={value!r}: must be {allowed}{_or_none(none)}")


def check_real(what: str, value, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False, none: str | None = None) -> None:
    """ValueError naming `what`, `value` and what is allowed unless `value` is a finite real
    number (int, float or a numpy scalar, never a bool) within `low`..`high` (each bound
    excluded when its `*_open` is set); with `none` (what None means), None is allowed too."""
    if value is None and none is not None:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    if low is not None and high is not None:
        allowed = f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        allowed = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        allowed = "a finite number"
    raise ValueError(f"{what}={value!r}: must be {allowed}{_or_none(none)}")


def check_each(what: str, values, check, items: str, each: str) -> tuple:
    """`values` as a tuple, or ValueError naming `what` and `values`: unless they are a sequence
    (not a string) of `items`, and, for the first item `check(item)` refuses, saying `each`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{what}={values!r}: must be a sequence of {items}")
    values = tuple(values)
    for v in values:
        try:
            check(v)
        except ValueError:
            raise ValueError(f"{what}={values!r}: {each} (got {v!r})") from None
    return values


def available_devices() -> list[str]:
    """The devices this machine can run on: `cpu`, then `cuda` and `cuda:0`.. when CUDA is
    available, then `mps` when Apple's MPS backend is."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def _why_unavailable(dev: torch.device) -> str | None:
    """Why this machine cannot run on `dev` (a parsed torch.device), or None when it can."""
    if dev.type == "cpu":
        return None if dev.index in (None, 0) else "the CPU is device 'cpu' (or 'cpu:0')"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available here"
        count = torch.cuda.device_count()
        return None if dev.index is None or dev.index < count else f"this machine has {count} CUDA device(s)"
    if dev.type == "mps":
        if "mps" not in available_devices():
            return "MPS is not available here"
        return None if dev.index in (None, 0) else "MPS is one device, 'mps'"
    return "unknown"


def check_device(name: str | torch.device) -> torch.device:
    """`name` as a torch.device this machine can run on, or ValueError naming it, what is
    allowed and what is available here (`available_devices`).

    `cpu` (or `cpu:0`); `cuda` / `cuda:N` only when CUDA is available and N < the device
    count; `mps` only when MPS is available; any other device type (meta, xla, ...) never.
    """
    here = f"available here: {', '.join(available_devices())}"
    if not isinstance(name, (str, torch.device)):
        raise ValueError(f"device={name!r}: must be a device name (str) or a torch.device; "
                         f"allowed: {DEVICE_HELP}; {here}")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    why = "unknown" if dev is None else _why_unavailable(dev)
    if why == "unknown":
        raise ValueError(f"unknown device {name!r}; allowed: {DEVICE_HELP}; {here}")
    if why:
        raise ValueError(f"device {name!r} asked for, but {why}; {here}")
    return dev


# Optimizers built with torch's fused kernel (same update rule, one kernel per step
# instead of one per tensor). Measured on the 2-core CPU: Adam 0.50 -> 0.34 ms per
# California step and 15.5 -> 9.6 ms per MNIST relabel step; SGD gains nothing
# (0.32 -> 0.31 ms) and AdaDelta has no fused kernel. Results match the unfused
# update to float rounding, not bit for bit.
FUSED = ("adam",)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """Build a torch optimizer by name (`adam`, `adadelta`, `sgd`) with torch's defaults besides `lr`.

    Optimizers in `FUSED` use torch's fused kernel where the parameters' device
    has one, else the default implementation.
    """
    check_choice("optimizer", name, OPTIMIZERS)
    cls = OPTIMIZERS[name]
    if name in FUSED:
        params = list(params)
        try:
            return cls(params, lr=lr, fused=True)
        except RuntimeError:     # no fused kernel for this device or dtype
            pass
    return cls(params, lr=lr)


@dataclass(frozen=True)
class Convergence:
    """When a training run stops.

    `loss_below`: after every epoch the loss on the *whole* training set (eval
    mode, no dropout) is measured; the run has converged when it is below
    `threshold`. It is also checked before the first epoch, so a warm start that
    already satisfies it costs 0 epochs. Paper 000 trains "until convergence"
    and quotes a convergence threshold of 0.015 for California: a loss level is
    the reading that makes that number meaningful. `fixed_epochs`: exactly
    `max_epochs` epochs (the PyTorch MNIST example paper 002 builds on).
    Either way the run stops at `max_epochs`; a run stopped there without
    meeting `loss_below` is recorded as `hit_cap`, never dropped.
    """

    rule: str = "loss_below"
    threshold: float = 0.05
    max_epochs: int = 2000

    def __post_init__(self):
        check_choice("convergence rule", self.rule, CONVERGENCE_RULES)
        # loss_below: a loss is never below 0, so a threshold <= 0 would silently run to the cap;
        # fixed_epochs ignores the threshold, but it must still be a number (0 by convention).
        check_real("threshold", self.threshold, 0.0, low_open=self.rule == "loss_below")
        check_int("max_epochs", self.max_epochs, 1)

    def describe(self) -> str:
        if self.rule == "fixed_epochs":
            return f"fixed {self.max_epochs} epochs"
        return f"train loss < {self.threshold:g} (cap {self.max_epochs} epochs)"


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the original model, the oracle, and every fine-tune."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int | None = None          # None: full batch
    convergence: Convergence = field(default_factory=Convergence)
    lr_decay: float | None = None          # multiply lr by this after every epoch (StepLR(1, gamma))

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_real("lr", self.lr, 0.0, low_open=True)
        check_int("batch_size", self.batch_size, 1, none="full batch")
        if not isinstance(self.convergence, Convergence):
            raise ValueError(f"convergence={self.convergence!r}: must be a Convergence")
        # (0, 1]: a factor above 1 grows the rate every epoch; 0 would read as "no decay"
        check_real("lr_decay", self.lr_decay, 0.0, 1.0, low_open=True, none="no decay")


@dataclass(frozen=True)
class Config:
    """A whole experiment: dataset, training, the methods' settings, seed and device.

    `forget_policy`: what the oracle (and every fine-tune) trains on (`FORGET_POLICIES`).
    `oracle_init`: `same` (default) starts the oracle from the control model's initial
    weights, and with the same shuffling seed, so it differs from the control only by
    the data; with nets this small `d` can flip sign between that and `independent`.
    `finetune`: the training rule of every warm-start fine-tune (weight pruning's and
    the finetune ablation's); None: the same as `train` (with a fresh optimizer).
    `methods`: each method's settings by method name (`unlearning.methods`); a dict of
    overrides is turned into the method's settings dataclass, and every registered
    method without an entry gets its defaults, so `as_dict()` records them all.
    """

    dataset: str = "synthetic"
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: TrainConfig | None = None
    methods: dict = field(default_factory=dict)
    forget_policy: str = "remove"
    oracle_init: str = "same"
    seed: int = 0
    device: str | None = None              # None: CUDA when present, else CPU (or $UNLEARNING_DEVICE)
    dataset_options: dict = field(default_factory=dict)

    def __post_init__(self):
        datasets = _registry("data.registry")
        datasets.get_dataset(self.dataset)
        if not isinstance(self.train, TrainConfig):
            raise ValueError(f"train={self.train!r}: must be a TrainConfig")
        if self.finetune is not None and not isinstance(self.finetune, TrainConfig):
            raise ValueError(f"finetune={self.finetune!r}: must be a TrainConfig or None (the same as train)")
        if not isinstance(self.methods, dict):
            raise ValueError(f"methods={self.methods!r}: must be a dict of method name -> settings")
        check_choice("forget policy", self.forget_policy, FORGET_POLICIES)
        check_choice("oracle init", self.oracle_init, ORACLE_INITS)
        check_int("seed", self.seed, 0, SEED_MAX)
        if self.device is not None:
            check_device(self.device)
        datasets.check_dataset_options(self.dataset, self.dataset_options,
                                       reserved={"seed": "the loader gets Config.seed; set seed instead"})
        object.__setattr__(self, "methods", _registry("methods").resolve_settings(self.methods))

    @property
    def finetune_train(self) -> TrainConfig:
        return self.finetune if self.finetune is not None else self.train

    def method_settings(self, name: str):
        """The settings of method `name` (its defaults when this config holds none)."""
        if name in self.methods:
            return self.methods[name]
        return _registry("methods").get_method(name).default_settings()

    def with_method(self, name: str, settings=None, **changes) -> Config:
        """A copy with method `name`'s settings replaced by `settings`, or with `changes` to its fields."""
        if settings is None and changes:
            current = self.method_settings(name)
            if current is None:
                raise ValueError(f"method {name!r} takes no settings; got {changes!r}")
            for key in changes:
                check_choice(f"setting of method {name!r}", key, [f.name for f in fields(current)])
        new = settings if settings is not None else replace(self.method_settings(name), **changes)
        return replace(self, methods={**self.methods, name: new})

    def with_epoch_cap(self, max_epochs: int | None) -> Config:
        """A copy whose training runs stop after `max_epochs` (None: unchanged).

        The one epoch-cap rule (CLI `--max-epochs`, benchmark profiles): the training
        cap becomes `max_epochs`; a separate fine-tune rule is capped at it too, never
        raised (MNIST's one fine-tune epoch stays one), and so is every method's own
        fixed schedule (a settings field named `epochs`: the baselines'), so that a
        profile which trains its originals for 2 epochs does not unlearn for 10.
        """
        if max_epochs is None:
            return self
        check_int("max_epochs", max_epochs, 1)
        train = replace(self.train, convergence=replace(self.train.convergence, max_epochs=max_epochs))
        finetune = self.finetune
        if finetune is not None:
            cap = min(max_epochs, finetune.convergence.max_epochs)
            finetune = replace(finetune, convergence=replace(finetune.convergence, max_epochs=cap))
        methods = {name: _capped(settings, max_epochs) for name, settings in self.methods.items()}
        return replace(self, train=train, finetune=finetune, methods=methods)

    def as_dict(self) -> dict:
        return asdict(self)


def _capped(settings, max_epochs: int):
    """`settings` with its `epochs` field (an int) cut to `max_epochs`, never raised; other settings as they are."""
    epochs = getattr(settings, "epochs", None)
    if not _is_int(epochs) or epochs <= max_epochs:
        return settings
    return replace(settings, epochs=max_epochs)


def _registry(name: str):
    """`unlearning.data.registry` or `unlearning.methods`, imported on first use (they import this module)."""
    return importlib.import_module(f"unlearning.{name}")


# dataset name -> (its spec, the method registry) its preset was last found to fit under
_PRESETS_FIT: dict[str, tuple] = {}


def check_preset(dataset: str) -> None:
    """ValueError unless the preset of `dataset` builds, names it, and fits its model under every
    registered method that applies (`methods.check_preset`; e.g. one pruning threshold per Linear layer).

    Both registries are complete here, which they are not while a dataset module registers (the
    method registry sits above the datasets'); `get_config` runs it before handing a preset out, so a
    preset that does not fit fails before any run uses it. Checked again when the spec or the
    registered methods change (a plug-in loaded later).
    """
    spec = _registry("data.registry").get_dataset(dataset)
    methods = _registry("methods")
    done = _PRESETS_FIT.get(dataset)
    if done is not None and done[0] is spec and done[1] == methods.METHODS:
        return
    methods.check_preset(spec)
    _PRESETS_FIT[dataset] = (spec, dict(methods.METHODS))


def get_config(dataset: str = "synthetic", **overrides) -> Config:
    """The paper preset of `dataset` (declared in its module), with top-level fields replaced by `overrides`;
    ValueError first if the preset does not fit its model (`check_preset`)."""
    spec = _registry("data.registry").get_dataset(dataset)
    for key in overrides:
        check_choice("config field", key, [f.name for f in fields(Config)])
    check_preset(dataset)
    return replace(spec.preset(), **overrides)

