"""Print every ``*.tf`` file of a directory as JSON, parsed by python-hcl2.

Runs under ``.venv-validators/bin/python`` with ``PYTHONPATH=.venv-validators/hcl2`` (python-hcl2
lives there, apart from checkov's clashing ``hcl2``), so it imports nothing from the project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hcl2
from hcl2 import SerializationOptions


def dump(directory: Path) -> dict[str, dict]:
    """File name -> parsed HCL (quotes stripped), for every ``*.tf`` file in ``directory``."""
    options = SerializationOptions(strip_string_quotes=True)
    parsed = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            parsed[path.name] = hcl2.load(handle, serialization_options=options)
    return parsed


if __name__ == "__main__":
    json.dump(dump(Path(sys.argv[1])), sys.stdout)
