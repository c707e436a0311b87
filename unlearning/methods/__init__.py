"""Unlearning methods behind one interface (`base`): a method receives K problems and returns K results.

Every public module of this package is imported here, and each registers its method
with `@register`; methods of other packages are loaded from the entry-point group
`unlearning_bench.methods` (see `unlearning.common.plugins`). Adding a method is one new module.
What a method's module needs comes from here: `register`, the `Problem` it is handed (trained
model, data, forget set, config, on_epoch), the `UnlearnResult` it returns and the cost record
`TrainRecord` (`from unlearning.methods import Problem, TrainRecord, UnlearnResult, register`).
`unlearn` (one problem) and `unlearn_many` (K) run a method by name.
"""

from ..common.plugins import import_modules, load_entry_points
from ..training.train import TrainRecord
from .base import (
           METHODS,
           Checkpoint,
           Method,
           MethodNotApplicable,
           Problem,
           UnlearnResult,
           applicability,
           check_applicable,
           check_preset,
           get_method,
           register,
           resolve_settings,
           unlearn,
           unlearn_many,
)

ENTRY_POINT_GROUP = "unlearning_bench.methods"

import_modules(__name__, __path__)
load_entry_points(ENTRY_POINT_GROUP, METHODS)

__all__ = ["ENTRY_POINT_GROUP", "METHODS", "Checkpoint", "Method", "MethodNotApplicable", "Problem", "TrainRecord",
           "UnlearnResult", "applicability", "check_applicable", "check_preset", "get_method", "register",
           "resolve_settings", "unlearn", "unlearn_many"]
