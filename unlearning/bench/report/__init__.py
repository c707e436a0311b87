"""The report generator: saved benchmark runs -> the papers' tables and figures beside ours.

`python -m unlearning.bench.report [JSON files or folders ...] [--out DIR] [--force]` (or `python -m reports` from the
repository root; see `cli`: the default output is the scratch folder ./.benchmarks/report/). It needs the
`report` extra (pandas, matplotlib, seaborn, jinja2, tabulate) and never torch: it reads the record schema from
the torch-free `unlearning.common.schema`. Modules: `load` (find, read, check and select records), `paper` (the papers'
published numbers), `tables` (one class per table: its frames, notes and sentences), `figures` (PNG), `render`
(the pages README.md, figures.md and provenance.md from `templates/`), `pipeline` (render into a fresh folder beside
the output folder, then rename it into place), `export` (records.parquet), `common` (shared helpers; the mean and
its interval come from `unlearning.common.summary`, as the CLI's do). Importing this package imports only the
standard library and `cli`; the extra is imported when `main` runs.
"""

from .cli import main

__all__ = ["main"]
