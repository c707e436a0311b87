"""The CLI's run file: each finished trial saved at once, nothing lost to a full disk or a folder that
cannot be written, and what a killed save left behind found by the next run.

A failed save (any OSError: ENOSPC, EROFS, EACCES, ...) is one warning naming the file and the cause;
the records stay in memory and the next trial's save writes them all. When the run ends with a save
still failing, `RunFile.rescue` tries the file once more, then the fallback folders (`fallback_dirs`),
and says where the records are, or exactly which were lost. `recover` keeps the trials of a temp file a
killed save left (`unlearning.common.files.abandoned_temps` finds them; `describe_left` says what each holds).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import tempfile
import time
import uuid
from pathlib import Path

import pooch

from ..common import schema
from ..common.files import LeftTemp, abandoned_temps, create_json, save_json
from ..data.fetch import APP_NAME
from .experiment import environment

log = logging.getLogger("unlearning")

# Exit codes of a run whose records did not all reach the asked file (0: they did; 2: bad options or
# data; 130: interrupted, whatever became of the records, which its message says).
EXIT_FALLBACK = 1          # every record is in a fallback file, named on stderr
EXIT_LOST = 3              # some records could be written nowhere: which ones is named on stderr


def fallback_dirs() -> list[Path]:
    """Where a run's records go when their own file cannot be written, in order: the per-user cache
    (`~/.cache/unlearning-bench/runs` on Linux: kept across reboots, often on another disk than a
    project's folder), then the system temp folder (often a separate file system, but cleared on reboot)."""
    return [Path(pooch.os_cache(APP_NAME)) / "runs", Path(tempfile.gettempdir())]


def cause(exc: OSError) -> str:
    """What went wrong, in one line: the system's words and the error's name ('No space left on device (ENOSPC)')."""
    name = errno.errorcode.get(exc.errno) if exc.errno is not None else None
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} ({name})" if name else text


def _span(first: int, last: int) -> str:
    return f"trial {first}" if first == last else f"trials {first}-{last}"


class RunFile:
    """The run's JSON file: created when the first trial finishes (a fresh name under `runs/`, or `out`,
    never replacing a file), rewritten atomically after each later one, so an interrupt keeps every
    finished trial and a failed save loses nothing the next one can write."""

    def __init__(self, dataset: str, total: int, out: str | os.PathLike | None = None):
        default = Path("runs") / f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        self.target, self.unique = (Path(out), False) if out is not None else (default, True)
        self.dataset, self.total = dataset, total
        self.path: Path | None = None          # the file, once made (the target, or <stem>-2.json ...)
        self.configs, self.records, self.counts = [], [], []    # counts: records of each trial
        self.saved = 0                         # trials the file at `path` holds
        self.error: OSError | None = None      # why the last save failed (None: it did not)
        self.started, self.run_id = time.time(), uuid.uuid4().hex

    @property
    def where(self) -> Path:
        return self.path or self.target

    @property
    def pending(self) -> bool:
        """Finished trials that are not in the file (their save failed)."""
        return self.saved < len(self.configs)

    def payload(self) -> dict:
        return {"schema": schema.FILE_SCHEMA, "record_schema_version": schema.SCHEMA_VERSION,
                "run_id": self.run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
                "dataset": self.dataset, "trials_done": len(self.configs), "trials_asked": self.total,
                "complete": len(self.configs) == self.total, "wall_seconds": time.time() - self.started,
                "environment": environment(), "configs": self.configs, "records": self.records}

    def add(self, config: dict, records: list[dict]) -> bool:
        """Keep one finished trial and save every trial so far; False (and one warning) when the save failed."""
        self.configs.append(config)
        self.records += records
        self.counts.append(len(records))
        if self.save():
            return True
        later = "; saving again after the next trial" if len(self.configs) < self.total else ""
        log.warning("could not save to %s: %s; %s kept in memory%s", self.where, cause(self.error),
                    self.unsaved(), later)
        return False

    def save(self) -> bool:
        try:
            if self.path is None:
                self.path = create_json(self.target, self.payload(), unique=self.unique)
            else:
                save_json(self.path, self.payload())
        except OSError as exc:
            self.error = exc
            return False
        self.saved, self.error = len(self.configs), None
        return True

    def unsaved(self) -> str:
        """'the 6 records of trial 2 (seed 1)': what the file lacks."""
        seeds = [c.get("seed") for c in self.configs[self.saved:]]
        return (f"the {sum(self.counts[self.saved:])} records of {_span(self.saved + 1, len(self.configs))} "
                f"(seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})")

    def holds(self) -> str:
        """What the file holds: '; runs/x.json holds trials 1-2 (12 records)', or '' when nothing."""
        if not self.saved:
            return ""
        return f"; {self.path} holds {_span(1, self.saved)} ({sum(self.counts[:self.saved])} records)"

    def rescue(self) -> tuple[int, str]:
        """For a run whose last save failed: one more try at its own file, then a new file in each fallback
        folder. Returns the exit code (0 saved where asked after all, EXIT_FALLBACK, EXIT_LOST) and a
        message saying where every record is, or which were lost."""
        if self.save():
            return 0, f"saved {len(self.records)} records to {self.path} on a last try"
        failures = [f"{self.where}: {cause(self.error)}"]
        for k, folder in enumerate(fallback_dirs()):
            name = self.where.name if k == 0 else f"{APP_NAME}-{self.where.name}"
            try:
                made = create_json(folder / name, self.payload(), unique=True)
            except OSError as exc:
                failures.append(f"{folder / name}: {cause(exc)}")
                continue
            return EXIT_FALLBACK, (f"could not save to {failures[0]}; all {len(self.records)} records of the "
                                   f"{len(self.configs)} finished trial(s) are in {made} instead{self.holds()}")
        return EXIT_LOST, (f"lost: {self.unsaved()} could be written nowhere ({'; '.join(failures)})"
                           f"{self.holds()}")


def _trials(payload: dict) -> str:
    """'12 records of 2 trials (seeds 0, 1; 2 of 4 asked) of the synthetic run started 2026-12-01T07:15:26+0000'."""
    configs, records = payload.get("configs") or [], payload.get("records") or []
    seeds = ", ".join(str(c.get("seed")) for c in configs if isinstance(c, dict))
    started = f" started {payload['started']}" if payload.get("started") else ""
    return (f"{len(records)} records of {len(configs)} trial(s) (seeds {seeds or 'none'}; "
            f"{payload.get('trials_done')} of {payload.get('trials_asked')} asked) "
            f"of the {payload.get('dataset')} run{started}")


def _is_run(payload: dict | None) -> bool:
    return isinstance(payload, dict) and payload.get("schema") == schema.FILE_SCHEMA


def _target_state(target: Path) -> str:
    if not target.exists():
        return "which does not exist"
    try:
        held = json.loads(target.read_text(encoding="utf-8"))
        return f"which holds {held.get('trials_done')} trial(s)"
    except (OSError, ValueError, AttributeError):
        return "which exists but cannot be read as a run file"


def describe_left(left: LeftTemp) -> str:
    """One line on a temp file a killed save left: what it holds and the command that keeps it."""
    command = f"python -m unlearning recover {shlex.quote(str(left.path))}"
    if left.problem is not None:
        return (f"{left.path}: a temp file left by a save that was killed, {left.problem}; no trial can be read "
                f"from it: inspect it, or delete it (rm {shlex.quote(str(left.path))})")
    if left.also is not None:
        return (f"{left.path}: a temp file left by a save that was killed after it had saved the same content as "
                f"{left.also}; remove this spare name with: {command}")
    if not _is_run(left.payload):
        return (f"{left.path}: a temp file left by a save that was killed, holding JSON that is not a run file "
                f"of this command (no schema {schema.FILE_SCHEMA!r}); inspect it, or delete it")
    return (f"{left.path}: a temp file left by a save that was killed, holding {_trials(left.payload)}, meant for "
            f"{left.target} ({_target_state(left.target)}); keep them with: {command}")


def report_left(folder: str | os.PathLike) -> list[LeftTemp]:
    """Warn about every temp file a killed save left in `folder`; returns them (a folder that cannot be
    read is one warning: the run goes on)."""
    try:
        found = abandoned_temps(folder)
    except OSError as exc:
        log.warning("could not look for temp files left by killed saves in %s: %s", folder, cause(exc))
        return []
    for left in found:
        log.warning("%s", describe_left(left))
    return found


def _same_run_with_fewer(target: Path, payload: dict) -> bool | None:
    """Whether `target` is the file of the same run holding fewer trials (True), as many or more (False),
    or another run's file / no run file (None)."""
    try:
        held = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _is_run(held) or not payload.get("run_id") or held.get("run_id") != payload.get("run_id"):
        return None
    return len(held.get("configs") or []) < len(payload.get("configs") or [])


def _keep(left: LeftTemp) -> str:
    """Save `left`'s payload for good and say where: under the name it was meant for when that is free or
    holds fewer trials of the same run, else as a new `<stem>-recovered.json` (never replacing another run)."""
    n, t = len(left.payload.get("records") or []), len(left.payload.get("configs") or [])
    same = _same_run_with_fewer(left.target, left.payload) if left.target.exists() else None
    if same is False:
        return f"{left.target} already holds these trials of the same run; nothing to keep"
    if same:
        dest = save_json(left.target, left.payload)
    else:
        stem = left.target.stem if not left.target.exists() else f"{left.target.stem}-recovered"
        dest = create_json(left.target.with_name(f"{stem}{left.target.suffix}"), left.payload, unique=True)
    return f"kept {n} records of {t} trial(s) in {dest}"


def recover(path: str | os.PathLike) -> tuple[int, str]:
    """Keep the trials of the temp file `path` a killed save left, then remove it. Returns the exit code
    (0 kept, 2 nothing to keep: not such a file, torn, or a save in progress) and what was done."""
    path = Path(path)
    left = next((x for x in abandoned_temps(path.parent) if x.path.name == path.name), None)
    if left is None:
        if not path.is_file():
            return 2, f"{path}: no such file"
        return 2, (f"{path}: not a temp file a killed save left (a name .NAME.XXXXXXXX.tmp that no running save "
                   f"holds); nothing done")
    if left.problem is not None or (left.also is None and not _is_run(left.payload)):
        return 2, f"{describe_left(left)}; nothing done"
    try:
        done = f"its content is saved as {left.also} already" if left.also is not None else _keep(left)
    except OSError as exc:
        return 2, f"could not keep {path}'s trials: {cause(exc)}; {path} left as it is"
    try:
        path.unlink()
    except OSError as exc:
        return 2, f"{done}, but {path} could not be removed: {cause(exc)}"
    return 0, f"{done}; removed {path}"
