"""The datasets: one module each, found by walking this package (and plug-ins' entry points).

A dataset module declares everything the suite knows about its dataset in one
`DatasetSpec` given to `register_dataset`: name, task, input shape, classes, loader,
model factory, paper preset (with its pruning thresholds), which sets are evaluated and
where S and d are measured, provenance. Adding a dataset is one new module here (or, from
another package, a module named by an entry point of the group `unlearning_bench.datasets`).
How big it runs in each benchmark profile is the benchmarks' business (`benchmarks/profiles.py`).

A name becomes a spec here (`get_dataset`), where a run starts from a name (the CLI, a
config's `dataset`, `load_dataset`); the loaded `Data` carries its spec (`Data.spec`), so
code holding the data reads it there (`spec_of`). A spec's fields are checked when it is
registered (a ValueError saying what and where). Its preset is checked where both
registries are complete, before `get_config` hands it out (`unlearning.methods.settings`):
it must build, name the dataset, and fit its model under every method that applies to it
(e.g. one pruning threshold per Linear layer). This package imports neither the methods nor
the models, metrics or training built on it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..config import EVAL_SETS, Config, check_choice
from .base import TASKS, Data

ENTRY_POINT_GROUP = "unlearning_bench.datasets"
D_ON = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the suite knows about one dataset.

    `n_train`: training rows at full size (what the benchmark grid can remove from).
    `preset`: returns the paper's `Config` for this dataset (or this suite's, where no
    paper covers it). `eval_sets`: the sets every record reports (see
    `metrics.evaluate`); `d_on`: the set X that S and d are measured on (`train`, the
    paper's choice, or `test` where predicting the training set per record is costly).
    `new_draw_per_seed`: each seed draws a new dataset (the synthetic set), instead of
    one load shared by every seed. `order`: position in
    tables, figures and listings (smaller first). `threads`: torch threads its training
    uses, an int or `"budget"` (every CPU given); None lets `unlearning.training.threads` decide
    from the work of one training step (one thread for small models).
    """

    name: str
    task: str
    input_shape: tuple[int, ...]
    num_classes: int | None
    n_train: int
    loader: Callable[..., Data]
    model: Callable[[], nn.Module]
    preset: Callable[[], Config]
    description: str
    provenance: str
    paper: str | None = None
    eval_sets: tuple[str, ...] = EVAL_SETS
    d_on: str = "train"
    new_draw_per_seed: bool = False
    order: int = 100
    threads: int | str | None = None

    def load(self, **options) -> Data:
        """Load this dataset (see its module's loader for `options`; one it does not take is a ValueError
        naming it and the ones it does); the data carries this spec (`Data.spec`)."""
        check_dataset_options(self.name, options)
        return replace(self.loader(**options), spec=self)

    def probe(self) -> Data:
        """A two-row stand-in with this dataset's task and shapes, for applicability checks
        that must not load (or download) the real files."""
        x = torch.zeros(2, *self.input_shape)
        y = torch.zeros(2, dtype=torch.long if self.task == "multiclass" else torch.float32)
        return Data(self.name, self.task, x, y, x[:0], y[:0], num_classes=self.num_classes, info={"probe": True},
                    spec=self)

    def build_model(self) -> nn.Module:
        return self.model()


DATASETS: dict[str, DatasetSpec] = {}


def _check_fields(spec: DatasetSpec) -> None:
    check_choice(f"task of dataset {spec.name!r}", spec.task, TASKS)
    check_choice(f"d_on of dataset {spec.name!r}", spec.d_on, D_ON)
    for s in spec.eval_sets:
        check_choice(f"evaluation set of dataset {spec.name!r}", s, EVAL_SETS)
    if spec.threads is not None and spec.threads != "budget" and not (
            isinstance(spec.threads, int) and not isinstance(spec.threads, bool) and spec.threads >= 1):
        raise ValueError(f"dataset {spec.name!r}: threads={spec.threads!r}; allowed: None (decided by the step's "
                         "work), 'budget' (every CPU given) or an integer >= 1")
    if (spec.task != "regression") != (spec.num_classes is not None and spec.num_classes >= 2):
        raise ValueError(f"dataset {spec.name!r}: num_classes={spec.num_classes!r} does not fit task {spec.task!r}")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` to `DATASETS` after checking its fields (ValueError, and nothing registered, if one is
    wrong). Its preset is checked against the methods before first use (`unlearning.methods.settings`)."""
    if spec.name in DATASETS:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _check_fields(spec)
    DATASETS[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    """The spec of dataset `name`; ValueError naming the registered ones (the one answer to
    "which datasets exist"). For code that starts from a name; code holding the data uses `spec_of`."""
    check_choice("dataset", name, names())
    return DATASETS[name]


def spec_of(data: Data) -> DatasetSpec:
    """The spec `data` carries (`Data.spec`, set by `load_dataset`), else, for data built by hand,
    the registered spec of its name."""
    return data.spec if data.spec is not None else get_dataset(data.name)


def names() -> list[str]:
    """Registered dataset names in their display order."""
    return sorted(DATASETS, key=lambda n: (DATASETS[n].order, n))


def loader_options(name: str) -> list[str] | None:
    """The keyword options the loader of dataset `name` takes, sorted; None when it takes any
    (a `**kwargs` loader)."""
    params = inspect.signature(get_dataset(name).loader).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def check_dataset_options(name: str, options, reserved: Mapping[str, str] | None = None) -> None:
    """ValueError unless `options` is a dict whose every key is an option of dataset `name`'s
    loader, naming the option, the dataset and the options it takes. `reserved`: options
    given elsewhere ({option: where to give it instead}), refused here too."""
    if not isinstance(options, Mapping):
        raise ValueError(f"dataset_options={options!r}: must be a dict of loader options of dataset {name!r}")
    reserved = reserved or {}
    allowed = loader_options(name)
    for key in options:
        if key in reserved:
            raise ValueError(f"option {key!r} for dataset {name!r} is not allowed here: {reserved[key]}")
        if allowed is not None and key not in allowed:
            takes = ", ".join(k for k in allowed if k not in reserved) or "none"
            raise ValueError(f"unknown option {key!r} for dataset {name!r}; allowed: {takes}")


def load_dataset(name: str, **options) -> Data:
    """Load a registered dataset by name (see its module's loader for `options`; an option
    it does not take is a ValueError naming it and the ones it does); the data carries its spec."""
    return get_dataset(name).load(**options)


def probe_data(name: str) -> Data:
    """A two-row stand-in with the task and shapes of dataset `name` (no file is read)."""
    return get_dataset(name).probe()



__all__ = ["DATASETS", "ENTRY_POINT_GROUP", "DatasetSpec", "check_dataset_options", "get_dataset",
           "load_dataset", "loader_options", "names", "probe_data", "register_dataset", "spec_of"]
