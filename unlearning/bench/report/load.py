"""Find, read and check saved benchmark runs; choose the records the report shows.

A run is a pytest-benchmark JSON file (`--benchmark-save`, `--benchmark-json`). Its
benchmarks are ours when their `extra_info` carries `schema_version`; the versions read and
the keys each version's records must have come from `unlearning.common.schema` (torch-free).
Everything that is not used is reported as a `Problem` naming the file and the reason; the
caller turns problems into exit code 1. A file whose run metadata is malformed (no `machine_info`
object, `machine_info.cpu` or `commit_info` not an object, ...) is skipped; so is a record without
pytest-benchmark's `fullname`, or with a value its key's type does not allow (a string, NaN or an
infinity in a numeric key, a non-boolean in a boolean key, a non-number in a series): such a value is
never averaged, and every count `n` counts the records whose values were averaged. So is a record with a value
outside the range its key allows (`unlearning.common.schema.value_range`: negative seconds, epochs, steps or counts; an
accuracy, fraction or AUC outside [0, 1]).

Folders are walked whole: their `.json` files are read (other regular files are not inputs), and every entry that
cannot be walked or read is a named problem, whatever its name: a dangling symlink, a symlink loop or a link to a
folder holding it, a FIFO, socket or device, a folder that cannot be listed. A symlinked folder elsewhere is walked
once.

Selection: the report shows one profile (the most complete present: paper, quick,
smoke) and one torch version (that of the newest run of that profile); runs of the same
profile under other torch versions feed the torch-version comparison. A benchmark saved
by several runs (same `fullname`, same torch version) is taken from the newest run. A record saved twice (same
machine, commit, run datetime and benchmark: a copied run file) is counted once, from the first file read; each file
holding such copies is named with the file it copies.

A run saved after an interrupt (`machine_info.bench_complete` false, `machine_info.bench_cells` {"done": N,
"collected": M}) is used and marked incomplete (`Run.status`); the README and the command line say so.

What moves the numbers comes from `machine_info.provenance` (`unlearning.running.provenance`: CPU model, signature and
ISA flags, the ISA torch dispatched to, oneDNN / MKL versions, the git tree); runs saved before that key read the CPU
model, signature and flags from `machine_info.cpu` (py-cpuinfo's `brand_raw`, `family`, `model`, `stepping`,
`flags`) and leave the dispatched ISA unknown. A run is dirty when its `commit_info.dirty` or its provenance's
`git_dirty` is true. Each record carries its run's `run.cpu_model`, `run.cpu_type` (the model name and its
signature), `run.cpu_capability` and `run.torch`, so that `machines.mixed` can name the table cells that average runs
of different CPU types or torch versions.
"""

from __future__ import annotations

import dataclasses
import errno
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
    label: str                 # the path as given / found, shown in the report
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
    # what moves the numbers (machine_info.provenance; older runs: machine_info.cpu), None where not recorded
    cpu_model: str | None = None
    cpu_signature: str | None = None           # "family 25, model 1, stepping 1": tells CPUs of one name apart
    cpu_flags: tuple[str, ...] = ()            # the ISA flags kernels are chosen by (`unlearning.running.provenance`)
    cpu_capability: str | None = None          # the ISA torch dispatched to; None before provenance was recorded
    onednn: str | None = None
    mkl: str | None = None
    dirty_by: tuple[str, ...] = ()             # which keys say the tree was dirty (commit_info.dirty, ...)
    changes: int | None = None                 # uncommitted paths (provenance's git_changes)
    changed_paths: tuple[str, ...] = ()        # the first of them
    shard: shards.Shard | None = None          # one shard of a split run (machine_info.bench_shard)
    shard_problems: tuple[str, ...] = ()       # why its set of shards is not one whole run (`shards.check`)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def identity(self) -> tuple[str, str, str]:
        """What tells one run from another: machine, commit, datetime (a copied file has the same)."""
        return (self.machine, self.commit, self.datetime)

    @property
    def status(self) -> str:
        """'' for a complete run; else "incomplete (saved after an interrupt): N of M cells", or for a shard why its
        set of shards is not one whole run."""
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
        """The dispatched ISA and the kernel libraries' versions, "AVX2 · oneDNN 3.12.0 · MKL 2024.2"; 'not
        recorded' for runs saved before provenance was."""
        parts = [self.cpu_capability or "", f"oneDNN {self.onednn}" if self.onednn else "",
                 f"MKL {self.mkl}" if self.mkl else ""]
        return " · ".join(p for p in parts if p) or "not recorded"

    @property
    def device_label(self) -> str:
        """The device, with its name where that says more ("cuda:0 (NVIDIA H100)")."""
        shown = self.device_name and self.device_name != self.device
        return self.device + (f" ({self.device_name})" if shown else "")

    @classmethod
    def from_json(cls, path: Path, label: str, run: dict) -> Run:
        mi = run.get("machine_info") or {}
        ci = run.get("commit_info") or {}
        cpu = mi.get("cpu") or {}
        machine = ", ".join(str(x) for x in (mi.get("node"), cpu.get("brand_raw"),
                                             f"{cpu['count']} CPUs" if cpu.get("count") else None,
                                             mi.get("system"), mi.get("machine")) if x)
        cells = mi.get("bench_cells") or {}
        prov = mi.get(PROVENANCE) or {}
        return cls(path=path, label=label, datetime=str(run.get("datetime") or ""),
                   torch=str(mi.get("torch") or "unknown"), profile=str(mi.get("bench_profile") or ""),
                   device=str(mi.get("device") or ""), device_name=str(mi.get("device_name") or ""),
                   threads=str(mi.get("threads") or ""), machine=machine,
                   python=str(mi.get("python_version") or ""), pytest_benchmark=str(run.get("version") or ""),
                   commit=str(ci.get("id") or ""), branch=str(ci.get("branch") or ""),
                   complete=mi.get("bench_complete") is not False,
                   cells=(cells["done"], cells["collected"]) if cells else None, **_provenance(prov, cpu, ci),
                   shard=_shard(run, label))


def _shard(run: dict, label: str) -> shards.Shard | None:
    """The run as a shard, without its records (`check` needs only their names); None when it is not one, or when
    its `bench_shard` is malformed (it is then read as an unsharded run; `python -m benchmarks.cluster merge` names
    what is malformed)."""
    try:
        return dataclasses.replace(shards.from_run(run, label), run={}) if shards.shard_info(run) else None
    except ValueError:
        return None


def _fact(v) -> str | None:
    """A recorded fact as text, whitespace collapsed ("Intel(R)  Xeon(R) " -> "Intel(R) Xeon(R)"); None for none."""
    text = " ".join(str(v).split()) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else ""
    return text or None


def _paths(v) -> tuple[str, ...]:
    return tuple(str(x) for x in v) if isinstance(v, list) else ()


def _provenance(prov: dict, cpu: dict, commit: dict) -> dict:
    """Run's provenance fields from `machine_info.provenance`, else (older runs) `machine_info.cpu`."""
    flags = prov.get("cpu_flags") if isinstance(prov.get("cpu_flags"), list) else cpu.get("flags")
    dirty_by = tuple(name for name, flag in (("commit_info.dirty", commit.get("dirty")),
                                                           (f"{PROVENANCE}.git_dirty", prov.get("git_dirty")))
                     if flag is True)
    changes = prov.get("git_changes")
    return {"cpu_model": _fact(prov.get("cpu_model")) or _fact(cpu.get("brand_raw")),
            "cpu_signature": _fact(prov.get("cpu_signature")) or signature(cpu),
            "cpu_flags": tuple(isa_flags(flags if isinstance(flags, list) else None)),
            "cpu_capability": _fact(prov.get("cpu_capability")), "onednn": _fact(prov.get("onednn")),
            "mkl": _fact(prov.get("mkl")), "dirty": True if dirty_by else commit.get("dirty"), "dirty_by": dirty_by,
            "changes": changes if type(changes) is int and changes >= 0 else None,
            "changed_paths": _paths(prov.get("git_changed_paths"))}


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
        """The runs used that were saved after an interrupt."""
        return [r for r in self.runs if not r.complete]

    @property
    def dirty(self) -> list[Run]:
        """The runs used that were made from a working tree with uncommitted changes."""
        return [r for r in self.runs if r.dirty]

    @property
    def schema_versions(self) -> list[int]:
        """The record schema versions of the shown records."""
        return sorted({int(v) for v in self.records["schema_version"].dropna()})


# -- finding inputs ---------------------------------------------------------------------------------------
def default_input(search: list[Path] | None = None) -> Path:
    """The newest saved run (by file mtime) under `.benchmarks/` of the working directory."""
    dirs = search if search is not None else [Path.cwd() / ".benchmarks"]
    found = [p for d in dirs if d.is_dir() for p in d.rglob("*.json") if p.is_file()]
    if not found:
        where = " or ".join(str(d) for d in dirs)
        raise NoInput(f"no saved benchmark run found under {where}; run e.g. "
                      "`pytest benchmarks/ --benchmark-save=NAME` first, or name JSON files or folders")
    return max(found, key=lambda p: (p.stat().st_mtime, str(p)))


SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
           (stat.S_ISBLK, "a block device"))


def _special(mode: int) -> str:
    """What a file that is neither a folder nor a regular file is, for messages."""
    kind = next((name for test, name in SPECIAL if test(mode)), "not a regular file")
    return f"{kind}, not a regular file: not read"


def _unreachable(path: Path, exc: OSError) -> str:
    """Why `path` cannot be examined (`os.stat` raised `exc`)."""
    if not path.is_symlink():
        return "no such file or folder" if exc.errno == errno.ENOENT else f"cannot be examined ({exc.strerror})"
    target = os.readlink(path)
    if exc.errno == errno.ELOOP:
        return f"symlink loop (-> {target} leads back to itself): not followed"
    if exc.errno == errno.ENOENT:
        return f"dangling symlink (-> {target}, which does not exist)"
    return f"symlink -> {target} cannot be followed ({exc.strerror})"


def _examine(path: Path) -> tuple[os.stat_result | None, str]:
    """`path`'s status (symlinks followed), or None and why it cannot be had."""
    try:
        return path.stat(), ""
    except OSError as exc:
        return None, _unreachable(path, exc)


def _entry(path: Path, holder: Path) -> tuple[str, str]:
    """What the entry `path` of the folder `holder` (resolved) is: 'file' (a .json file), 'dir', 'other' (a regular
    file not named .json: not an input) or 'skip', with the reason."""
    st, why = _examine(path)
    if st is None:
        return "skip", why
    if stat.S_ISDIR(st.st_mode):
        if path.is_symlink() and holder.is_relative_to(path.resolve()):
            return "skip", f"symlink -> {os.readlink(path)}, a folder holding it (a loop): not followed"
        return "dir", ""
    if stat.S_ISREG(st.st_mode):
        return ("file" if path.name.endswith(".json") else "other"), ""
    return "skip", _special(st.st_mode)


def _walk(top: Path) -> tuple[list[Path], list[Problem]]:
    """The .json files under the folder `top` (sorted) and a problem for each entry that cannot be walked or read."""
    files, problems, walked, todo = [], [], set(), [top]
    while todo:
        folder = todo.pop()
        real = folder.resolve()
        if real in walked:          # a folder reached again through a symlink: its files are read once
            continue
        walked.add(real)
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            problems.append(Problem(str(folder), f"folder cannot be listed ({exc.strerror}): nothing in it is read"))
            continue
        for entry in entries:
            kind, why = _entry(entry, real)
            if kind == "file":
                files.append(entry)
            elif kind == "dir":
                todo.append(entry)
            elif kind == "skip":
                problems.append(Problem(str(entry), why))
    return sorted(files), sorted(problems, key=lambda p: p.path)


def _named(given: str) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """The file named, or the JSON files under the folder named (sorted), with their labels; problems for what
    cannot be read."""
    p = Path(given)
    st, why = _examine(p)
    if st is None:
        return [], [Problem(given, why)]
    if stat.S_ISREG(st.st_mode):
        return [(p, given)], []
    if not stat.S_ISDIR(st.st_mode):
        return [], [Problem(given, _special(st.st_mode))]
    found, problems = _walk(p)
    if not found:
        problems.append(Problem(given, f"folder holds no {'readable ' if problems else ''}.json files"))
    return [(q, str(q)) for q in found], problems


def expand(paths: list[str]) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """Files named and the JSON files under folders named (sorted, each once); problems for what does not exist."""
    files, problems, seen = [], [], set()
    for given in paths:
        items, probs = _named(given)
        problems += probs
        for q, label in items:
            if (key := q.resolve()) not in seen:
                seen.add(key)
                files.append((q, label))
    return files, problems


# -- reading one run --------------------------------------------------------------------------------------
def _parse(path: Path, label: str) -> tuple[dict | None, list[Problem]]:
    """The run's JSON when it is a pytest-benchmark run with benchmarks; else the problem."""
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(label, f"cannot be read ({exc})")]
    except json.JSONDecodeError as exc:
        return None, [Problem(label, f"not valid JSON, truncated or malformed "
                                     f"(line {exc.lineno}, column {exc.colno}: {exc.msg})")]
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list):
        return None, [Problem(label, "not a pytest-benchmark run (no 'benchmarks' list)")]
    if not run["benchmarks"]:
        return None, [Problem(label, "the run holds no benchmarks")]
    if why := _malformed_metadata(run):
        return None, [Problem(label, f"skipped: malformed run metadata: {why}")]
    return run, []


def _kind(v) -> str:
    """What a JSON value is, for messages: "a string", "null", "an object", ..."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)


# the run metadata the report reads: (its path, required, the type it must have when present and not null)
METADATA = (("machine_info", True, dict), ("machine_info.cpu", False, dict), ("commit_info", False, dict),
            ("datetime", False, str), ("version", False, str), ("machine_info.bench_complete", False, bool),
            ("machine_info.bench_cells", False, dict), (f"machine_info.{PROVENANCE}", False, dict))
TYPE_NAMES = {dict: "an object", str: "a string", bool: "true or false"}


def _malformed_metadata(run: dict) -> str:
    """'' when the run's metadata (machine_info, commit_info, datetime, version) has the shape
    pytest-benchmark writes; else what is wrong."""
    for path, required, kind in METADATA:
        *parents, key = path.split(".")
        holder = run
        for parent in parents:
            holder = holder[parent]          # checked to be an object by an earlier entry
        value = holder.get(key)
        if value is None and required:
            return f"no '{path}' object"
        if value is not None and not isinstance(value, kind):
            return f"'{path}' is {_kind(value)}, not {TYPE_NAMES[kind]}"
    return _malformed_cells(run["machine_info"].get("bench_cells"))


def _count(v) -> bool:
    return type(v) is int and v >= 0


def _malformed_cells(cells: dict | None) -> str:
    """'' when `machine_info.bench_cells` is absent or {"done": N, "collected": M} with counts 0 <= N <= M."""
    if not cells:
        return ""
    done, collected = cells.get("done"), cells.get("collected")
    if not (_count(done) and _count(collected) and done <= collected):
        return (f"'machine_info.bench_cells' is {_shown(cells)}, not {{\"done\": N, \"collected\": M}} with counts "
                "0 <= N <= M")
    return ""


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _series(v) -> bool:
    return isinstance(v, list) and all(x is None or _finite(x) for x in v)


# what a value of each schema type must be when it is not null (JSON has no NaN or infinity: a writer that
# means "no value" writes null, as the benchmarks do)
VALUE_RULES = {"int": (_finite, "a finite number"), "float": (_finite, "a finite number"),
               "bool": (lambda v: isinstance(v, bool), "true, false or null"),
               "list[int]": (_series, "a list of finite numbers"), "list[float]": (_series, "a list of finite numbers")}
TYPED = {k.name: VALUE_RULES[k.type] for k in schema.KEYS if k.type in VALUE_RULES and k.name != "schema_version"}


def _shown(v) -> str:
    """A value as the JSON file spells it (Infinity, NaN, "text", true), shortened."""
    try:
        text = json.dumps(v)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _outside(key: str, v) -> str:
    """'' when the number `v` (or each number of the series `v`) is in the range key `key` allows; else the first
    value outside it, named: "seconds = -5, not ≥ 0", "checkpoint_test_acc[2] = 1.5, not in [0, 1]"."""
    low, high = schema.value_range(key)
    series = isinstance(v, list)
    for i, x in enumerate(v if series else [v]):
        if x is not None and ((low is not None and x < low) or (high is not None and x > high)):
            return f"{key}{f'[{i}]' if series else ''} = {_shown(x)}, not {schema.range_text(key)}"
    return ""


def bad_values(info: dict) -> list[str]:
    """"KEY = VALUE, not a finite number" for each value of `info` its key's schema type does not allow, and
    "KEY = VALUE, not ≥ 0" for each outside the range the key allows."""
    out = []
    for key, v in info.items():
        if key not in TYPED or v is None:
            continue
        if not TYPED[key][0](v):
            out.append(f"{key} = {_shown(v)}, not {TYPED[key][1]}")
        elif why := _outside(key, v):
            out.append(why)
    return out


def _check(bench) -> str:
    """'' for a usable record of ours; else why not: 'foreign', 'version', or the reason it is skipped."""
    info = bench.get("extra_info") if isinstance(bench, dict) else None
    if not isinstance(info, dict) or "schema_version" not in info:
        return "foreign"
    version = info["schema_version"]
    if type(version) is not int or version not in schema.VERSIONS:
        return "version"
    if missing := schema.missing(info):
        return f"lacks {', '.join(missing)} (benchmarks/README.md's schema)"
    if not isinstance(bench.get("fullname"), str) or not bench["fullname"]:
        return "has no 'fullname' (pytest-benchmark's id of the benchmark: it tells one benchmark in several runs)"
    if bad := bad_values(info):
        return f"has {'; '.join(bad)} (benchmarks/README.md's schema)"
    return ""


def _name(bench: dict, i: int) -> str:
    """The benchmark's name (else its fullname, else its 1-based position in the file), for messages."""
    for key in ("name", "fullname"):
        if isinstance(bench.get(key), str) and bench[key]:
            return bench[key]
    return f"benchmark {i + 1}"


def _check_all(label: str, benches: list) -> tuple[list[dict], list[Problem]]:
    """The usable records; one problem per kind of record left out (foreign, per other version, per record)."""
    total, foreign, versions, problems, good = len(benches), 0, Counter(), [], []
    for i, b in enumerate(benches):
        why = _check(b)
        if why == "foreign":
            foreign += 1
        elif why == "version":
            versions[repr(b["extra_info"]["schema_version"])] += 1
        elif why:
            problems.append(Problem(label, f"record skipped: {_name(b, i)} {why}"))
        else:
            good.append(b)
    head = [Problem(label, f"{foreign} of {total} benchmarks have no extra_info.schema_version: "
                           "not from this suite (another pytest-benchmark suite?); skipped")] if foreign else []
    head += [Problem(label, f"{n} of {total} benchmarks have schema_version {version}; this generator "
                            f"reads schema_version {READS}; skipped") for version, n in sorted(versions.items())]
    return good, head + problems


def read_run(path: Path, label: str) -> tuple[Run | None, list[dict], list[Problem]]:
    """The run's provenance and its benchmarks of our schema; problems for everything left out."""
    run, problems = _parse(path, label)
    if run is None:
        return None, [], problems
    good, problems = _check_all(label, run["benchmarks"])
    if not good:
        return None, [], [*problems, Problem(label, "skipped: no usable benchmark records")]
    return Run.from_json(path, label, run), good, problems


def to_frame(run: Run, benches: list[dict]) -> pd.DataFrame:
    """One row per benchmark: extra_info keys as columns, pytest-benchmark's own under `bench.`. Nested dicts of
    a record (`config`, `data_info`) stay one object column each (max_level=1), not hundreds of columns."""
    df = pd.json_normalize(benches, max_level=1)
    df.columns = [c.removeprefix("extra_info.") if c.startswith("extra_info.") else f"bench.{c}" for c in df.columns]
    df["run.label"] = run.label
    df["run.datetime"] = run.datetime
    df["run.torch"] = run.torch
    df["run.cpu_model"] = run.cpu_model
    df["run.cpu_type"] = run.cpu_type
    df["run.cpu_capability"] = run.cpu_capability
    df["run.record"] = [hashlib.sha256(json.dumps(b, sort_keys=True).encode()).hexdigest() for b in benches]
    return df


def _number(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _text(v):
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """The schema's numeric keys as floats (None -> NaN), its text keys as str or None."""
    df = df.copy()
    for key in schema.NUMERIC:
        if key in df.columns:
            df[key] = pd.to_numeric(df[key].map(_number), errors="coerce").astype(float)
    for key in schema.TEXT:
        if key in df.columns:
            df[key] = df[key].map(_text)
    return df.copy()                 # one block per dtype again: column-wise assignment leaves the frame fragmented


def torch_key(version: str) -> tuple:
    return (*(int(x) for x in re.findall(r"\d+", version.split("+")[0])), version)


# -- everything ---------------------------------------------------------------------------------------------
def _inputs(paths: list[str]) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """What to read: the paths given, else the newest saved run (labelled relative to the working directory)."""
    if paths:
        return expand(paths)
    newest = default_input()
    try:
        label = str(newest.relative_to(Path.cwd()))
    except ValueError:
        label = str(newest)
    return [(newest, label)], []


def _read_all(files: list[tuple[Path, str]], problems: list[Problem]) -> tuple[dict[str, Run], pd.DataFrame]:
    runs: dict[str, Run] = {}
    frames = []
    for path, label in files:
        run, benches, probs = read_run(path, label)
        problems += probs
        if run is not None:
            runs[label] = run
            frames.append(to_frame(run, benches))
    if not frames:
        raise NoInput("no usable benchmark records in " + (", ".join(label for _, label in files) or "the input"),
                      problems)
    return runs, _clean(pd.concat(frames, ignore_index=True))


def _once(runs: dict[str, Run], df: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """Each record once: the same record of a benchmark (fullname) saved by the same machine, commit and run datetime in
    several files (a copied run file) is kept from the first file read; a problem names each file holding copies, and
    whose."""
    key = (df["run.label"].map(lambda label: repr(runs[label].identity)) + "\0" + df["bench.fullname"] + "\0"
           + df["run.record"])
    labels = df["run.label"]
    first = labels.groupby(key).transform("first")
    dup = key.duplicated(keep="first")
    totals = labels.value_counts()
    for (label, original), n in pd.DataFrame({"label": labels, "first": first})[dup].value_counts(sort=False).items():
        what = (f"a copy of {original}" if n == totals[label] else
                f"{n} of its {totals[label]} records are copies of {original}'s")
        problems.append(Problem(label, f"{what} (same machine, commit, datetime and {n} identical "
                                       f"{plural(n, 'cell')}): counted once"))
    return df[~dup]


def _one_profile(df: pd.DataFrame, problems: list[Problem]) -> tuple[str, pd.DataFrame]:
    """The most complete profile present, and its records; the others' are named as problems."""
    present = sorted(set(df["profile"].dropna()), key=lambda p: (PROFILE_ORDER.index(p) if p in PROFILE_ORDER
                                                                else len(PROFILE_ORDER), p))
    if not present:
        raise NoInput("no record names its profile", problems)
    profile = present[0]
    other = df[df["profile"] != profile]
    for (label, prof), n in other.groupby(["run.label", "profile"], dropna=False).size().items():
        problems.append(Problem(label, f"{n} record(s) of profile {prof} not used: this report shows profile "
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


def _used(runs: dict[str, Run], df: pd.DataFrame) -> list[Run]:
    """The runs with records in `df` (sorted by file name), each with its count of records used."""
    used = df.groupby("run.label").size()
    out = []
    for label, run in sorted(runs.items(), key=lambda kv: (kv[1].name, kv[0])):
        if label in used.index:
            run.records = int(used[label])
            out.append(run)
    return out


def _shard_sets(runs: dict[str, Run], problems: list[Problem]) -> None:
    """Shards read directly (not merged) are checked as a set per launch (`shards.check`): each reason the set is not
    one whole run is a problem, and each of its shards is marked incomplete, so the report is not called complete."""
    sets: dict = {}
    for run in runs.values():
        if run.shard is not None:
            sets.setdefault(run.shard.launch or run.shard.identity, []).append(run)
    for members in sets.values():
        found = tuple(shards.check([r.shard for r in members]))
        for problem in found:
            problems.append(Problem(", ".join(sorted(r.label for r in members)),
                                    f"sharded run not whole: {problem}; the report holds the cells it has"))
        for run in members:
            run.shard_problems, run.complete = found, run.complete and not found


def load(paths: list[str]) -> Loaded:
    """Read every input; raise NoInput (with every problem) when nothing is usable."""
    files, problems = _inputs(paths)
    runs, df = _read_all(files, problems)
    _shard_sets(runs, problems)
    df = _once(runs, df, problems)
    profile, df = _one_profile(df, problems)
    df = _newest_only(df, problems)
    torch = str(df.iloc[0]["run.torch"])
    by_torch = {t: g.reset_index(drop=True)
                for t, g in sorted(df.groupby("run.torch"), key=lambda kv: torch_key(kv[0]))}
    return Loaded(records=by_torch[torch], by_torch=by_torch, runs=_used(runs, df), problems=problems,
                  profile=profile, torch=torch, mixed=[m for g in by_torch.values() for m in machines.mixed(g)])
