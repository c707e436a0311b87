"""`python -m reports` (from the repository root): runs `unlearning.bench.report.cli.main`, the generator in
unlearning/bench/report/. `python -m unlearning.bench.report` is the same command and works from any folder."""

import sys

from unlearning.bench.report.cli import main

sys.exit(main(prog="python -m reports"))
