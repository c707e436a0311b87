"""`python -m reports`: runs `unlearning.report.cli.main` (the generator lives in unlearning/report/)."""

import sys

from unlearning.report.cli import main

sys.exit(main())
