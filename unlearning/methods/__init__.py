"""Unlearning methods behind one interface (`base`); importing this package registers them all."""

from . import finetune, naive_retrain, random_relabel, weight_pruning  # noqa: F401  (registration)
from .base import (METHODS, Checkpoint, Method, MethodNotApplicable, UnlearnResult, check_applicable,
                   get_method, register, unlearn)

__all__ = ["METHODS", "Checkpoint", "Method", "MethodNotApplicable", "UnlearnResult", "check_applicable",
           "get_method", "register", "unlearn"]
