"""The order a benchmark session runs its cells in, so that pytest-split's consecutive chunks (`duration_based_chunks`,
the launcher's shards) cut where a cut costs nothing.

- **Units**: a module may define `shard_group(cell_id) -> key`; its cells with one key share what the lab trains (a
  forgetting panel's models; a paper 000 dataset's trials, trained as one stacked batch; a paper 002 seed's original
  and oracles), and run next to each other (`group_cells`: stably reordered by the first appearance of their key). A
  cell of a module without one is a unit of its own (the grid's: a cut there costs a shard a few small originals).
- **Free cells**: a module may set `SHARES_NOTHING = True` (test_verdict: each cell simulates its own panels): its
  cells can run anywhere.
- **Cuts**: pytest-split ends a shard at the first cell that brings it to its share of the recorded seconds
  (`total / splits`), wherever that falls. Where that would be inside a unit, the shard is first filled up to its share
  with later units that end before the share, then with free cells (`place_cuts`), so the cut falls before the unit:
  the next shard builds it once, none rebuilds it.
  Release 7f35d0f, split without this, cut paper 000's first California trial: the second shard retrained its
  1,000-epoch original and oracle (9 min 54 s).

Every shard computes the same order from the same collection and durations file, so the shards still partition the
session; each cell's numbers do not depend on where it runs (the sharded smoke check compares them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

SPLITTER = "duration_based_chunks"      # the pytest-split algorithm whose cuts `place_cuts` places


def unit_key(item) -> tuple:
    group = getattr(getattr(item, "module", None), "shard_group", None)
    callspec = getattr(item, "callspec", None)
    if group is None or callspec is None:
        return (item.nodeid,)
    return (item.module.__name__, group(callspec.id))


def is_free(item) -> bool:
    return bool(getattr(getattr(item, "module", None), "SHARES_NOTHING", False))


def group_cells(items) -> None:
    """Each unit's cells next to each other, units in the order of their first cell (stable)."""
    keys = [unit_key(item) for item in items]
    first: dict = {}
    for k in keys:
        first.setdefault(k, len(first))
    items[:] = [items[i] for i in sorted(range(len(items)), key=lambda i: (first[keys[i]], i))]


def seconds_of(items, recorded: dict[str, float]) -> Callable[[object], float]:
    """A cell's seconds as pytest-split counts them: its recorded ones, else the mean of the recorded cells."""
    known = [recorded[i.nodeid] for i in items if i.nodeid in recorded]
    mean = sum(known) / len(known) if known else 1.0
    return lambda item: recorded.get(item.nodeid, mean)


def units_of(items) -> list[list]:
    """Consecutive cells that share a unit key, as lists (a cell without `shard_group` alone)."""
    units: list[list] = []
    for item in items:
        key = unit_key(item)
        if units and len(key) == 2 and unit_key(units[-1][-1]) == key:
            units[-1].append(item)
        else:
            units.append([item])
    return units


class _Chunks:
    """pytest-split's `duration_based_chunks`, replayed as cells are placed: a shard ends once it holds its share."""

    def __init__(self, splits: int, share: float, seconds: Callable[[object], float]):
        self.splits, self.share, self.seconds = splits, share, seconds
        self.shard, self.filled, self.out = 1, 0.0, []

    def add(self, *items) -> None:
        for item in items:
            if self.shard < self.splits and self.filled >= self.share:
                self.shard, self.filled = self.shard + 1, 0.0
            self.out.append(item)
            self.filled += self.seconds(item)

    def short(self) -> float:
        """What the shard lacks of its share (0 once it holds it, or in the last shard)."""
        return max(self.share - self.filled, 0.0) if self.shard < self.splits else 0.0

    def cut_inside(self, unit) -> bool:
        return 0 < self.short() <= sum(self.seconds(i) for i in unit[:-1])


def place_cuts(items, splits: int, seconds: Callable[[object], float]) -> None:
    """Reorder `items` (already grouped) so that no chunk of pytest-split's `duration_based_chunks` ends inside a
    unit, where it can: before a unit the cut would fall in, the shard is filled to its share with later units that
    end before it (in their order), then with free cells. Free cells not needed at a cut run last."""
    if splits < 2:
        return
    free = [i for i in items if is_free(i)]
    units = units_of([i for i in items if not is_free(i)])
    chunks = _Chunks(splits, sum(seconds(i) for i in items) / splits, seconds)
    while units:
        unit = units.pop(0)
        if chunks.cut_inside(unit):
            for later in list(units):
                if chunks.short() > 0 and not chunks.cut_inside(later):
                    units.remove(later)
                    chunks.add(*later)
            if sum(map(seconds, free)) >= chunks.short():
                while chunks.short() > 0:
                    chunks.add(free.pop(0))
        chunks.add(*unit)
    chunks.add(*free)
    items[:] = chunks.out


class CutPlacer:
    """The plugin that places the cuts (`place_cuts`), registered by the benchmarks' conftest after pytest-split: among
    the `trylast` hooks the later-registered runs first, so it sees the cells after `-k` / `-m` deselected theirs and
    hands pytest-split the order it cuts."""

    PLUGIN = "unlearning-bench-cuts"

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items) -> None:
        splits = config.getoption("splits", None)
        path = config.getoption("durations_path", None)
        if not splits or config.getoption("splitting_algorithm", None) != SPLITTER or not path:
            return
        try:
            recorded = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return                           # pytest-split reports the missing or torn file itself
        place_cuts(items, int(splits), seconds_of(items, recorded))


def register(config) -> None:
    if not config.pluginmanager.has_plugin(CutPlacer.PLUGIN):
        config.pluginmanager.register(CutPlacer(), CutPlacer.PLUGIN)
