"""The report generator: saved benchmark runs -> the papers' tables and figures beside ours.

`python -m reports [JSON files or folders ...] [--out DIR]` (see `reports.cli`). Modules:
`load` (find, read, check and select records), `paper` (the papers' published numbers),
`tables` (Markdown/CSV/LaTeX tables), `figures` (PNG), `render` (README from
`templates/README.md.j2`).
"""

from .cli import main

__all__ = ["main"]
