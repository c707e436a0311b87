"""Find, read and check saved benchmark runs; choose the records the report shows.

A run is a pytest-benchmark JSON file (`--benchmark-save`, `--benchmark-json`). Its
benchmarks are ours when their `extra_info` carries `schema_version`; the version and the
keys every record must have are read from `benchmarks/lab.py` (parsed, not imported: the
report needs neither torch nor pytest). Everything that is not used is reported as a
`Problem` naming the file and the reason; the caller turns problems into exit code 1.

Selection: the report shows one profile (the most complete present: paper, quick,
smoke) and one torch version (that of the newest run of that profile); runs of the same
profile under other torch versions feed the torch-version comparison. A benchmark saved
by several runs (same `fullname`, same torch version) is taken from the newest run.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "benchmarks" / "lab.py"
PROFILE_ORDER = ("paper", "quick", "smoke")

# extra_info keys that hold numbers (coerced to float: None -> NaN)
NUMERIC = (
    "removal_size", "lr", "seed", "trial", "epochs", "steps", "samples_processed", "seconds",
    "oracle_epochs", "oracle_seconds", "oracle_samples", "epoch_ratio", "speedup_vs_naive", "speedup_samples",
    "control_epochs", "control_seconds", "test_acc", "forget_acc", "total_acc", "train_acc",
    "test_mse", "forget_mse", "total_mse", "train_mse", "s_to_control", "s_to_oracle", "d",
    "weights_zeroed", "weights_total", "initial_loss", "final_loss", "bare_seconds", "overhead_ratio",
    "overhead_target", "seconds_per_request", "n_neighbors", "k_prime", "train_size", "init_redraws",
)


def schema_from_lab(path: Path = LAB) -> tuple[int, tuple[str, ...]]:
    """`SCHEMA_VERSION` and `SCHEMA_KEYS` as written in benchmarks/lab.py."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuntimeError(f"the report reads the record schema from {path}, which cannot be read: {exc}") from None
    found = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ("SCHEMA_VERSION", "SCHEMA_KEYS")):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    if set(found) != {"SCHEMA_VERSION", "SCHEMA_KEYS"}:
        raise RuntimeError(f"{path} no longer defines SCHEMA_VERSION and SCHEMA_KEYS as literals")
    return int(found["SCHEMA_VERSION"]), tuple(found["SCHEMA_KEYS"])


SCHEMA_VERSION, SCHEMA_KEYS = schema_from_lab()


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
    dirty: bool | None
    records: int = 0           # records of this run the report uses

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def from_json(cls, path: Path, label: str, run: dict) -> "Run":
        mi = run.get("machine_info") or {}
        ci = run.get("commit_info") or {}
        cpu = mi.get("cpu") or {}
        machine = ", ".join(str(x) for x in (mi.get("node"), cpu.get("brand_raw"),
                                             f"{cpu['count']} CPUs" if cpu.get("count") else None,
                                             mi.get("system"), mi.get("machine")) if x)
        return cls(path=path, label=label, datetime=str(run.get("datetime") or ""),
                   torch=str(mi.get("torch") or "unknown"), profile=str(mi.get("bench_profile") or ""),
                   device=str(mi.get("device") or ""), device_name=str(mi.get("device_name") or ""),
                   threads=str(mi.get("threads") or ""), machine=machine,
                   python=str(mi.get("python_version") or ""), pytest_benchmark=str(run.get("version") or ""),
                   commit=str(ci.get("id") or ""), branch=str(ci.get("branch") or ""), dirty=ci.get("dirty"))


@dataclass
class Loaded:
    records: pd.DataFrame                       # the shown profile and torch version, one row per benchmark
    by_torch: dict[str, pd.DataFrame]           # the shown profile, per torch version (incl. the shown one)
    runs: list[Run]                             # runs with at least one record used, sorted by name
    problems: list[Problem] = field(default_factory=list)
    profile: str = ""
    torch: str = ""


# -- finding inputs ---------------------------------------------------------------------------------------
def default_input(search: list[Path] | None = None) -> Path:
    """The newest saved run (by file mtime) under `.benchmarks/` of the working directory or the project."""
    dirs = search if search is not None else list(dict.fromkeys([Path.cwd() / ".benchmarks", ROOT / ".benchmarks"]))
    found = [p for d in dirs if d.is_dir() for p in d.rglob("*.json") if p.is_file()]
    if not found:
        where = " or ".join(str(d) for d in dirs)
        raise NoInput(f"no saved benchmark run found under {where}; run e.g. "
                      "`pytest benchmarks/ --benchmark-save=NAME` first, or name JSON files or folders")
    return max(found, key=lambda p: (p.stat().st_mtime, str(p)))


def expand(paths: list[str]) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """Files named and the JSON files under folders named (sorted); problems for what does not exist."""
    files, problems, seen = [], [], set()
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.json") if q.is_file())
            if not found:
                problems.append(Problem(given, "folder holds no .json files"))
            items = [(q, str(q)) for q in found]
        elif p.is_file():
            items = [(p, given)]
        else:
            problems.append(Problem(given, "no such file or folder"))
            items = []
        for q, label in items:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                files.append((q, label))
    return files, problems


# -- reading one run --------------------------------------------------------------------------------------
def read_run(path: Path, label: str) -> tuple[Run | None, list[dict], list[Problem]]:
    """The run's provenance and its benchmarks of our schema; problems for everything left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [], [Problem(label, f"cannot be read ({exc})")]
    try:
        run = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [], [Problem(label, f"not valid JSON, truncated or malformed "
                                         f"(line {exc.lineno}, column {exc.colno}: {exc.msg})")]
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list):
        return None, [], [Problem(label, "not a pytest-benchmark run (no 'benchmarks' list)")]
    benches = run["benchmarks"]
    if not benches:
        return None, [], [Problem(label, "the run holds no benchmarks")]
    good, foreign, versions, incomplete = [], 0, {}, []
    for b in benches:
        info = b.get("extra_info") if isinstance(b, dict) else None
        if not isinstance(info, dict) or "schema_version" not in info:
            foreign += 1
        elif info["schema_version"] != SCHEMA_VERSION:
            versions[repr(info["schema_version"])] = versions.get(repr(info["schema_version"]), 0) + 1
        elif missing := [k for k in SCHEMA_KEYS if k not in info]:
            incomplete.append(f"{b.get('name', '?')} lacks {', '.join(missing)}")
        else:
            good.append(b)
    problems = []
    total = len(benches)
    if foreign:
        problems.append(Problem(label, f"{foreign} of {total} benchmarks have no extra_info.schema_version: "
                                       "not from this suite (another pytest-benchmark suite?); skipped"))
    for version, n in sorted(versions.items()):
        problems.append(Problem(label, f"{n} of {total} benchmarks have schema_version {version}; this generator "
                                       f"reads schema_version {SCHEMA_VERSION}; skipped"))
    for what in incomplete:
        problems.append(Problem(label, f"record skipped: {what} (benchmarks/README.md's schema)"))
    if not good:
        return None, [], problems + [Problem(label, "skipped: no usable benchmark records")]
    return Run.from_json(path, label, run), good, problems


def to_frame(run: Run, benches: list[dict]) -> pd.DataFrame:
    """One row per benchmark: extra_info keys as columns, pytest-benchmark's own under `bench.`."""
    df = pd.json_normalize(benches)
    df.columns = [c.removeprefix("extra_info.") if c.startswith("extra_info.") else f"bench.{c}" for c in df.columns]
    df["run.label"] = run.label
    df["run.datetime"] = run.datetime
    df["run.torch"] = run.torch
    return df


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].map(lambda v: v if isinstance(v, (int, float)) and not isinstance(v, bool)
                                                else None), errors="coerce").astype(float)
    for col in ("paper", "table", "profile", "dataset", "method", "optimizer", "device", "rule"):
        if col in df.columns:
            df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v))
    return df


def torch_key(version: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])) + (version,)


# -- everything ---------------------------------------------------------------------------------------------
def load(paths: list[str]) -> Loaded:
    """Read every input; raise NoInput (with every problem) when nothing is usable."""
    problems: list[Problem] = []
    if paths:
        files, problems = expand(paths)
    else:
        newest = default_input()
        try:
            label = str(newest.relative_to(Path.cwd()))
        except ValueError:
            label = str(newest)
        files = [(newest, label)]
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
    df = _clean(pd.concat(frames, ignore_index=True))

    # one profile: the most complete present
    present = sorted(set(df["profile"].dropna()), key=lambda p: (PROFILE_ORDER.index(p) if p in PROFILE_ORDER
                                                                else len(PROFILE_ORDER), p))
    if not present:
        raise NoInput("no record names its profile", problems)
    profile = present[0]
    other = df[df["profile"] != profile]
    for (label, prof), n in other.groupby(["run.label", "profile"], dropna=False).size().items():
        problems.append(Problem(label, f"{n} record(s) of profile {prof} not used: this report shows profile "
                                       f"{profile} (give one profile's runs)"))
    df = df[df["profile"] == profile]

    # a benchmark saved by several runs of one torch version: the newest run's
    df = df.sort_values(["run.datetime", "run.label"], ascending=False, kind="stable")
    dup = df.duplicated(["run.torch", "bench.fullname"], keep="first")
    for label, n in df[dup].groupby("run.label").size().items():
        problems.append(Problem(label, f"{n} record(s) not used: the same benchmarks from a newer run "
                                       "of the same torch version are used"))
    df = df[~dup]

    newest = df.iloc[0]       # sorted newest first
    torch = str(newest["run.torch"])
    by_torch = {t: g.reset_index(drop=True) for t, g in sorted(df.groupby("run.torch"), key=lambda kv: torch_key(kv[0]))}
    used = df.groupby("run.label").size()
    run_list = []
    for label, run in sorted(runs.items(), key=lambda kv: (kv[1].name, kv[0])):
        if label in used.index:
            run.records = int(used[label])
            run_list.append(run)
    return Loaded(records=by_torch[torch], by_torch=by_torch, runs=run_list, problems=problems,
                  profile=profile, torch=torch)
