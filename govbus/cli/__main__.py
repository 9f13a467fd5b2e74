"""`python -m govbus.cli`: the `govbus` command without its console script."""

import sys

from govbus.cli import main

sys.exit(main())
