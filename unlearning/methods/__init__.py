"""Unlearning methods behind one interface (`base`).

Every public module of this package is imported here, and each registers its method
with `@register`; methods of other packages are loaded from the entry-point group
`unlearning_bench.methods` (see `unlearning.common.plugins`). Adding a method is one new module.
What a method's module needs comes from here: `register`, `UnlearnResult` and the cost
record `TrainRecord` (`from unlearning.methods import TrainRecord, UnlearnResult, register`).
"""

from ..common.plugins import import_modules, load_entry_points
from ..training.train import TrainRecord
from .base import (
           METHODS,
           Checkpoint,
           Method,
           MethodNotApplicable,
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

__all__ = ["ENTRY_POINT_GROUP", "METHODS", "Checkpoint", "Method", "MethodNotApplicable", "TrainRecord",
           "UnlearnResult", "applicability", "check_applicable", "check_preset", "get_method", "register",
           "resolve_settings", "unlearn", "unlearn_many"]
