"""`python -m unlearning`: see `unlearning.running.cli`."""

import sys

from .running.cli import main

sys.exit(main())
