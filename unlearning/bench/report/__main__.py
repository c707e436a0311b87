"""`python -m unlearning.bench.report`: see unlearning/bench/report/cli.py."""

import sys

from .cli import PROG, main

sys.exit(main(prog=PROG))
