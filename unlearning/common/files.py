"""Atomic files, the one way this project writes what it must not lose: every writer uses it.

- `write_atomic(path, data)`, `save_json(path, payload)`: a temp file beside the target, written, fsync'ed and
  renamed over it; `create_json` links the temp file to a name that must not exist yet (never replacing one).
  A temp file is named `.NAME.XXXXXXXX.tmp` and flock'ed by its writer for as long as it exists, so one that
  nobody holds was left by a writer that was killed: `abandoned_temps` finds them with what they hold.
- `append_line(path, line)`: a journal's append, under an exclusive lock, flushed and fsync'ed (the folder too
  when the file is new), after `before(fh)` (e.g. cutting a torn tail) under the same lock.
- `swap_folder(folder, out, aside)`: a rendered folder replaces `out`: the old one renamed aside, the new one into
  place; `restore_aside` / `recover_aside` complete it after an interruption between the two renames.

Standard library only.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:          # Windows: no flock
    fcntl = None


def json_safe(obj):
    """`obj` with NaN and infinities as None (JSON has neither), tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# A save's temp file: `.NAME.XXXXXXXX.tmp` beside NAME (tempfile.mkstemp's random part), locked
# (flock) by the process writing it for as long as it exists, so a temp file nobody holds was left
# by a save that was killed (see `abandoned_temps`).
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def lock(fd: int, *, shared: bool = False, wait: bool = True) -> bool:
    """flock `fd` (exclusive, or `shared`); without `wait`, False when another process holds it.
    True where the system has no flock (Windows): no lock, nothing to wait for."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def json_bytes(payload, indent: int = 1) -> bytes:
    """`payload` as the JSON bytes every saved run is written with (NaN and infinities as null)."""
    buffer = io.StringIO()
    json.dump(json_safe(payload), buffer, indent=indent, allow_nan=False)
    return buffer.getvalue().encode()


@contextlib.contextmanager
def staged(path: Path, data: bytes) -> Iterator[Path]:
    """A temp file beside `path` holding `data`, written, synced and given the permissions any new
    file of the user's gets (0666 less the umask, not mkstemp's private 0600); locked while it exists
    and removed on exit, whatever happens (its content lives on under the name the body linked or
    renamed it to)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        lock(fd)
        _write_all(fd, data)
        os.fsync(fd)
        os.chmod(tmp, 0o666 & ~umask())
        yield tmp
    finally:
        try:
            tmp.unlink(missing_ok=True)
        finally:
            os.close(fd)


def save_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write `payload` as JSON atomically (temp file in the same folder, then rename); NaN becomes null.
    Any failure (a full disk, a read-only or forbidden folder) raises the OSError and leaves `path` as it was."""
    return write_atomic(path, json_bytes(payload))


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (a temp file beside it, fsync'ed, renamed over): a reader sees the old
    file or the new one, never a torn one; any failure raises and leaves `path` as it was."""
    path = Path(path)
    with staged(path, data) as tmp:
        os.replace(tmp, path)
    return path


def create_json(path: str | os.PathLike, payload: dict, unique: bool = False) -> Path:
    """Create `path` holding `payload`, never replacing a file (a hard link of the written temp file:
    exclusive and atomic, so no reader ever sees it empty or half written).

    With `unique`, a taken name becomes `<stem>-2.json`, `<stem>-3.json`, ... (two runs
    started in the same second each get their own file); without, a taken name is a
    FileExistsError. Later writes to the returned path go through `save_json`.
    """
    path = Path(path)
    with staged(path, json_bytes(payload)) as tmp:
        for k in range(1, 10_000):
            candidate = path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")
            try:
                os.link(tmp, candidate)
                return candidate
            except FileExistsError:
                if not unique:
                    raise
    raise FileExistsError(f"{path}: 9999 files of that name exist already")


@dataclass(frozen=True)
class LeftTemp:
    """A temp file of `save_json` / `create_json` that no running save holds: its save was killed.

    `target`: the file it was being saved as. `payload`: its JSON, or None with `problem` saying why
    it cannot be read (torn by the kill, empty). `also`: another name of the same file when the kill
    came after the save had linked it there (its content is saved; the temp is a spare name).
    """

    path: Path
    target: Path
    payload: dict | None
    problem: str | None
    also: Path | None


def _read_temp(path: Path) -> tuple[dict | None, str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({exc})"
    if not text:
        return None, "empty (killed before anything was written)"
    try:
        payload = json.loads(text)
    except ValueError as exc:
        return None, f"torn: not valid JSON ({exc}; {len(text.encode())} bytes)"
    if not isinstance(payload, dict):
        return None, f"not a saved object (JSON {type(payload).__name__})"
    return payload, None


def _held(path: Path) -> bool:
    """Whether a running save holds `path` (its flock); False where it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return not lock(fd, shared=True, wait=False)
    finally:
        os.close(fd)


def _other_name(path: Path) -> Path | None:
    """Another name of the file `path` in its folder (a hard link), or None."""
    st = path.stat()
    if st.st_nlink < 2:
        return None
    for entry in path.parent.iterdir():
        if entry != path and not entry.is_symlink() and entry.is_file() and os.path.samestat(entry.stat(), st):
            return entry
    return None


def abandoned_temps(folder: str | os.PathLike) -> list[LeftTemp]:
    """The temp files in `folder` that saves killed mid-way left behind (a save in progress holds its
    own and is not listed), sorted by name; none where the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        match = TEMP_NAME.match(path.name)
        if not match or path.is_symlink() or not path.is_file() or _held(path):
            continue
        try:
            also = _other_name(path)
        except FileNotFoundError:              # its save finished meanwhile
            continue
        payload, problem = _read_temp(path)
        found.append(LeftTemp(path, folder / match["target"], payload, problem, also))
    return found


def fsync_dir(path: Path) -> None:
    """fsync the folder `path` (a new name in it survives a crash); a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):   # not every platform opens folders
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(fh) -> Iterator[None]:
    """An exclusive flock on the open file `fh` for the block (nothing where the system has no flock)."""
    if fcntl is None:
        yield
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def append_line(path: str | os.PathLike, line: bytes, before: Callable | None = None) -> None:
    """Append `line` (bytes ending in a newline) to `path`: under an exclusive lock, after `before(fh)` (the file
    open as "a+b"), written, flushed and fsync'ed, and the folder fsync'ed too when the file is new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a+b") as fh, locked(fh):
        if before is not None:
            before(fh)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    if new:
        fsync_dir(path.parent)


# -- a folder replaced by rename -----------------------------------------------------------------------------
def temp_folder(out: Path) -> tuple[Path, Path]:
    """A new private folder beside `out` to render into, and the name the old `out` is put aside under."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    return tmp, tmp.with_name(tmp.name + "-old")


def swap_folder(folder: Path, out: Path, aside: Path) -> None:
    """Make `folder` the folder `out`: one rename where `out` is new (with the permissions a new folder of the user's
    gets), else two (`out` aside, `folder` in). Afterwards `aside` holds the old `out`; `restore_aside` removes it (or
    puts it back when this was interrupted between the renames)."""
    if not out.exists():
        os.chmod(folder, 0o777 & ~umask())          # mkdtemp's folder is private (0700)
        os.rename(folder, out)
        return
    os.chmod(folder, out.stat().st_mode & 0o7777)
    os.rename(out, aside)
    os.rename(folder, out)


def restore_aside(tmp: Path, aside: Path, out: Path) -> None:
    """Remove the temporary folders; where a swap stopped between its two renames, the old `out` goes back into
    place first (it is never removed while `out` is missing)."""
    if aside.exists() and not out.exists():
        os.rename(aside, out)
    for leftover in (tmp, aside):
        shutil.rmtree(leftover, ignore_errors=True)


def recover_aside(out: Path) -> None:
    """A swap killed between its two renames left the old `out` aside (`.NAME.tmp-*-old`): put it back."""
    if not out.exists() and out.parent.is_dir():
        aside = sorted(out.parent.glob(f".{glob.escape(out.name)}.tmp-*-old"), key=lambda p: p.stat().st_mtime)
        if aside:
            os.rename(aside[-1], out)
