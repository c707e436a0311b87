"""The committed benchmark report (tables, figures, README.md, and the runs they come from under runs/).

The generator lives in `unlearning.report`; this package only keeps `python -m reports [args]` working from the
repository root (see `unlearning.report.cli`).
"""

from unlearning.report.cli import main

__all__ = ["main"]
