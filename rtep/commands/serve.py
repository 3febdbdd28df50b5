"""Run the pipeline the way production does: migrate, prepare recovery, then run the dataflow.

``python -m rtep.commands.serve [extra bytewax.run args, e.g. -w 2]``. Recovery is always on: it is what
carries the Kafka offsets (bytewax commits nothing to Kafka), so a restart resumes where the last
snapshot left off instead of re-reading the topic.
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
from pathlib import Path

import psycopg
from bytewax.recovery import init_db_dir

from rtep.commands.cli import command_parser
from rtep.commands.migrate import migrate
from rtep.core.kafka_admin import ensure_topics, wait_for_broker
from rtep.core.logs import get_logger
from rtep.core.settings import Settings, get_settings, settings_help

log = get_logger("rtep.commands.serve")


def prepare_recovery(settings: Settings, index: int = 0) -> Path:
    """Create the recovery directory; process 0 initialises it when it holds no partitions yet.

    Only process 0 creates partitions, so processes of one host that share the directory do not
    race to create the same files (the loser would crash). The cluster as a whole needs every
    partition; a process on another host may start with an empty directory.
    """
    directory = Path(settings.recovery_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if index == 0 and not any(directory.glob("part-*.sqlite3")):
        init_db_dir(directory, settings.recovery_partitions)
        log.info(
            "recovery store initialised",
            dir=str(directory),
            partitions=settings.recovery_partitions,
        )
    return directory


def ensure_pipeline_topics(settings: Settings) -> None:
    """Create the events, dead-letter and alerts topics if they are missing."""
    wait_for_broker(settings.kafka_brokers)
    ensure_topics(
        settings.kafka_brokers,
        {
            settings.events_topic: settings.topic_partitions,
            settings.dlq_topic: 1,
            settings.alerts_topic: 1,
        },
    )


def dataflow_argv(settings: Settings, recovery_dir: Path, extra: list[str]) -> list[str]:
    """The ``bytewax.run`` arguments with recovery flags."""
    return [
        "dataflows.activity:flow",
        "-r",
        str(recovery_dir),
        "-s",
        str(settings.snapshot_interval_seconds),
        "-b",
        str(settings.recovery_backup_seconds),
        *extra,
    ]


def main(argv: list[str] | None = None, prog: str = "python -m rtep.commands.serve") -> int:
    """Prepare everything the dataflow needs, then replace this process with it."""
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        _parser(prog).print_help()
        return 0
    settings = get_settings()
    try:
        migrate(settings.database_url.get_secret_value())
    except psycopg.OperationalError as exc:
        log.error(
            "cannot reach PostgreSQL: check RTEP_DATABASE_URL and that the server is running",
            error=str(exc).strip().splitlines()[-1:],
        )
        return 2
    try:
        ensure_pipeline_topics(settings)
    except TimeoutError as exc:
        log.error(str(exc))
        return 2
    index = process_id(argv)
    recovery_dir = prepare_recovery(settings, index)
    offset_metrics_port(settings, index)
    return run_dataflow(dataflow_argv(settings, recovery_dir, argv))


def _parser(prog: str) -> argparse.ArgumentParser:
    """Help only: every argument is handed to ``bytewax.run`` unchanged (parsing could reorder them)."""
    return command_parser(
        prog,
        __doc__,
        settings_help(
            "kafka_brokers",
            "events_topic",
            "dlq_topic",
            "alerts_topic",
            "database_url",
            "redis_url",
            "metrics_port",
            "metrics_host",
            "recovery_dir",
            "snapshot_interval_seconds",
            note="and every threshold and limit of the dataflow (docs/configuration.md)",
        ),
        f"{prog}",
        f"{prog} -w 2",
        f'{prog} -i 0 -a "host0:2101;host1:2101"   # process 0 of two hosts',
        usage=f"{prog} [bytewax.run arguments, e.g. -w 2, -i N -a ADDRESSES]",
    )


def process_id(argv: list[str]) -> int:
    """This process's index in a multi-process run (``-i N`` / ``BYTEWAX_PROCESS_ID``), else 0."""
    for flag in ("-i", "--process-id"):
        if flag in argv[:-1]:
            return int(argv[argv.index(flag) + 1])
    return int(os.environ.get("BYTEWAX_PROCESS_ID", "0"))


def offset_metrics_port(settings: Settings, index: int) -> None:
    """Process N of a multi-process run serves /metrics on RTEP_METRICS_PORT + N (one per process)."""
    if index and settings.metrics_port:
        os.environ["RTEP_METRICS_PORT"] = str(settings.metrics_port + index)
        get_settings.cache_clear()


def run_dataflow(args: list[str]) -> int:
    """Run ``bytewax.run`` in this process; Ctrl-C or SIGTERM stop it cleanly (exit 0).

    A stop is always a crash for Bytewax (no final snapshot): the next start resumes from the
    last snapshot and replays what followed, which the idempotent sinks absorb.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    log.info("starting dataflow", args=args)
    sys.argv = ["bytewax.run", *args]
    try:
        runpy.run_module("bytewax.run", run_name="__main__", alter_sys=True)
    except KeyboardInterrupt:
        return _stopped()
    except Exception as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return _stopped()
        root = _root_cause(exc)
        log.error("dataflow failed", error=f"{type(root).__name__}: {root}", exc_info=True)
        return 1
    return 0


def _stopped() -> int:
    log.info("dataflow stopped by signal; the next start resumes from the last snapshot")
    return 0


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


if __name__ == "__main__":
    sys.exit(main())
