"""The peer's own virtualenv (``.run/venv-quix``), created on first use.

Quix Streams 3.28 pins ``confluent-kafka<2.13`` and an older pydantic than rtep's, so installing it
into rtep's ``.venv`` would downgrade rtep's dependencies. The benchmark runs the peer as a
separate process anyway, so it gets a separate environment.
"""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT

VENV = ROOT / ".run" / "venv-quix"
REQUIREMENTS = ("quixstreams==3.28.1", "psycopg2-binary>=2.9", "orjson>=3.10")


def python() -> str:
    """The peer venv's interpreter, creating the venv when missing."""
    interpreter = VENV / "bin" / "python"
    if not interpreter.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(VENV)], check=True)
        subprocess.run([sys.executable, "-m", "pip", "--python", str(interpreter), "install",
                        "--quiet", *REQUIREMENTS], check=True)  # fmt: skip
    return str(interpreter)
