"""`python -m reports` (from the repository root): runs `unlearning.report.cli.main`, the generator in
unlearning/report/. `python -m unlearning.report` is the same command and works from any folder."""

import sys

from unlearning.report.cli import main

sys.exit(main(prog="python -m reports"))
