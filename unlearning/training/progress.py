"""Progress bars for the long parts of a run (training epochs, removal streams), with ETA.

Off unless a caller turns them on (`showing(True)`): the library, the tests and the
benchmarks print nothing; `python -m unlearning` turns them on unless `-q`. Even then
tqdm draws only on a terminal (`disable=None`), so logs of CI jobs and redirected
output stay free of carriage-return noise; those get the one-line log messages instead.

Bars are labelled with what is being trained: `labelled("mnist trial 2/4")` and
`labelled("oracle")` nest, giving e.g. ``mnist trial 2/4 oracle  37%|███▋ | 5.2/14 epochs``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm import tqdm

_SHOW: ContextVar[bool] = ContextVar("unlearning_progress_show", default=False)
_LABEL: ContextVar[tuple[str, ...]] = ContextVar("unlearning_progress_label", default=())
MIN_INTERVAL = 0.5          # seconds between redraws: cheap even at one update per batch


@contextmanager
def showing(on: bool = True) -> Iterator[None]:
    """Within this block, `bar` draws (on a terminal) when `on`."""
    token = _SHOW.set(on)
    try:
        yield
    finally:
        _SHOW.reset(token)


@contextmanager
def labelled(*parts: str) -> Iterator[None]:
    """Within this block, bars carry `parts` after the enclosing labels."""
    token = _LABEL.set((*_LABEL.get(), *parts))
    try:
        yield
    finally:
        _LABEL.reset(token)


def label() -> str:
    return " ".join(_LABEL.get())


def bar(total: float, unit: str) -> tqdm:
    """A bar over `total` `unit`s, labelled, drawn on stderr; a silent one unless `showing`.

    Use as a context manager and `update(n)` (fractions allowed: a training run
    advances by 1/batches per batch, so its ETA moves within long epochs too).
    """
    return tqdm(total=total, unit=unit, desc=label() or None, leave=False, file=sys.stderr,
                disable=None if _SHOW.get() else True, mininterval=MIN_INTERVAL, dynamic_ncols=True,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.4g}/{total:.4g} {unit}s "
                           "[{elapsed}<{remaining}{postfix}]")


def clock(seconds: float) -> str:
    """`seconds` as 0.0042s, 0.42s, 12.3s, 4m05s or 2h13m: one format for every duration the CLI prints."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 59.5:                      # .3g would round 59.96 up to "60s"
        return f"{seconds:.2g}s" if seconds < 0.1 else f"{seconds:.3g}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"
