"""A benchmark run split into shards (pytest-split's `--splits N --group k`): what each shard's saved run says about
itself, the checks that a set of shards is one whole run, and the merge into one pytest-benchmark JSON.

Each shard saves an ordinary pytest-benchmark JSON; `benchmarks/conftest.py` adds to its `machine_info`:

- `bench_shard`: {"group": k, "splits": N, "algorithm": pytest-split's, "launch": the launcher's id or null};
- `bench_failed`: the node ids of the cells that failed or errored (a failed cell has no record to show);
- `bench_built`: what the shard's lab trained before its cells could run (originals, oracles, forgetting panels),
  each with its seconds: the same entry in two shards is work the split duplicated (`duplicated_work`).

`check` names every reason a set of shards is not one whole run: different commits (or a dirty tree), profiles,
torch versions, split counts or launches; a missing group; a group saved twice; a shard that failed, was cut
short (`bench_complete` false) or holds a cell another shard holds too. `merge` writes one run whose
`machine_info.bench_complete` is true only when `check` found nothing: the report generator then reads it as it
reads an unsharded run (it also reads the shards' files directly and runs the same check,
`unlearning.bench.report.load`). 
Torch-free and pandas-free: the report generator and the launcher both use it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..common.files import write_atomic

SHARD = "bench_shard"
FAILED = "bench_failed"
BUILT = "bench_built"
SHARDS = "bench_shards"          # the merged run's summary of its shards
LAUNCH_ENV = "UNLEARNING_LAUNCH"  # the launcher's id of one sharded run, put into every shard's bench_shard


@dataclass(frozen=True)
class Shard:
    """One shard's saved run, as far as the merge needs it."""

    label: str
    group: int
    splits: int
    launch: str | None
    commit: str
    dirty: bool
    profile: str
    torch: str
    complete: bool
    failed: tuple[str, ...]
    cells: tuple[str, ...]             # fullnames of its benchmarks
    built: tuple[dict, ...] = ()
    run: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def identity(self) -> tuple:
        """What every shard of one run shares."""
        return (self.commit, self.dirty, self.profile, self.torch, self.splits, self.launch)


def shard_info(run: dict) -> dict | None:
    """The run's `machine_info.bench_shard` when it is a shard, else None."""
    info = (run.get("machine_info") or {}).get(SHARD) if isinstance(run, dict) else None
    return info if isinstance(info, dict) else None


def _int(v) -> int | None:
    return v if type(v) is int else None


def from_run(run: dict, label: str) -> Shard:
    """A shard from its parsed run; ValueError naming what is malformed (or that it is not a shard)."""
    info = shard_info(run)
    if info is None:
        raise ValueError(f"{label}: not a shard (no machine_info.{SHARD}: saved by an unsharded run)")
    group, splits = _int(info.get("group")), _int(info.get("splits"))
    if group is None or splits is None or not 1 <= group <= splits:
        raise ValueError(f"{label}: machine_info.{SHARD} needs whole numbers 1 <= group <= splits, "
                         f"not group {info.get('group')!r}, splits {info.get('splits')!r}")
    mi, ci = run.get("machine_info") or {}, run.get("commit_info") or {}
    benches = run.get("benchmarks") if isinstance(run.get("benchmarks"), list) else []
    failed = mi.get(FAILED) if isinstance(mi.get(FAILED), list) else []
    built = mi.get(BUILT) if isinstance(mi.get(BUILT), list) else []
    return Shard(label=label, group=group, splits=splits, launch=info.get("launch"), commit=str(ci.get("id") or ""),
                 dirty=ci.get("dirty") is True, profile=str(mi.get("bench_profile") or ""),
                 torch=str(mi.get("torch") or ""), complete=mi.get("bench_complete") is not False,
                 failed=tuple(map(str, failed)), cells=tuple(str(b.get("fullname")) for b in benches),
                 built=tuple(b for b in built if isinstance(b, dict)), run=run)


def read(path: Path) -> Shard:
    """The shard saved at `path` (OSError, or ValueError naming what is wrong with it)."""
    try:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    return from_run(run, str(path))


def _mixed(shards: list[Shard]) -> list[str]:
    problems = []
    for name, get in (("commits", lambda s: s.commit[:12] + ("-dirty" if s.dirty else "")),
                      ("profiles", lambda s: s.profile), ("torch versions", lambda s: s.torch),
                      ("split counts", lambda s: str(s.splits)), ("launches", lambda s: str(s.launch))):
        seen = defaultdict(list)
        for s in shards:
            seen[get(s)].append(s.label)
        if len(seen) > 1:
            problems.append(f"the shards come from different {name}: "
                            + "; ".join(f"{value} ({', '.join(labels)})" for value, labels in sorted(seen.items())))
    return problems


def _groups(shards: list[Shard], splits: int) -> list[str]:
    problems = []
    by_group = defaultdict(list)
    for s in shards:
        by_group[s.group].append(s.label)
    missing = [k for k in range(1, splits + 1) if k not in by_group]
    if missing:
        problems.append(f"missing shard{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {splits}")
    problems += [f"shard {k} of {splits} saved {len(labels)} times: {', '.join(labels)}"
                 for k, labels in sorted(by_group.items()) if len(labels) > 1]
    return problems


def _failures(shards: list[Shard]) -> list[str]:
    problems = []
    for s in sorted(shards, key=lambda s: s.group):
        if s.failed:
            problems.append(f"shard {s.group} of {s.splits} ({s.label}) failed: {len(s.failed)} cell(s) failed or "
                            f"errored, first {s.failed[0]}")
        if not s.complete:
            problems.append(f"shard {s.group} of {s.splits} ({s.label}) is incomplete: saved after an interrupt")
    owners = defaultdict(list)
    for s in shards:
        for cell in s.cells:
            owners[cell].append(s.group)
    twice = {cell: groups for cell, groups in owners.items() if len(set(groups)) > 1}
    if twice:
        cell, groups = next(iter(twice.items()))
        problems.append(f"{len(twice)} cell(s) are in more than one shard, first {cell} (shards "
                        f"{', '.join(map(str, sorted(set(groups))))})")
    return problems


def check(shards: list[Shard]) -> list[str]:
    """Every reason `shards` are not one whole run, one sentence each ([] when they are)."""
    if not shards:
        return ["no shards"]
    problems = _mixed(shards)
    splits = Counter(s.splits for s in shards).most_common(1)[0][0]
    return problems + _groups(shards, splits) + _failures(shards)


def duplicated_work(shards: list[Shard]) -> dict:
    """What more than one shard trained (the lab's originals, oracles and panels that the split made two shards
    need): {"items": [{"what", "key", "shards", "seconds"}], "seconds": extra seconds (all but the first shard's
    build of each), "built_seconds": every shard's builds}."""
    by_key = defaultdict(list)
    for s in shards:
        for b in s.built:
            by_key[(str(b.get("what")), str(b.get("key")))].append((s.group, float(b.get("seconds") or 0.0)))
    items = [{"what": what, "key": key, "shards": sorted(g for g, _ in builds),
              "seconds": sum(sec for _, sec in sorted(builds)[1:])}
             for (what, key), builds in sorted(by_key.items()) if len(builds) > 1]
    return {"items": items, "seconds": sum(i["seconds"] for i in items),
            "built_seconds": sum(sec for builds in by_key.values() for _, sec in builds)}


def merged_run(shards: list[Shard]) -> tuple[dict, list[str]]:
    """One pytest-benchmark run holding every shard's cells in group order (which is collection order: pytest-split
    cuts the collected cells into consecutive chunks), and the problems `check` found; its `bench_complete` is
    true only when there are none, and `bench_shards` says which shards it holds and what was wrong. ValueError for
    no shards."""
    if not shards:
        raise ValueError("no shards to merge")
    problems = check(shards)
    ordered = sorted(shards, key=lambda s: (s.group, s.label))
    first = ordered[0].run
    mi = {k: v for k, v in (first.get("machine_info") or {}).items() if k not in (SHARD, FAILED, BUILT)}
    cells = [(s.run.get("machine_info") or {}).get("bench_cells") or {} for s in ordered]
    mi.update(bench_complete=not problems,
              bench_cells={"done": sum(c.get("done", len(s.cells)) for c, s in zip(cells, ordered, strict=True)),
                           "collected": sum(c.get("collected", len(s.cells)) for c, s in zip(cells, ordered,
                                                                                              strict=True))})
    mi[FAILED] = [c for s in ordered for c in s.failed]
    mi[SHARDS] = {"splits": ordered[0].splits, "launch": ordered[0].launch,
                  "files": {str(s.group): s.label for s in ordered}, "problems": problems,
                  "duplicated_work": duplicated_work(ordered)}
    run = {**first, "machine_info": mi,
           "datetime": max((str(s.run.get("datetime") or "") for s in ordered), default=""),
           "benchmarks": [b for s in ordered for b in s.run.get("benchmarks") or []]}
    return run, problems


def write_json(run: dict, out: Path) -> None:
    """Write `run` to `out` atomically (a temporary file beside it, fsync'ed, renamed over): an interrupted merge
    never leaves a torn file where a run was."""
    write_atomic(out, json.dumps(run, indent=2).encode())


def merge(paths: list[Path], out: Path | None = None) -> tuple[dict, list[str]]:
    """Read the shards at `paths`, merge them (`merged_run`) and write the result to `out` when given. A file that
    cannot be read or is not a shard is a problem too."""
    shards, problems = [], []
    for p in paths:
        try:
            shards.append(read(p))
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
    if not shards:
        raise ValueError("nothing to merge: " + ("; ".join(problems) or "no files given"))
    run, found = merged_run(shards)
    problems += found
    if problems:
        run["machine_info"]["bench_complete"] = False
        run["machine_info"][SHARDS]["problems"] = problems
    if out is not None:
        write_json(run, out)
    return run, problems
