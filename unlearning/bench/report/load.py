"""Read saved benchmark runs, check their records against the record schema, choose the records the report shows.

Load: `json.load` each pytest-benchmark JSON file; keep the benchmarks whose `extra_info` carries a `schema_version`
this generator reads, with the keys that version requires and values their types and ranges allow (NaN and infinities
included: `unlearning.common.schema`, documented in docs/schema.md); flatten them with `pandas.json_normalize`. What is
not used is one `Problem` naming the path and why (exit 1); nothing usable raises `NoInput` (exit 2). Folders are
walked for `*.json`; an entry that cannot be read is named in the error's own words; a symlinked folder is named, not
walked; a FIFO is never opened.

Select: one profile (paper, else quick, else smoke) under the torch version of its newest run (`Loaded.by_torch`
holds the others); a benchmark saved by several runs of one torch version from the newest; a record copied into
several files (same machine, commit, datetime, record) once, each copy named. Runs saved after an interrupt, shards
of a set that is not whole and runs from a dirty tree are used and marked (`Run.status`, `Run.dirty`). Provenance
comes from `machine_info.provenance`, else py-cpuinfo's `machine_info.cpu`; each record carries its run's
`run.cpu_model`, `run.cpu_type`, `run.cpu_capability` and `run.torch` for `machines.mixed`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...common import schema
from ...running.provenance import KEY as PROVENANCE
from ...running.provenance import isa_flags, signature
from .. import shards
from . import machines
from .common import plural

PROFILE_ORDER = ("paper", "quick", "smoke")
READS = " or ".join(map(str, schema.VERSIONS))      # "1 or 2", for messages
SEE = "see docs/schema.md"                          # where a skipped record's reader finds the schema


class NoInput(Exception):
    """Nothing usable to report on (exit code 2); `problems` says what was skipped and why."""

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Run:
    """One saved run's provenance (from `machine_info`, `commit_info`, `datetime`)."""

    path: Path
    label: str                 # the path as given or found, shown in the report
    datetime: str
    torch: str
    profile: str
    device: str
    device_name: str
    threads: str
    machine: str
    python: str
    pytest_benchmark: str
    commit: str
    branch: str
    dirty: bool | None         # commit_info.dirty, or provenance's git_dirty (either true: dirty)
    complete: bool = True      # False: saved after an interrupt (machine_info.bench_complete)
    cells: tuple[int, int] | None = None    # (done, collected) cells of an incomplete run, where it says
    records: int = 0           # records of this run the report uses
    cpu_model: str | None = None            # None where not recorded
    cpu_signature: str | None = None        # "family 25, model 1, stepping 1": tells CPUs of one name apart
    cpu_flags: tuple[str, ...] = ()         # the ISA flags kernels are chosen by
    cpu_capability: str | None = None       # the ISA torch dispatched to; None before provenance was recorded
    onednn: str | None = None
    mkl: str | None = None
    dirty_by: tuple[str, ...] = ()          # which keys say the tree was dirty
    changes: int | None = None              # uncommitted paths (provenance's git_changes)
    changed_paths: tuple[str, ...] = ()     # the first of them
    shard: shards.Shard | None = None       # one shard of a split run (machine_info.bench_shard)
    shard_problems: tuple[str, ...] = ()    # why its set of shards is not one whole run (`shards.check`)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def identity(self) -> tuple[str, str, str]:
        """What tells one run from another: machine, commit, datetime (a copied file has the same)."""
        return (self.machine, self.commit, self.datetime)

    @property
    def status(self) -> str:
        """'' for a complete run; else why not ("incomplete (saved after an interrupt): N of M cells")."""
        if self.shard_problems:
            return f"shard {self.shard.group} of a sharded run that is not whole: {'; '.join(self.shard_problems)}"
        if self.complete:
            return ""
        cells = f"{self.cells[0]} of {self.cells[1]} cells" if self.cells else "its count of cells not recorded"
        return f"incomplete (saved after an interrupt): {cells}"

    @property
    def cpu_type(self) -> str | None:
        """The CPU's model name and signature, "AMD EPYC (family 25, model 1, stepping 1)"; None where not recorded."""
        if self.cpu_model is None:
            return None
        return self.cpu_model + (f" ({self.cpu_signature})" if self.cpu_signature else "")

    @property
    def kernels(self) -> str:
        """"AVX2 · oneDNN 3.12.0 · MKL 2024.2"; 'not recorded' for runs saved before provenance was."""
        parts = [self.cpu_capability, self.onednn and f"oneDNN {self.onednn}", self.mkl and f"MKL {self.mkl}"]
        return " · ".join(p for p in parts if p) or "not recorded"

    @property
    def device_label(self) -> str:
        """The device, with its name where that says more ("cuda:0 (NVIDIA H100)")."""
        shown = self.device_name and self.device_name != self.device
        return self.device + (f" ({self.device_name})" if shown else "")

    @classmethod
    def from_json(cls, path: Path, label: str, run: dict) -> Run:
        mi, ci = run["machine_info"], run.get("commit_info") or {}
        cpu, prov, cells = mi.get("cpu") or {}, mi.get(PROVENANCE) or {}, mi.get("bench_cells") or {}
        machine = ", ".join(str(x) for x in (mi.get("node"), cpu.get("brand_raw"), cpu.get("count") and
                                             f"{cpu['count']} CPUs", mi.get("system"), mi.get("machine")) if x)
        flags = prov.get("cpu_flags") if isinstance(prov.get("cpu_flags"), list) else cpu.get("flags")
        dirty_by = tuple(key for key, flag in (("commit_info.dirty", ci.get("dirty")),
                                               (f"{PROVENANCE}.git_dirty", prov.get("git_dirty"))) if flag is True)
        changes, paths = prov.get("git_changes"), prov.get("git_changed_paths")
        return cls(path=path, label=label, datetime=str(run.get("datetime") or ""),
                   torch=str(mi.get("torch") or "unknown"), profile=str(mi.get("bench_profile") or ""),
                   device=str(mi.get("device") or ""), device_name=str(mi.get("device_name") or ""),
                   threads=str(mi.get("threads") or ""), machine=machine,
                   python=str(mi.get("python_version") or ""), pytest_benchmark=str(run.get("version") or ""),
                   commit=str(ci.get("id") or ""), branch=str(ci.get("branch") or ""),
                   dirty=True if dirty_by else ci.get("dirty"), complete=mi.get("bench_complete") is not False,
                   cells=(cells["done"], cells["collected"]) if cells else None,
                   cpu_model=_fact(prov.get("cpu_model")) or _fact(cpu.get("brand_raw")),
                   cpu_signature=_fact(prov.get("cpu_signature")) or signature(cpu),
                   cpu_flags=tuple(isa_flags(flags if isinstance(flags, list) else None)),
                   cpu_capability=_fact(prov.get("cpu_capability")), onednn=_fact(prov.get("onednn")),
                   mkl=_fact(prov.get("mkl")), dirty_by=dirty_by,
                   changes=changes if type(changes) is int and changes >= 0 else None,
                   changed_paths=tuple(map(str, paths)) if isinstance(paths, list) else (), shard=_shard(run, label))


def _fact(v) -> str | None:
    """A recorded fact as text, whitespace collapsed ("Intel(R)  Xeon(R) " -> "Intel(R) Xeon(R)"); None for none."""
    text = " ".join(str(v).split()) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else ""
    return text or None


def _shard(run: dict, label: str) -> shards.Shard | None:
    """The run as a shard, without its records; None when it is not one or its `bench_shard` is malformed (then it is
    read as an unsharded run; `python -m benchmarks.cluster merge` names what is malformed)."""
    try:
        return dataclasses.replace(shards.from_run(run, label), run={}) if shards.shard_info(run) else None
    except ValueError:
        return None


@dataclass
class Loaded:
    records: pd.DataFrame                       # the shown profile and torch version, one row per benchmark
    by_torch: dict[str, pd.DataFrame]           # the shown profile, per torch version (incl. the shown one)
    runs: list[Run]                             # runs with at least one record used, sorted by name
    problems: list[Problem] = field(default_factory=list)
    profile: str = ""
    torch: str = ""
    mixed: list[machines.Mixed] = field(default_factory=list)    # groups mixing CPU types or torch versions

    @property
    def incomplete(self) -> list[Run]:
        return [r for r in self.runs if not r.complete]

    @property
    def dirty(self) -> list[Run]:
        return [r for r in self.runs if r.dirty]

    @property
    def schema_versions(self) -> list[int]:
        return sorted({int(v) for v in self.records["schema_version"].dropna()})


# -- finding inputs ---------------------------------------------------------------------------------------------------
def default_input(search: list[Path] | None = None) -> Path:
    """The newest saved run (by file mtime) under `.benchmarks/` of the working directory."""
    dirs = search if search is not None else [Path.cwd() / ".benchmarks"]
    found = [p for d in dirs if d.is_dir() for p in d.rglob("*.json") if p.is_file()]
    if not found:
        raise NoInput(f"no saved benchmark run found under {' or '.join(map(str, dirs))}; run e.g. "
                      "`pytest benchmarks/ --benchmark-save=NAME` first, or name JSON files or folders")
    return max(found, key=lambda p: (p.stat().st_mtime, str(p)))


def _walk(top: Path) -> tuple[list[Path], list[Problem]]:
    """The `*.json` entries under the folder `top` (sorted), and a problem for each folder that cannot be listed and
    each symlinked folder (not walked: it may lead back to a folder holding it)."""
    files, problems = [], []
    unlisted = lambda exc: problems.append(Problem(exc.filename, f"cannot be read: {exc.strerror}"))  # noqa: E731
    for root, dirs, names in os.walk(top, onerror=unlisted):
        files += [Path(root, n) for n in names if n.endswith(".json")]
        problems += [Problem(str(Path(root, d)), "a symlink to a folder: not walked (name the folder itself)")
                     for d in dirs if Path(root, d).is_symlink()]
    return sorted(files), sorted(problems, key=lambda p: p.path)


def expand(paths: list[str]) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """Files named and the JSON files under folders named (sorted, each once), with their labels; problems for
    names that do not exist, folders without JSON files and what cannot be walked."""
    files, problems, seen = [], [], set()
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found, probs = _walk(p)
            problems += probs + ([] if found else [Problem(given, "folder holds no .json files")])
            items = [(q, str(q)) for q in found]
        elif p.exists() or p.is_symlink():          # a dangling link is named when it is read
            items = [(p, given)]
        else:
            items, problems = [], [*problems, Problem(given, "no such file or folder")]
        for q, label in items:
            if (key := os.path.realpath(q)) not in seen:
                seen.add(key)
                files.append((q, label))
    return files, problems


# -- reading one run --------------------------------------------------------------------------------------------------
def _parse(path: Path) -> tuple[dict | None, str]:
    """The run's JSON when it is a pytest-benchmark run with benchmarks and well-formed metadata; else why not."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):        # a FIFO would block the read: never opened
            return None, "not a regular file: not read"
        with path.open(encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot be read: {getattr(exc, 'strerror', None) or exc}"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON, truncated or malformed (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list):
        return None, "not a pytest-benchmark run (no 'benchmarks' list)"
    if not run["benchmarks"]:
        return None, "the run holds no benchmarks"
    why = _malformed(run)
    return (None, f"skipped: malformed run metadata: {why}") if why else (run, "")


KINDS = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}
# the run metadata the report reads, each with the type it must have when present and not null (machine_info: always)
METADATA = (("machine_info", dict), ("machine_info.cpu", dict), ("commit_info", dict), ("datetime", str),
            ("version", str), ("machine_info.bench_complete", bool), ("machine_info.bench_cells", dict),
            (f"machine_info.{PROVENANCE}", dict))


def _kind(v) -> str:
    return KINDS.get(type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)


def _malformed(run: dict) -> str:
    """'' when the run's metadata has the shape pytest-benchmark writes; else what is wrong."""
    if run.get("machine_info") is None:
        return "no 'machine_info' object"
    for path, kind in METADATA:
        *parents, key = path.split(".")
        value = (run["machine_info"] if parents else run).get(key)      # machine_info is checked first
        if value is not None and not isinstance(value, kind):
            return f"'{path}' is {_kind(value)}, not {KINDS[kind]}"
    cells = run["machine_info"].get("bench_cells")
    count = lambda v: type(v) is int and v >= 0                         # noqa: E731
    if cells and not (count(cells.get("done")) and count(cells.get("collected"))
                      and cells["done"] <= cells["collected"]):
        return (f"'machine_info.bench_cells' is {_shown(cells)}, not {{\"done\": N, \"collected\": M}} with counts "
                "0 <= N <= M")
    return ""


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# what a value of each schema type must be when it is not null (a writer that means "no value" writes null)
RULES = {"int": (_finite, "a finite number"), "float": (_finite, "a finite number"),
         "bool": (lambda v: isinstance(v, bool), "true, false or null"),
         **dict.fromkeys(("list[int]", "list[float]"), (lambda v: isinstance(v, list) and all(
             x is None or _finite(x) for x in v), "a list of finite numbers"))}
TYPED = {k.name: RULES[k.type] for k in schema.KEYS if k.type in RULES and k.name != "schema_version"}


def _shown(v) -> str:
    """A value as the JSON file spells it (Infinity, NaN, "text", true), shortened."""
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def bad_values(info: dict) -> list[str]:
    """"KEY = VALUE, not a finite number" for each value of `info` its key's schema type does not allow, and
    "KEY = VALUE, not ≥ 0" ("KEY[i] = ..." in a series: its first) for each outside the range the key allows."""
    out = []
    for key, v in info.items():
        if key not in TYPED or v is None:
            continue
        ok, allowed = TYPED[key]
        if not ok(v):
            out.append(f"{key} = {_shown(v)}, not {allowed}")
            continue
        low, high = schema.value_range(key)
        outside = [(i, x) for i, x in enumerate(v if isinstance(v, list) else [v])
                   if x is not None and ((low is not None and x < low) or (high is not None and x > high))]
        if outside:
            i, x = outside[0]
            out.append(f"{key}{f'[{i}]' if isinstance(v, list) else ''} = {_shown(x)}, not {schema.range_text(key)}")
    return out


def _why(bench: dict) -> str:
    """'' for a usable record of our schema's versions; else why it is skipped."""
    info = bench["extra_info"]
    if missing := schema.missing(info):
        return f"lacks {', '.join(missing)} ({SEE})"
    if not isinstance(bench.get("fullname"), str) or not bench["fullname"]:
        return "has no 'fullname' (pytest-benchmark's id of the benchmark: it tells one benchmark in several runs)"
    return f"has {'; '.join(bad)} ({SEE})" if (bad := bad_values(info)) else ""


def _records(label: str, benches: list) -> tuple[list[dict], list[Problem]]:
    """The usable records; one problem for the foreign ones, one per other schema version, one per bad record."""
    good, problems, foreign, others = [], [], 0, Counter()
    for i, b in enumerate(benches):
        info = b.get("extra_info") if isinstance(b, dict) else None
        if not isinstance(info, dict) or "schema_version" not in info:
            foreign += 1
        elif type(version := info["schema_version"]) is not int or version not in schema.VERSIONS:
            others[repr(version)] += 1
        elif why := _why(b):
            name = next((b[k] for k in ("name", "fullname") if isinstance(b.get(k), str) and b[k]),
                        f"benchmark {i + 1}")
            problems.append(Problem(label, f"record skipped: {name} {why}"))
        else:
            good.append(b)
    total = len(benches)
    head = [Problem(label, f"{foreign} of {total} benchmarks have no extra_info.schema_version: not from this suite "
                           "(another pytest-benchmark suite?); skipped")] if foreign else []
    head += [Problem(label, f"{n} of {total} benchmarks have schema_version {v}; this generator reads "
                            f"schema_version {READS}; skipped") for v, n in sorted(others.items())]
    return good, head + problems


def to_frame(run: Run, benches: list[dict]) -> pd.DataFrame:
    """One row per record: extra_info keys as columns, pytest-benchmark's own under `bench.`, the run's facts under
    `run.`. Nested dicts of a record (`config`, `data_info`) stay one object column each (max_level=1)."""
    df = pd.json_normalize(benches, max_level=1)
    df.columns = [c.removeprefix("extra_info.") if c.startswith("extra_info.") else f"bench.{c}" for c in df.columns]
    return df.assign(**{"run.label": run.label, "run.datetime": run.datetime, "run.torch": run.torch,
                        "run.cpu_model": run.cpu_model, "run.cpu_type": run.cpu_type,
                        "run.cpu_capability": run.cpu_capability,
                        "run.record": [hashlib.sha256(json.dumps(b, sort_keys=True).encode()).hexdigest()
                                       for b in benches]})


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """The schema's numeric keys as floats (checked: finite numbers or null), its text keys as str or None."""
    numeric, text = ([k for k in keys if k in df.columns] for keys in (schema.NUMERIC, schema.TEXT))
    df[numeric] = df[numeric].astype(float)
    df[text] = df[text].map(lambda v: None if v is None or v != v else str(v))
    return df.copy()                 # one block per dtype again


def torch_key(version: str) -> tuple:
    return (*(int(x) for x in re.findall(r"\d+", version.split("+")[0])), version)


# -- choosing the records shown ---------------------------------------------------------------------------------------
def _read_all(files: list[tuple[Path, str]], problems: list[Problem]) -> tuple[dict[str, Run], pd.DataFrame]:
    runs, frames = {}, []
    for path, label in files:
        run, why = _parse(path)
        good, probs = _records(label, run["benchmarks"]) if run else ([], [Problem(label, why)])
        problems += probs
        if run and not good:
            problems.append(Problem(label, "skipped: no usable benchmark records"))
        elif good:
            runs[label] = Run.from_json(path, label, run)
            frames.append(to_frame(runs[label], good))
    if not frames:
        raise NoInput("no usable benchmark records in " + (", ".join(label for _, label in files) or "the input"),
                      problems)
    return runs, _typed(pd.concat(frames, ignore_index=True))


def _once(runs: dict[str, Run], df: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """Each record once: one saved by the same machine, commit and run datetime in several files (a copied run file)
    is kept from the first file read; a problem names each file holding copies, and whose."""
    labels = df["run.label"]
    key = labels.map(lambda label: repr(runs[label].identity)) + "\0" + df["bench.fullname"] + "\0" + df["run.record"]
    first, dup, totals = labels.groupby(key).transform("first"), key.duplicated(keep="first"), labels.value_counts()
    for (label, original), n in pd.DataFrame({"label": labels, "first": first})[dup].value_counts(sort=False).items():
        what = (f"a copy of {original}" if n == totals[label] else
                f"{n} of its {totals[label]} records are copies of {original}'s")
        problems.append(Problem(label, f"{what} (same machine, commit, datetime and {n} identical "
                                       f"{plural(n, 'cell')}): counted once"))
    return df[~dup]


def _one_profile(df: pd.DataFrame, problems: list[Problem]) -> tuple[str, pd.DataFrame]:
    """The most complete profile present, and its records; the others' are named as problems."""
    rank = {p: i for i, p in enumerate(PROFILE_ORDER)}
    present = sorted(set(df["profile"].dropna()), key=lambda p: (rank.get(p, len(rank)), p))
    if not present:
        raise NoInput("no record names its profile", problems)
    profile = present[0]
    others = df[df["profile"] != profile].groupby(["run.label", "profile"], dropna=False).size()
    for (label, other), n in others.items():
        problems.append(Problem(label, f"{n} record(s) of profile {other} not used: this report shows profile "
                                       f"{profile} (give one profile's runs)"))
    return profile, df[df["profile"] == profile]


def _newest_only(df: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """A benchmark saved by several runs of one torch version: the newest run's (sorted newest first)."""
    df = df.sort_values(["run.datetime", "run.label"], ascending=False, kind="stable")
    dup = df.duplicated(["run.torch", "bench.fullname"], keep="first")
    for label, n in df[dup].groupby("run.label").size().items():
        problems.append(Problem(label, f"{n} record(s) not used: the same benchmarks from a newer run "
                                       "of the same torch version are used"))
    return df[~dup]


def _shard_sets(runs: dict[str, Run], problems: list[Problem]) -> None:
    """Shards read directly (not merged) are checked as a set per launch (`shards.check`): each reason the set is not
    one whole run is a problem, and each of its shards is marked incomplete."""
    sets: dict = {}
    for run in runs.values():
        if run.shard is not None:
            sets.setdefault(run.shard.launch or run.shard.identity, []).append(run)
    for members in sets.values():
        found = tuple(shards.check([r.shard for r in members]))
        problems += [Problem(", ".join(sorted(r.label for r in members)),
                             f"sharded run not whole: {p}; the report holds the cells it has") for p in found]
        for run in members:
            run.shard_problems, run.complete = found, run.complete and not found


def load(paths: list[str]) -> Loaded:
    """Read every input (none named: the newest saved run); NoInput (with every problem) when nothing is usable."""
    if paths:
        files, problems = expand(paths)
    else:
        newest = default_input()
        files, problems = [(newest, os.path.relpath(newest) if newest.is_relative_to(Path.cwd()) else str(newest))], []
    runs, df = _read_all(files, problems)
    _shard_sets(runs, problems)
    profile, df = _one_profile(_once(runs, df, problems), problems)
    df = _newest_only(df, problems)
    used = df.groupby("run.label").size()
    for label, run in runs.items():
        run.records = int(used.get(label, 0))
    torch = str(df.iloc[0]["run.torch"])
    by_torch = {t: g.reset_index(drop=True)
                for t, g in sorted(df.groupby("run.torch"), key=lambda kv: torch_key(kv[0]))}
    return Loaded(records=by_torch[torch], by_torch=by_torch, problems=problems, profile=profile, torch=torch,
                  runs=sorted((r for r in runs.values() if r.records), key=lambda r: (r.name, r.label)),
                  mixed=[m for g in by_torch.values() for m in machines.mixed(g)])
