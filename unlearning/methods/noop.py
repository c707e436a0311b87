"""The do-nothing floor: every method must forget more than this to have done anything."""

from __future__ import annotations

from ..training.train import TrainRecord
from .base import UnlearnResult, register


@register("noop", paper="floor (ours): the trained model returned unchanged")
def noop(problems) -> list[UnlearnResult]:
    """Return a copy of the trained model untouched, at zero cost.

    A method that scores like `noop` on the forgetting metrics has not forgotten,
    whatever its accuracy: the floor every table and figure shows beside the others.
    """
    return [UnlearnResult("noop", p.trained.copy_model(), TrainRecord(rule="no-op: the trained model unchanged",
                                                                      converged=None), {}) for p in problems]
