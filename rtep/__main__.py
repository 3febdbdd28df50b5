"""``python -m rtep COMMAND``: the same as the ``rtep`` console script (see rtep/commands/cli.py)."""

import sys

from rtep.commands.cli import main

sys.exit(main())
