"""The benchmark journal: every finished cell, written down as it finishes, so that an interrupted
run keeps its cells and `--bench-resume` runs only the missing ones.

A journal is an append-only JSON-lines file beside pytest-benchmark's storage,
`<storage>/<machine id>/journal/<tree>-<profile>-torch<version>-<device>.jsonl` (`<storage>` is
`.benchmarks` unless `--benchmark-storage` says otherwise). Each line is one finished cell: the
dict pytest-benchmark itself writes for a benchmark (group, name, fullname, params, options,
extra_info and stats with the raw timings), appended, flushed and `os.fsync`'ed before the next
cell starts. `<tree>` names the code the cells ran: the commit (12 hex digits) and, when the
working tree has uncommitted changes to code, a digest of those changes (`tree_key`), so that
cells of different code never meet in one saved run.

Reading tolerates what a crash leaves: a torn last line (a write cut short) is ignored and said;
so is any other line that is not a cell. Before each append, a torn tail is cut off (it never
held a whole cell), so the next line starts on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

from pytest_benchmark.stats import Metadata
from pytest_benchmark.utils import safe_dumps

from unlearning.bench.shards import FAILED
from unlearning.common.files import append_line

try:
    import fcntl
except ImportError:              # not POSIX: appends go unlocked
    fcntl = None

FOLDER = "journal"
# what counts as code for "the same commit" (git pathspecs): Python sources and the configuration files
CODE = ("*.py", "*.pyx", "*.toml", "*.cfg", "*.ini")


def _git(args: list[str], cwd: Path) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


def _content(path: Path) -> bytes:
    try:
        return os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    except OSError as exc:         # unreadable: its error stands for its content
        return repr(exc).encode()


def changes_digest(cwd: Path) -> str | None:
    """12 hex digits of sha256 over the working tree's uncommitted changes to code (`CODE`: Python
    sources and configuration): `git diff HEAD` of tracked files and every untracked file git does
    not ignore (its path and content). None when there are none; "unhashed" where git cannot say.
    Other files (the run's own saves and journal, a log it is piped into, docs, reports) change no
    result and do not count."""
    cwd = Path(cwd).absolute()
    try:
        diff = _git(["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--", *CODE], cwd)
        untracked = _git(["ls-files", "-z", "--others", "--exclude-standard", "--", *CODE], cwd).split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return "unhashed"
    digest, changed = hashlib.sha256(diff), bool(diff)
    for name in sorted(n for n in untracked if n):
        digest.update(b"\0" + name + b"\0" + _content(cwd / os.fsdecode(name)))
        changed = True
    return digest.hexdigest()[:12] if changed else None


def tree_key(commit_info: dict, cwd: Path) -> str:
    """What "the same commit" means for resuming: the commit id (pytest-benchmark's `commit_info`,
    12 digits) when the code is as committed; with uncommitted changes to code (tracked edits or
    untracked files: a new, uncommitted benchmark module changes results as much as an edit),
    `<commit>-dirty<digest>` (`changes_digest`), so that an edit between the interrupted run and
    its resume makes a new journal instead of mixing results of two versions of the code in one
    saved run. Outside git the commit is pytest-benchmark's "unversioned" (or "unknown") and the
    code's version cannot be checked."""
    commit = str(commit_info.get("id") or "unknown")[:12]
    if commit in ("unversioned", "unknown"):
        return commit
    changes = changes_digest(cwd)
    return f"{commit}-dirty{changes}" if changes else commit


def file_name(tree: str, profile: str, torch_version: str, device: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", f"{tree}-{profile}-torch{torch_version}-{device}") + ".jsonl"


def check_cell(entry) -> dict:
    """`entry` if it is a journaled cell (a dict with a fullname and raw timings), else ValueError saying why not."""
    if not isinstance(entry, dict):
        raise ValueError(f"a cell is a JSON object, not {type(entry).__name__}")
    if not isinstance(entry.get("fullname"), str) or not isinstance(entry.get("name"), str):
        raise ValueError("a cell needs string 'name' and 'fullname'")
    stats = entry.get("stats")
    data = stats.get("data") if isinstance(stats, dict) else None
    if (not isinstance(data, list) or not data
            or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in data)):
        raise ValueError("a cell needs 'stats.data', a non-empty list of timings")
    if not isinstance(stats.get("iterations"), int) or stats["iterations"] < 1:
        raise ValueError(f"'stats.iterations' must be a positive int, not {stats.get('iterations')!r}")
    return entry


def cell(benchmark: Metadata) -> dict:
    """What the journal keeps of a finished benchmark: pytest-benchmark's own dict of it, raw timings included."""
    return benchmark.as_dict(include_data=True)


def restore(entry: dict) -> Metadata:
    """A journaled cell as pytest-benchmark's own `Metadata`, its timings replayed, so that
    pytest-benchmark's code computes its statistics and writes it into the saved run like the
    cells that ran in this session (only a cProfile table, if one was taken, is not kept)."""
    stats = entry["stats"]
    fixture = SimpleNamespace(name=entry["name"], fullname=entry["fullname"], group=entry.get("group"),
                              param=entry.get("param"), params=entry.get("params"),
                              extra_info=entry.get("extra_info") or {}, cprofile_stats=None, has_error=False)
    bench = Metadata(fixture, iterations=stats["iterations"], options=entry.get("options") or {})
    for seconds in stats["data"]:
        bench.stats.update(seconds)
    return bench


class Journal:
    """One journal file: `read` its cells, `append` one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.problems: list[str] = []       # what reading or repairing found, one sentence each

    def others(self) -> list[str]:
        """The other journals beside this one (other commits, changes, profiles, torch versions or
        devices), newest first."""
        try:
            found = [p for p in self.path.parent.glob("*.jsonl") if p.name != self.path.name]
        except OSError:
            return []
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]

    def read(self) -> dict[str, dict]:
        """The journaled cells by fullname (a cell journaled twice: the later line). Lines that
        are not cells are left out and named in `problems`: a torn last line as what a crash
        mid-write leaves, any other as not a cell."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        lines = raw.split(b"\n")
        cells = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = check_cell(json.loads(line))
            except ValueError as exc:       # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
                torn = number == len(lines)     # no newline after it: the write was cut short
                what = "torn last line (a write cut short by a crash)" if torn else "line that is not a cell"
                self.problems.append(f"{self.path}:{number}: ignored a {what}: {exc}")
                continue
            cells[entry["fullname"]] = entry
        return cells

    def append(self, entry: dict) -> None:
        """Add one cell: one line, written, flushed and fsync'ed (the folder too when the file is new),
        under an exclusive lock, after cutting off a torn tail a crash may have left."""
        append_line(self.path, (safe_dumps(entry, ensure_ascii=True) + "\n").encode(), before=self._repair)

    def _repair(self, fh) -> None:
        """Make the file end with a whole line: a tail without its newline is completed when it is
        a cell (the newline alone was lost), else cut off (a cell never written whole)."""
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        start = fh.read().rfind(b"\n") + 1
        fh.seek(start)
        tail = fh.read()
        try:
            check_cell(json.loads(tail))
        except ValueError as exc:
            fh.truncate(start)
            self.problems.append(f"{self.path}: cut off a torn last line of {len(tail)} bytes: {exc}")
        else:
            fh.write(b"\n")


class Cells:
    """One session's benchmark cells (the collected tests that take the `benchmark` fixture) and what
    its saved run owes them: the cells that ended here (passed, failed or skipped), each passed
    one journaled as it ends, and, under `--bench-resume`, the journal's cells, not run again.

    `prepare` leaves in pytest-benchmark's list exactly the cells the saved run holds: the ones
    that ended (a cell cut off by Ctrl-C has no timing, or only part of its record) and the
    journal's, in collection order, as an uninterrupted run would have them.
    """

    def __init__(self, journal: Journal | None, resume: bool = False):
        self.journal, self.resume = journal, resume
        self.order: dict[str, int] = {}          # nodeid -> position among the collected cells
        self.ended: set[str] = set()
        self.restored: dict[str, dict] = {}      # nodeid -> journaled cell, under --bench-resume
        self.journaled = 0
        self.failed: list[str] = []              # appends the journal could not make
        self.failures: list[str] = []            # cells whose setup or call failed or errored (bench.shards)
        self.said = 0                            # journal problems already printed

    def collect(self, items) -> list:
        """Note the collected cells; under --bench-resume return those the journal holds (to deselect)."""
        cells = [item for item in items if "benchmark" in getattr(item, "fixturenames", ())]
        self.order = {item.nodeid: n for n, item in enumerate(cells)}
        if not self.resume or self.journal is None:
            return []
        held = self.journal.read()
        self.restored = {item.nodeid: held[item.nodeid] for item in cells if item.nodeid in held}
        return [item for item in cells if item.nodeid in self.restored]

    def report(self, item, report) -> None:
        """A phase of a cell ended: the cell ends with its call (or a setup that skipped or failed);
        a passed call with timings is journaled. A journal that cannot be written (disk full, read-only)
        costs only the journal: the cell stays in this session's saved run."""
        if item.nodeid not in self.order:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.ended.add(item.nodeid)
        if getattr(report, "failed", False) and item.nodeid not in self.failures:
            self.failures.append(item.nodeid)
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        if (report.when != "call" or not report.passed or self.journal is None or fixture is None
                or not fixture.stats or fixture.has_error):
            return
        try:
            self.journal.append(cell(fixture.stats))
        except OSError as exc:
            self.failed.append(f"{item.nodeid}: {exc}")
        else:
            self.journaled += 1

    @property
    def collected(self) -> int:
        return len(self.order)

    @property
    def done(self) -> int:
        return len(self.ended | set(self.restored))

    @property
    def complete(self) -> bool:
        return self.done == self.collected

    def machine_info(self) -> dict:
        return {"bench_complete": self.complete, "bench_cells": {"done": self.done, "collected": self.collected},
                "bench_resumed": len(self.restored), FAILED: list(self.failures)}

    def prepare(self, benchmarks: list) -> None:
        kept = [b for b in benchmarks if b and (b.fullname in self.ended or b.fullname not in self.order)]
        kept += [restore(entry) for entry in self.restored.values()]
        kept.sort(key=lambda b: self.order.get(b.fullname, len(self.order)))
        benchmarks[:] = kept

    def resuming(self) -> list[str]:
        """Under --bench-resume, before any cell runs: what the journal holds and what is left to run."""
        if not self.resume or self.journal is None:
            return []
        lines = [f"--bench-resume: {len(self.restored)} of {_cells(self.collected)} already in the journal "
                 f"{self.journal.path}, {self.collected - len(self.restored)} to run", *self._problems()]
        others = self.journal.others()
        if not self.journal.path.exists() and others:
            lines.append(f"--bench-resume: no journal yet for this commit, profile, torch and device; "
                         f"{len(others)} other journals beside it (other commits, uncommitted changes, "
                         f"profiles, torch versions or devices), newest {others[0]}")
        return lines

    def _problems(self) -> list[str]:
        """The journal's problems not printed yet."""
        if self.journal is None:
            return []
        new, self.said = self.journal.problems[self.said:], len(self.journal.problems)
        return new

    def summary(self) -> list[str]:
        """What the terminal says at the end of a run that journals: where the journal is, what was
        resumed, what is missing (nothing where the run neither times nor saves: no journal)."""
        if self.journal is None:
            return []
        lines = [f"benchmark journal: {self.journal.path} ({_cells(self.journaled)} added)"]
        if self.resume:
            lines.append(f"--bench-resume: {len(self.restored)} of {_cells(self.collected)} taken from the journal, "
                         f"not run again")
        if not self.complete:
            lines.append(f"benchmark run incomplete: {self.done} of {_cells(self.collected)} done, "
                         f"{self.collected - self.done} left; the same command with --bench-resume runs them")
        if self.failed:
            lines.append(f"the journal could not be written for {_cells(len(self.failed))} (kept in this run's "
                         f"save only), first: {self.failed[0]}")
        return lines + self._problems()


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"
