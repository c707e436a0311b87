"""Every setting an experiment depends on, and the rules that check them.

Where a paper leaves a choice open, the choice is a field with a comment saying why,
and every result records the config it came from (`Config.as_dict()`). Settings that
belong to one dataset (its paper preset: optimizer, convergence level, pruning
thresholds) live in that dataset's module under `unlearning.data`; settings of one
method (its dataclass and defaults) in that method's module under `unlearning.methods`.

A `Config` is data with local checks: this module imports neither registry. Whether its
dataset exists and takes its `dataset_options` is checked where datasets are looked up
(`unlearning.data.registry`); its methods' settings are resolved (every registered method's,
dicts turned into their dataclasses) and checked where methods are looked up
(`unlearning.methods.settings`, whose `get_config(dataset, **overrides)` returns a dataset's
preset so resolved). `Config.with_method` and `Config.with_epoch_cap` derive variants.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace

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


# Loader options a Config gives elsewhere: {option: where to give it instead} (refused in `dataset_options`)
RESERVED_OPTIONS = {"seed": "the loader gets Config.seed; set seed instead"}


@dataclass(frozen=True)
class Config:
    """A whole experiment: dataset, training, the methods' settings, seed and device.

    `forget_policy`: what the oracle (and every fine-tune) trains on (`FORGET_POLICIES`).
    `oracle_init`: `same` (default) starts the oracle from the control model's initial
    weights, and with the same shuffling seed, so it differs from the control only by
    the data; with nets this small `d` can flip sign between that and `independent`.
    `finetune`: the training rule of every warm-start fine-tune (weight pruning's and
    the finetune ablation's); None: the same as `train` (with a fresh optimizer).
    `methods`: each method's settings by method name (`unlearning.methods`): its settings
    dataclass, or a dict of overrides of its defaults. A Config holds what it is given;
    `unlearning.get_config` (`unlearning.methods.settings.resolve`) turns every dict into
    its dataclass and gives every registered method without an entry its defaults, so
    that `as_dict()` records them all.

    Only what can be checked here is checked here (types, ranges, choices); the dataset's
    name and options are checked where datasets are looked up, the methods' names and
    fields where methods are.
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
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset={self.dataset!r}: must be a dataset name (a non-empty str)")
        if not isinstance(self.train, TrainConfig):
            raise ValueError(f"train={self.train!r}: must be a TrainConfig")
        if self.finetune is not None and not isinstance(self.finetune, TrainConfig):
            raise ValueError(f"finetune={self.finetune!r}: must be a TrainConfig or None (the same as train)")
        _check_methods(self.methods)
        check_choice("forget policy", self.forget_policy, FORGET_POLICIES)
        check_choice("oracle init", self.oracle_init, ORACLE_INITS)
        check_int("seed", self.seed, 0, SEED_MAX)
        if self.device is not None:
            check_device(self.device)
        _check_options(self.dataset, self.dataset_options)

    @property
    def finetune_train(self) -> TrainConfig:
        return self.finetune if self.finetune is not None else self.train

    def method_settings(self, name: str):
        """The settings of method `name`; None when this config holds none (a method that takes no settings).

        A config from `unlearning.get_config` holds every registered method's settings; one built by hand
        holds what it was given (`unlearning.methods.settings.resolve` fills in the rest)."""
        value = self.methods.get(name)
        if isinstance(value, Mapping):
            raise ValueError(f"settings of method {name!r} are still a dict of overrides ({value!r}): build the "
                             "config with unlearning.get_config, or resolve it (unlearning.methods.settings.resolve)")
        return value

    def with_method(self, name: str, settings=None, **changes) -> Config:
        """A copy with method `name`'s settings replaced by `settings` (its settings dataclass, or a dict of
        overrides of its defaults), or with `changes` to the fields of the settings this config holds."""
        current = self.method_settings(name)
        if settings is None or isinstance(settings, Mapping):
            if current is None:
                raise ValueError(f"method {name!r} takes no settings (or this config holds none: build it with "
                                 f"unlearning.get_config); got {settings or changes!r}")
            given = changes if settings is None else settings
            for key in given:
                check_choice(f"setting of method {name!r}", key, [f.name for f in fields(current)])
            settings = replace(current, **changes) if settings is None else type(current)(**settings)
        elif current is not None and not isinstance(settings, type(current)):
            raise ValueError(f"settings of method {name!r} must be a {type(current).__name__} or a dict, "
                             f"got {type(settings).__name__}")
        return replace(self, methods={**self.methods, name: settings})

    def with_epoch_cap(self, max_epochs: int | None) -> Config:
        """A copy whose training runs stop after `max_epochs` (None: unchanged).

        The one epoch-cap rule (CLI `--max-epochs`, benchmark profiles): the training
        cap becomes `max_epochs`; a separate fine-tune rule is capped at it too, never
        raised (MNIST's one fine-tune epoch stays one), and so is every method's own
        fixed schedule: the fields its settings class names in `EPOCH_CAPPED` (the
        baselines' `epochs`), so that a profile which trains its originals for 2 epochs
        does not unlearn for 10.
        """
        if max_epochs is None:
            return self
        check_int("max_epochs", max_epochs, 1)
        train = replace(self.train, convergence=replace(self.train.convergence, max_epochs=max_epochs))
        finetune = self.finetune
        if finetune is not None:
            cap = min(max_epochs, finetune.convergence.max_epochs)
            finetune = replace(finetune, convergence=replace(finetune.convergence, max_epochs=cap))
        methods = {name: capped(settings, max_epochs) for name, settings in self.methods.items()}
        return replace(self, train=train, finetune=finetune, methods=methods)

    def as_dict(self) -> dict:
        return asdict(self)


def _check_methods(methods) -> None:
    """ValueError unless `methods` is a dict of method name -> its settings dataclass or a dict of overrides
    (whether each name and field exists is the method registry's to say: `unlearning.methods.settings`)."""
    if not isinstance(methods, dict) or not all(isinstance(k, str) for k in methods):
        raise ValueError(f"methods={methods!r}: must be a dict of method name -> settings")
    for name, value in methods.items():
        if not isinstance(value, Mapping) and not (is_dataclass(value) and not isinstance(value, type)):
            raise ValueError(f"settings of method {name!r} must be its settings dataclass or a dict, "
                             f"got {type(value).__name__}")


def _check_options(dataset: str, options) -> None:
    """ValueError unless `options` is a dict naming no option a Config gives elsewhere (`RESERVED_OPTIONS`);
    whether the loader of `dataset` takes them is the dataset registry's to say (`check_dataset_options`)."""
    if not isinstance(options, Mapping):
        raise ValueError(f"dataset_options={options!r}: must be a dict of loader options of dataset {dataset!r}")
    for key in options:
        if key in RESERVED_OPTIONS:
            raise ValueError(f"option {key!r} for dataset {dataset!r} is not allowed here: {RESERVED_OPTIONS[key]}")


def epoch_capped(settings_type: type) -> tuple[str, ...]:
    """The fields of a method's settings class that a profile's epoch cap bounds: its `EPOCH_CAPPED`
    class attribute (a tuple of names of integer fields; none when it declares nothing)."""
    names = getattr(settings_type, "EPOCH_CAPPED", ())
    known = {f.name for f in fields(settings_type)} if is_dataclass(settings_type) else set()
    for name in names:
        if name not in known:
            raise ValueError(f"{settings_type.__name__}.EPOCH_CAPPED names {name!r}, which is not one of its "
                             f"fields ({', '.join(sorted(known)) or 'none'})")
    return tuple(names)


def capped(settings, max_epochs: int):
    """`settings` with each field its class declares epoch-capped (`epoch_capped`) cut to `max_epochs`, never
    raised; settings that declare none (or a dict of overrides, or None) as they are."""
    if settings is None or isinstance(settings, Mapping):
        return settings
    changes = {name: max_epochs for name in epoch_capped(type(settings))
               if _is_int(getattr(settings, name)) and getattr(settings, name) > max_epochs}
    return replace(settings, **changes) if changes else settings
