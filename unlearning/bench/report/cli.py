"""`python -m unlearning.bench.report [JSON files or folders ...] [--out DIR] [--force]`: tables, figures and the
report's pages from saved benchmark runs. `python -m reports ...` is the same command in the repository root
(`reports/` is not an installed package).

What it reads and skips, what it refuses to replace and its exit codes: `EPILOG` (the `--help` text), the one place
they are written down."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

# This module imports only the standard library at load time: the `report` extra is checked in `main`, so its
# absence is one line on stderr and exit code 2, not a traceback.
EXTRA = ("pandas", "matplotlib", "seaborn", "jinja2", "tabulate", "pyarrow")      # pyproject's `report` extra
EXTRA_NEEDED = "the report generator needs the 'report' extra (pip install 'unlearning-bench[report]')"
DEFAULT_OUT = Path(".benchmarks") / "report"        # of the working directory: scratch, never the committed report
PROG = "python -m unlearning.bench.report"
CRASHED = 3
DESCRIPTION = "Tables, figures and the report's pages from saved benchmark runs (pytest-benchmark JSON)."
EPILOG = f"""\
defaults are relative to the working directory: input ./.benchmarks/ (where pytest-benchmark saves runs), output
./{DEFAULT_OUT.as_posix()}/ (scratch). The committed report: `python -m reports reports/runs --out reports` in the
repository root (`python -m reports` works there only; `python -m unlearning.bench.report` anywhere). The output folder
is replaced as a whole, keeping entries the generator does not write (runs/); a report of a more complete profile
(paper > quick > smoke) is not replaced without --force.

An input folder is walked for its .json files: each that cannot be read (with the system's reason: a dangling link,
not a regular file, no permission, not JSON) is named as skipped, and so is a symlinked folder (not walked: name the
folder itself) and every record that is malformed or outside its key's range (docs/schema.md); a run file copied
(same machine, commit, datetime and cells) is counted once and named. A run saved after an interrupt is used, with a
warning that it is incomplete; so are runs made from a dirty tree and records of different CPU types or torch
versions that meet in one table (each named in provenance.md).

exit codes: 0 all input used; 1 written, something skipped (named on stderr); 2 nothing written (no usable input,
output folder refused or not writable, 'report' extra missing); 3 crashed (a bug; traceback on stderr)."""


class MissingExtra(Exception):
    """A package of the `report` extra cannot be imported."""


def require_extra() -> None:
    """Import each package of the `report` extra by name (matplotlib too, not only through seaborn)."""
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtra(f"{EXTRA_NEEDED}: {exc}") from None


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", metavar="JSON_OR_FOLDER",
                    help="saved runs (pytest-benchmark JSON) or folders holding them; "
                         "default: the newest saved run under ./.benchmarks/")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"output folder (default: ./{DEFAULT_OUT.as_posix()}/ of the working directory)")
    ap.add_argument("--force", action="store_true",
                    help="replace a report of a more complete profile (e.g. a paper report by a smoke run)")
    return ap


def warnings(loaded) -> list[str]:
    """What the report uses but the reader must know: incomplete runs, runs from a dirty tree, records of different
    CPU types or torch versions that meet in one table (`machines.mixed`)."""
    lines = [f"{r.label} is {r.status}; the report shows the cells it has" for r in loaded.incomplete]
    if loaded.dirty:
        lines.append(f"made from a dirty tree (uncommitted changes): {', '.join(r.label for r in loaded.dirty)}; "
                     "provenance.md names them")
    return lines + [f"records of different CPU types or torch versions meet in {m}" for m in loaded.mixed]


def report(inputs: list[str], out: Path | None, force: bool = False) -> int:
    """Load, write, and say what was used and what was skipped; the exit code."""
    from .load import NoInput, load
    from .pipeline import Refused, generate

    shown = out if out is not None else DEFAULT_OUT.resolve()      # the default named in full: it is not obvious
    try:
        loaded = load(inputs)
    except NoInput as exc:
        for p in exc.problems:
            print(f"reports: skipped {p}", file=sys.stderr)
        print(f"reports: error: {exc}; nothing written", file=sys.stderr)
        return 2
    for p in loaded.problems:
        print(f"reports: skipped {p}", file=sys.stderr)
    seen = len(loaded.problems)
    try:
        files = generate(loaded, shown, force)
    except Refused as exc:
        print(f"reports: error: {exc}; nothing written", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"reports: error: cannot write the report to {shown}: {exc}; nothing replaced", file=sys.stderr)
        return 2
    for p in loaded.problems[seen:]:
        print(f"reports: {p}", file=sys.stderr)
    print(f"reports: profile {loaded.profile}, torch {loaded.torch}, from {', '.join(r.label for r in loaded.runs)}")
    for line in warnings(loaded):
        print(f"reports: warning: {line}", file=sys.stderr)
    print(f"reports: wrote {len(files)} files to {shown}: {' '.join(files)}")
    if loaded.problems:
        print(f"reports: {len(loaded.problems)} problem(s) above: the report leaves that out (exit 1)",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    args = parser(prog).parse_args(argv)
    try:
        require_extra()
    except MissingExtra as exc:
        print(f"reports: error: {exc}", file=sys.stderr)
        return 2
    try:
        return report(args.inputs, args.out, args.force)
    except Exception:           # a bug, not bad input: exit 3, which neither "skipped" (1) nor "nothing" (2) means
        traceback.print_exc()
        print(f"reports: error: the generator crashed (a bug; traceback above); exit code {CRASHED}",
              file=sys.stderr)
        return CRASHED
