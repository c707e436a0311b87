"""`python -m unlearning.report`: see unlearning/report/cli.py."""

import sys

from .cli import main

sys.exit(main())
