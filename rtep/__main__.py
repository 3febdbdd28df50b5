"""``python -m rtep COMMAND``: the same as the ``rtep`` console script (see rtep/cli.py)."""

import sys

from rtep.cli import main

sys.exit(main())
