"""What the simulator's commands share: a parser whose help keeps its layout."""

from __future__ import annotations

import argparse


def command_parser(prog: str, doc: str | None, epilog: str) -> argparse.ArgumentParser:
    """A parser with the module's docstring as description and ``epilog`` (its settings and
    examples, ``{prog}`` filled in), both printed with their line breaks."""
    return argparse.ArgumentParser(
        prog=prog,
        description=doc,
        epilog=epilog.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
