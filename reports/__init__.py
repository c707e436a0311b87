"""The committed benchmark report (tables, figures, README.md, and the runs they come from under runs/).

The generator lives in `unlearning.bench.report`; this package only keeps `python -m reports [args]` working from the
repository root (see `unlearning.bench.report.cli`). Importing it imports the standard library only (the `report`
extra is checked when `main` runs). Regenerate this folder with `python -m reports reports/runs --out reports`.
"""

from unlearning.bench.report.cli import main

__all__ = ["main"]
