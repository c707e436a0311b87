"""`python -m reports [JSON files or folders ...] [--out DIR]`: tables, figures and README from saved runs.

Exit codes: 0 every input was used; 1 the report was written but something was skipped
(each skip is named on stderr); 2 nothing written (no usable input, or the output folder
cannot be written).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import figures as F
from . import tables as T
from .load import Loaded, NoInput, Problem, load
from .render import readme

DEFAULT_OUT = Path(__file__).resolve().parent
TABLE_NAMES = ("headline", "paper000_table1", "paper000_california", "paper002_table1", "grid", "overhead",
               "torch_versions")
# every file the generator may write: what it did not write this time is removed (no stale figure or table)
OUTPUTS = frozenset([f"{n}.{ext}" for n in TABLE_NAMES for ext in ("md", "csv", "tex")]
                    + [f"{fn.__name__}.png" for fn in F.FIGURES] + ["README.md"])


def context(loaded: Loaded) -> T.Context:
    devices = sorted({r.device + (f" ({r.device_name})" if r.device_name and r.device_name != r.device else "")
                      for r in loaded.runs if r.torch == loaded.torch and r.device})
    return T.Context(loaded.profile, loaded.torch, ", ".join(devices))


def render_all(loaded: Loaded, folder: Path, out: Path) -> list[str]:
    """Write every table, figure and the README into `folder`; return the file names (README last)."""
    ctx = context(loaded)
    tables = T.build(loaded.records, ctx)
    per_torch = {v: (tables if v == loaded.torch else T.build(df, ctx)) for v, df in loaded.by_torch.items()}
    versions = T.torch_versions(per_torch, ctx)
    if versions is not None:
        tables["torch_versions"] = versions
    headline = T.headline_table(tables, ctx)
    files = headline.write(folder)
    for t in tables.values():
        files += t.write(folder)
    figures = F.build(loaded.records, ctx, folder)
    files += [f.file for f in figures if f.file]
    loaded.problems += [Problem(f"{f.name}.png", f"figure not drawn: {f.error}") for f in figures if f.error]
    (folder / "README.md").write_text(readme(loaded, ctx, tables, headline, figures, out), encoding="utf-8",
                                      newline="\n")
    return sorted(files) + ["README.md"]


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports", description=__doc__.split("\n\n")[0],
                                 epilog="Exit codes: 0 all input used, 1 something skipped (named on stderr), "
                                        "2 nothing written (no usable input, or the output cannot be written).")
    ap.add_argument("inputs", nargs="*", metavar="JSON_OR_FOLDER",
                    help="saved runs (pytest-benchmark JSON) or folders holding them; "
                         "default: the newest saved run under .benchmarks/")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    try:
        loaded = load(args.inputs)
    except NoInput as exc:
        for p in exc.problems:
            print(f"reports: skipped {p}", file=sys.stderr)
        print(f"reports: error: {exc}; nothing written", file=sys.stderr)
        return 2
    for p in loaded.problems:
        print(f"reports: skipped {p}", file=sys.stderr)
    seen = len(loaded.problems)
    try:
        files = generate(loaded, args.out)
    except OSError as exc:
        print(f"reports: error: cannot write the report to {args.out}: {exc}; nothing replaced", file=sys.stderr)
        return 2
    for p in loaded.problems[seen:]:
        print(f"reports: {p}", file=sys.stderr)
    used = ", ".join(r.label for r in loaded.runs)
    print(f"reports: profile {loaded.profile}, torch {loaded.torch}, from {used}")
    print(f"reports: wrote {len(files)} files to {args.out}: {' '.join(files)}")
    if loaded.problems:
        print(f"reports: {len(loaded.problems)} problem(s) above: the report leaves that out (exit 1)",
              file=sys.stderr)
        return 1
    return 0
