"""Loaded records -> every table, figure and the three pages, written into a fresh folder beside the output folder,
which then takes its place by rename: the output holds the old report or the new one, never a mix.

Entries of the old output folder that the generator does not write (`runs/` of the committed report, any file of
the user's) are hard-linked or copied into the fresh folder first; then the old folder is renamed aside, the new
one into place, and the old one removed (`unlearning.common.files.swap_folder`; a run killed between the two renames
is undone by the next one). Outputs of earlier runs that this one did not produce are not carried over (no stale
figure or table).

Which folders may be replaced (`check_target`): a new or empty one, the folder of an earlier report (a README.md
this generator wrote), or one holding only generator outputs and `runs/`; never the folder holding the working
directory, and never a report of a more complete profile (paper > quick > smoke) unless forced.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ...common import files
from . import export, render
from . import figures as F
from . import tables as T
from .load import PROFILE_ORDER, Loaded, Problem

PAGES = render.PAGES
TABLE_FILES = ("md", "csv", "tex")


def generated(name: str) -> bool:
    """Whether `name` is a file this generator writes: a table's `.md`/`.csv`/`.tex`, a page, the records' export,
    or any `.png` (every figure in a report folder is the generator's, those of figures it no longer draws included).
    One it did not write this time is not carried over (no stale output)."""
    stem, _, ext = name.partition(".")
    return name in PAGES or name == export.FILE or ext == "png" or (ext in TABLE_FILES and stem in T.NAMES)


INPUTS = "runs"                 # the committed report's input runs: allowed in a folder without a report yet
README_HEAD = "# Benchmark report\n"            # the first line of every README this generator writes
README_PROFILE = re.compile(r"^> \*\*profile: (\w+)", re.MULTILINE)


class Refused(Exception):
    """The output folder may not be replaced (exit code 2, nothing written); the message says why and what to do."""


def context(loaded: Loaded) -> T.Context:
    devices = sorted({r.device_label for r in loaded.runs if r.torch == loaded.torch and r.device})
    return T.Context(loaded.profile, loaded.torch, ", ".join(devices))


def build_tables(loaded: Loaded, ctx: T.Context) -> tuple[dict[str, T.Table], T.Headline]:
    """The shown torch version's tables (with `torch_versions` when the input has several) and the headline."""
    tables = T.build(loaded.records, ctx)
    per_torch = {v: (tables if v == loaded.torch else T.build(df, ctx)) for v, df in loaded.by_torch.items()}
    versions = T.TorchVersions.build(per_torch, ctx)
    if versions is not None:
        tables[versions.name] = versions
    return tables, T.Headline.build(tables, ctx)


def render_all(loaded: Loaded, folder: Path, out: Path) -> list[str]:
    """Write every table, figure and page into `folder`; return the file names (README last)."""
    ctx = context(loaded)
    tables, headline = build_tables(loaded, ctx)
    written = headline.write(folder, markdown=False)          # the page shows it
    for t in tables.values():
        written += t.write(folder)
    written += export.write(loaded, folder)
    figures = F.build(loaded.records, ctx, folder)
    written += [f.file for f in figures if f.file]
    loaded.problems += [Problem(f"{f.name}.png", f"figure not drawn: {f.error}") for f in figures if f.error]
    for page, text in render.pages(loaded, ctx, tables, headline, figures, out).items():
        (folder / page).write_text(text, encoding="utf-8", newline="\n")
    return [*sorted(written), *reversed(PAGES)]


# -- which folder may be replaced -------------------------------------------------------------------------------
def rank(profile: str) -> int:
    """0 for the most complete profile (paper); unknown profiles rank below smoke."""
    return PROFILE_ORDER.index(profile) if profile in PROFILE_ORDER else len(PROFILE_ORDER)


def report_profile(readme_file: Path) -> str | None:
    """The profile of the report whose README this is ('' when it names none); None when this generator did not
    write it."""
    try:
        text = readme_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith(README_HEAD):
        return None
    found = README_PROFILE.search(text)
    return found.group(1) if found else ""


def check_target(out: Path, profile: str, force: bool = False) -> None:
    """Raise Refused unless the report of `profile` may replace the folder `out` (resolved)."""
    if out.exists() and not out.is_dir():
        raise Refused(f"{out} is not a folder")
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise Refused(f"{out} holds the working directory; the report replaces its output folder as a whole: "
                      "give --out a folder of its own")
    if not out.is_dir():
        return
    if (out / "README.md").exists():
        old = report_profile(out / "README.md")
        if old is None:
            raise Refused(f"{out} holds a README.md this generator did not write; give --out a new folder or the "
                          "folder of an earlier report")
        if rank(profile) > rank(old) and not force:
            raise Refused(f"{out} holds a report of profile {old}, more complete than this run's profile {profile}: "
                          "reports never silently replace a more complete one; give --force to replace it, or "
                          "--out another folder")
        return
    if others := sorted(p.name for p in out.iterdir() if not generated(p.name) and p.name != INPUTS):
        raise Refused(f"{out} holds {', '.join(others[:3])}{', ...' if len(others) > 3 else ''} and no report "
                      "(README.md) of this generator; give --out a new or empty folder, or that of an earlier report")


# -- publishing: a fresh folder, then a rename (unlearning.common.files) ------------------------------------
def _link_or_copy(src: str, dst: str) -> None:
    """A hard link where the file system allows one (instant, no space), else a copy with its metadata."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except (OSError, NotImplementedError):          # another file system, or no linkat on this platform
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry(out: Path, folder: Path) -> None:
    """Put every entry of `out` that the generator does not write (e.g. `runs/`) into `folder` too; `out` keeps
    them until the rename."""
    for entry in sorted(out.iterdir()):
        if generated(entry.name):
            continue
        target = folder / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(target))


def generate(loaded: Loaded, out: Path, force: bool = False) -> list[str]:
    """Check that `out` may be replaced (Refused), render the report into a fresh folder beside it, carry over what
    it does not write, and rename it into place."""
    out = out.resolve()
    files.recover_aside(out)
    check_target(out, loaded.profile, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, aside = files.temp_folder(out)
    try:
        written = render_all(loaded, tmp, out)
        if out.exists():
            _carry(out, tmp)
        files.swap_folder(tmp, out, aside)
    finally:
        files.restore_aside(tmp, aside, out)
    return written
