"""`python -m unlearning.report`: see unlearning/report/cli.py."""

import sys

from .cli import PROG, main

sys.exit(main(prog=PROG))
