"""A method's search space: the ranges its hyperparameters are tuned over (`unlearning.running.tuning`).

Every method that has knobs declares one `Space` when it registers (`register(..., search=...)`),
beside its settings dataclass, so the ranges live with the defaults they surround. The tuner
gives every method the same search (seeded TPE, the same number of trials) over its own space.

`params` name the knobs: by default each is a field of the method's settings dataclass and a
value `v` becomes `config.with_method(name, field=v)`. A method whose knobs are not plain
fields (weight pruning's thresholds scaled together, the fine-tune's training rule) gives
`apply(config, method, values) -> Config` instead, and `preset(config, method, names)`, the
preset's point (the search's first trial; None: the preset is not a point of the space).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import Config, check_real


@dataclass(frozen=True)
class Real:
    """A real knob in [low, high], searched on a log scale by default."""

    low: float
    high: float
    log: bool = True

    def __post_init__(self):
        check_real("low", self.low, 0.0 if self.log else None, low_open=self.log)
        check_real("high", self.high, self.low, low_open=True)


@dataclass(frozen=True)
class Int:
    """An integer knob in low..high."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self):
        if not (isinstance(self.low, int) and isinstance(self.high, int) and self.low <= self.high):
            raise ValueError(f"Int({self.low!r}, {self.high!r}): need integers low <= high")
        if self.log and self.low < 1:
            raise ValueError(f"Int({self.low!r}, {self.high!r}, log=True): a log scale needs low >= 1")


def set_fields(config: Config, method: str, values: Mapping) -> Config:
    """The default `Space.apply`: each value replaces the settings field of its name."""
    return config.with_method(method, **values) if values else config


def read_fields(config: Config, method: str, names) -> dict:
    """The default `Space.preset`: the preset's value of each knob, read from the settings field of its name."""
    settings = config.method_settings(method)
    return {name: getattr(settings, name) for name in names}


@dataclass(frozen=True)
class Space:
    """The knobs of one method and how a point of the space becomes a `Config`."""

    params: Mapping[str, Real | Int]
    apply: Callable[[Config, str, Mapping], Config] = set_fields
    preset: Callable[[Config, str, tuple], dict | None] = read_fields
    note: str = ""
    # whether the space holds a point that barely changes the trained model (an lr near 0): the search can then
    # always find "do little", so a tuned point is never farther from retraining than the no-op (tests/test_searches.py)
    does_little: bool = True

    def __post_init__(self):
        if not self.params:
            raise ValueError("a Space needs at least one knob; a method without knobs registers no search")
        for name, p in self.params.items():
            if not isinstance(p, (Real, Int)):
                raise ValueError(f"knob {name!r}: {p!r} is not a Real or Int range")

    def configure(self, config: Config, method: str, values: Mapping) -> Config:
        """`config` with the method set to the point `values` (every knob of the space, and no other)."""
        if set(values) != set(self.params):
            raise ValueError(f"method {method!r}: a point of its space sets {sorted(self.params)}; "
                             f"got {sorted(values)}")
        for name, v in values.items():
            p = self.params[name]
            if not p.low <= v <= p.high:
                raise ValueError(f"method {method!r}: {name}={v!r} is outside its range [{p.low:g}, {p.high:g}]")
        return self.apply(config, method, dict(values))

    def preset_point(self, config: Config, method: str) -> dict | None:
        """The knobs' values in `config` (the method's preset), or None where the space does not hold them."""
        point = self.preset(config, method, tuple(self.params))
        if point is None or any(v is None or not self.params[k].low <= v <= self.params[k].high
                                for k, v in point.items()):
            return None
        return point

    def describe(self) -> dict:
        """The space as JSON: each knob's kind, range and scale (and the note)."""
        out = {name: {"kind": type(p).__name__.lower(), "low": p.low, "high": p.high, "log": p.log}
               for name, p in self.params.items()}
        return {"params": out, "does_little": self.does_little, **({"note": self.note} if self.note else {})}
