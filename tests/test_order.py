"""The cells' order for pytest-split's consecutive chunks (`benchmarks/order.py`): units kept whole, cuts placed with
the free cells, checked against pytest-split's own algorithm."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_split.algorithms import Algorithms

from benchmarks import order


def module(name: str, group=None, free=False):
    return SimpleNamespace(__name__=name, shard_group=group, SHARES_NOTHING=free)


PANELS = module("panels", group=lambda cell_id: cell_id.split("-")[0])
VERDICT = module("verdict", free=True)


def cell(mod, cell_id: str):
    return SimpleNamespace(module=mod, callspec=SimpleNamespace(id=cell_id), nodeid=f"{mod.__name__}::t[{cell_id}]")


def chunks(items, seconds: dict[str, float], splits: int) -> list[list[str]]:
    groups = Algorithms["duration_based_chunks"].value(splits, items, seconds)
    return [[i.nodeid for i in g.selected] for g in groups]


def units_cut(shards: list[list[str]]) -> set[str]:
    """The panel units that appear in more than one shard."""
    seen: dict[str, set[int]] = {}
    for k, shard in enumerate(shards):
        for node in shard:
            if node.startswith("panels::"):
                seen.setdefault(node.split("[")[1].split("-")[0], set()).add(k)
    return {u for u, ks in seen.items() if len(ks) > 1}


def session():
    # panel a: 30 s; panel b: 50 s, its first cell the build (40 s); panel c: 10 s; 15 verdict cells of 2 s
    items = [cell(PANELS, "a-1"), cell(PANELS, "a-2"), cell(PANELS, "b-1"), cell(PANELS, "b-2"), cell(PANELS, "b-3"),
             cell(PANELS, "c-1"), *[cell(VERDICT, f"v{k}") for k in range(15)]]
    seconds = {"panels::t[a-1]": 20, "panels::t[a-2]": 10, "panels::t[b-1]": 40, "panels::t[b-2]": 5,
               "panels::t[b-3]": 5, "panels::t[c-1]": 10, **{f"verdict::t[v{k}]": 2 for k in range(15)}}
    return items, seconds


def test_without_placed_cuts_pytest_split_cuts_inside_a_unit():
    items, seconds = session()
    assert units_cut(chunks(items, seconds, 2)) == {"b"}        # the share is 60 s: reached inside panel b


def test_placed_cuts_keep_every_unit_in_one_shard_filled_with_later_units_then_free_cells():
    items, seconds = session()
    order.place_cuts(items, 2, order.seconds_of(items, seconds))
    shards = chunks(items, seconds, 2)
    assert units_cut(shards) == set()
    first = [n.split("[")[1].rstrip("]") for n in shards[0]]
    assert first[:3] == ["a-1", "a-2", "c-1"] and all(c.startswith("v") for c in first[3:]) and len(first) > 3
    assert sorted(n for s in shards for n in s) == sorted(i.nodeid for i in session()[0])    # a partition
    durations = [sum(seconds[n] for n in s) for s in shards]
    assert durations == [60, 60]


def test_too_few_free_cells_leave_the_order_as_grouped_and_one_shard_leaves_it_alone():
    items, seconds = session()
    items = [*[i for i in items if i.module is not VERDICT][:5], cell(VERDICT, "v0")]
    before = [i.nodeid for i in items]
    order.place_cuts(items, 2, order.seconds_of(items, seconds))
    assert [i.nodeid for i in items] == before
    order.place_cuts(items, 1, order.seconds_of(items, seconds))
    assert [i.nodeid for i in items] == before


def test_a_cell_without_a_recorded_duration_counts_as_the_mean_as_in_pytest_split():
    items, _seconds = session()
    seconds_of = order.seconds_of(items[:2], {"panels::t[a-1]": 20, "panels::t[a-2]": 10})
    assert seconds_of(items[5]) == 15.0
