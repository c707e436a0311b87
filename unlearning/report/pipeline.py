"""Loaded records -> every table, figure and the README, written to a temporary sibling folder and moved into
the output folder one file at a time (README last); outputs of earlier runs this one did not produce are removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import figures as F
from . import tables as T
from .load import Loaded, Problem
from .render import readme

# every file the generator may write: what it did not write this time is removed (no stale figure or table)
OUTPUTS = frozenset([f"{n}.{ext}" for n in T.NAMES for ext in ("md", "csv", "tex")]
                    + [f"{name}.png" for name in F.NAMES] + ["README.md"])


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
    """Write every table, figure and the README into `folder`; return the file names (README last)."""
    ctx = context(loaded)
    tables, headline = build_tables(loaded, ctx)
    files = headline.write(folder)
    for t in tables.values():
        files += t.write(folder)
    figures = F.build(loaded.records, ctx, folder)
    files += [f.file for f in figures if f.file]
    loaded.problems += [Problem(f"{f.name}.png", f"figure not drawn: {f.error}") for f in figures if f.error]
    (folder / "README.md").write_text(readme(loaded, ctx, tables, headline, figures, out), encoding="utf-8",
                                      newline="\n")
    return [*sorted(files), "README.md"]


def publish(folder: Path, out: Path, files: list[str]) -> None:
    """Move the finished files into `out` one by one (atomic each), then drop outputs of earlier runs
    that this run did not produce."""
    for name in files:
        os.replace(folder / name, out / name)
    for name in sorted(OUTPUTS - set(files)):
        stale = out / name
        if stale.is_file():
            stale.unlink()


def generate(loaded: Loaded, out: Path) -> list[str]:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        files = render_all(loaded, tmp, out)
        publish(tmp, out, files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files
