"""A `Config` made whole where both registries are complete: the presets `get_config` hands out.

`unlearning.config.Config` is data with local checks; it imports neither registry. Here, above
both, a config is resolved (`resolve`): its dataset must be registered and take its
`dataset_options` (`data.registry`), and its `methods` become every registered method's
settings, each dict of overrides turned into the method's dataclass (`base.resolve_settings`),
so that `Config.as_dict()` records them all. `get_config(dataset, **overrides)` is a dataset's
paper preset, its fit to the model checked once (`check_preset_of`), resolved.
"""

from __future__ import annotations

from dataclasses import fields, replace

from ..config import RESERVED_OPTIONS, Config, check_choice
from ..data.registry import DatasetSpec, check_dataset_options, get_dataset
from .base import METHODS, check_preset, resolve_settings


def resolve(config: Config) -> Config:
    """`config` with every registered method's settings (`resolve_settings`; ValueError naming an unknown
    method or field), after checking that its dataset is registered and takes its `dataset_options`."""
    get_dataset(config.dataset)
    check_dataset_options(config.dataset, config.dataset_options, reserved=RESERVED_OPTIONS)
    return replace(config, methods=resolve_settings(config.methods))


# dataset name -> (its spec, the method registry) its preset was last found to fit under
_PRESETS_FIT: dict[str, tuple] = {}


def check_preset_of(dataset: str) -> DatasetSpec:
    """The spec of `dataset`, after checking that its preset builds, names it, and fits its model under every
    registered method that applies (`base.check_preset`; e.g. one pruning threshold per Linear layer).

    Checked again when the spec or the registered methods change (a plug-in loaded later)."""
    spec = get_dataset(dataset)
    done = _PRESETS_FIT.get(dataset)
    if done is None or done[0] is not spec or done[1] != METHODS:
        check_preset(spec)
        _PRESETS_FIT[dataset] = (spec, dict(METHODS))
    return spec


def get_config(dataset: str = "synthetic", **overrides) -> Config:
    """The paper preset of `dataset` (declared in its module), with top-level fields replaced by `overrides`,
    resolved (`resolve`); ValueError first if the preset does not fit its model (`check_preset_of`)."""
    for key in overrides:
        check_choice("config field", key, [f.name for f in fields(Config)])
    return resolve(replace(check_preset_of(dataset).preset(), **overrides))
