"""`python -m unlearning`: see `unlearning.cli`."""

import sys

from .cli import main

sys.exit(main())
