"""``rtep``: one command for everything rtep does, each subcommand being an existing module's main.

Why a dispatcher and not one big parser: every module keeps its own parser (its flags, settings
and examples are written once, next to the code that reads them) and stays runnable as
``python -m …`` — the contract's commands and Bytewax's ``python -m bytewax.run
dataflows.activity:flow`` do not change. ``rtep NAME --help`` is that module's help under the
name ``rtep NAME``. Modules are imported only when their command runs, so ``rtep --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from rtep.core.settings import settings_help

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Command:
    """A subcommand: the module whose ``main(argv, prog)`` runs it, and one line on what it does."""

    module: str
    summary: str
    needs_checkout: bool = False  # lives beside the packages in a source tree (bench, tests)


COMMANDS: dict[str, Command] = {
    "run": Command(
        "rtep.commands.run",
        "everything locally with a live console: simulator -> broker -> dataflow -> stores",
    ),
    "serve": Command(
        "rtep.commands.serve", "the dataflow as production runs it (migrate, topics, recovery, run)"
    ),
    "migrate": Command("rtep.commands.migrate", "apply pending sql/ migrations (idempotent)"),
    "sim": Command("sim.__main__", "simulated user activity, with labelled attacks, into Kafka"),
    "score": Command("sim.score", "precision, recall and latency of the alerts against sim labels"),
    "replay-dlq": Command("rtep.commands.dlq_replay", "re-ingest dead letters once their cause is fixed"),
    "erase": Command("rtep.commands.erase", "delete one user's rows and Redis keys (GDPR erasure)"),
    "bench": Command(
        "bench.__main__", "benchmark rtep against a raw consumer and a peer", needs_checkout=True
    ),
}


def command_parser(
    prog: str, description: str | None, settings: str, *examples: str, usage: str | None = None
) -> argparse.ArgumentParser:
    """A command's parser whose ``--help`` ends with its settings paragraph, then examples.

    Description and epilog keep their line breaks (the settings list and examples are laid out).
    """
    epilog = settings + "\n\nexamples:\n" + "\n".join(f"  {example}" for example in examples)
    return argparse.ArgumentParser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<11} {cmd.summary}" for name, cmd in COMMANDS.items())
    parser = command_parser(
        "rtep",
        "rtep: real-time event processing. One command, these subcommands:\n\n" + listing,
        settings_help(
            "kafka_brokers",
            "database_url",
            "redis_url",
            note="each command's --help names the settings it reads",
        ),
        "rtep run                          # the whole pipeline on this machine, Ctrl-C stops it",
        "rtep serve -w 2                   # the dataflow with two workers",
        "rtep sim --help                   # any command's flags, settings and examples",
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="see above")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``rtep COMMAND [ARGS…]``: the command's module ``main(ARGS, prog="rtep COMMAND")``."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    command = COMMANDS[args.command]
    if command.needs_checkout and str(ROOT) not in sys.path:
        if not (ROOT / command.module.split(".")[0]).is_dir():
            print(
                f"rtep {args.command} runs from a source checkout (git clone, then make setup)",
                file=sys.stderr,
            )
            return 2
        sys.path.insert(0, str(ROOT))
    module = importlib.import_module(command.module)
    code = module.main(args.args, prog=f"rtep {args.command}")
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
