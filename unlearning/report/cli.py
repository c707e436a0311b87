"""`python -m reports [JSON files or folders ...] [--out DIR]`: tables, figures and README from saved runs.

Exit codes: 0 every input was used; 1 the report was written but something was skipped
(each skip is named on stderr); 2 nothing written (no usable input, the output folder
cannot be written, or the `report` extra is not installed).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# This module imports only the standard library at load time: the `report` extra is checked in `main`, so its
# absence is one line on stderr and exit code 2, not a traceback.
EXTRA = ("pandas", "matplotlib", "seaborn", "jinja2", "tabulate")      # pyproject's `report` extra
EXTRA_NEEDED = "the report generator needs the 'report' extra (pip install 'unlearning-bench[report]')"
DEFAULT_OUT = Path("reports")        # of the working directory: the repository's committed report


class MissingExtra(Exception):
    """A package of the `report` extra cannot be imported."""


def require_extra() -> None:
    """Import each package of the `report` extra by name (matplotlib too, not only through seaborn)."""
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtra(f"{EXTRA_NEEDED}: {exc}") from None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m reports", description=__doc__.split("\n\n")[0],
                                 epilog="Exit codes: 0 all input used, 1 something skipped (named on stderr), "
                                        "2 nothing written (no usable input, or the output cannot be written).")
    ap.add_argument("inputs", nargs="*", metavar="JSON_OR_FOLDER",
                    help="saved runs (pytest-benchmark JSON) or folders holding them; "
                         "default: the newest saved run under .benchmarks/")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    return ap


def report(inputs: list[str], out: Path) -> int:
    """Load, write, and say what was used and what was skipped; the exit code."""
    from .load import NoInput, load
    from .pipeline import generate

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
        files = generate(loaded, out)
    except OSError as exc:
        print(f"reports: error: cannot write the report to {out}: {exc}; nothing replaced", file=sys.stderr)
        return 2
    for p in loaded.problems[seen:]:
        print(f"reports: {p}", file=sys.stderr)
    print(f"reports: profile {loaded.profile}, torch {loaded.torch}, from {', '.join(r.label for r in loaded.runs)}")
    print(f"reports: wrote {len(files)} files to {out}: {' '.join(files)}")
    if loaded.problems:
        print(f"reports: {len(loaded.problems)} problem(s) above: the report leaves that out (exit 1)",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        require_extra()
    except MissingExtra as exc:
        print(f"reports: error: {exc}", file=sys.stderr)
        return 2
    return report(args.inputs, args.out)
