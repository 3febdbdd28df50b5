"""Rows/s of EventsSink (COPY → staging → INSERT … ON CONFLICT) vs a raw COPY baseline, same run.

Run: ``python -m bench.sink_throughput [--events N]``. Uses a throw-away database (the test
harness's ``fresh_database``, on ``RTEP_TEST_ADMIN_DSN``'s server), migrated, dropped at the end. Each measurement starts from an empty ``rtep.events``; one transaction per batch, as the
dataflow does. Reports, does not assert.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from operators.records import Event
from sinks.pg_tables import EVENTS
from sinks.postgres import EventsSink
from tests.harness import fresh_database

_TYPES = ("login", "page_view", "page_view", "button_click", "form_submit", "logout")


def make_events(count: int) -> list[Event]:
    """Deterministic, simulator-like events with distinct ids."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        user = f"user-{i % 5000}"
        page = f"/p/{i % 40}"
        out.append(
            Event(
                event_id=str(uuid.UUID(int=(i * 2654435761) % 2**128 + 1)),
                type=_TYPES[i % len(_TYPES)],
                ts=base + timedelta(milliseconds=i),
                user_id=user,
                payload={"userId": user, "ip": "10.1.2.3", "page": page, "device": "Safari on iOS"},
                received_at=base + timedelta(milliseconds=i + 3),
                ip="10.1.2.3",
                device="Safari on iOS",
                page=page,
                browser="Mobile Safari",
                os="iOS",
                device_class="mobile",
                session_id=f"s-{user}",
            )
        )
    return out


def cpu_seconds(backend_pid: int) -> float:
    """CPU time of this process plus of the PostgreSQL backend serving it (same machine)."""
    fields = Path(f"/proc/{backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return time.process_time() + ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Rate:
    """Rows per wall-clock second and per CPU second (client + server backend)."""

    wall: float
    cpu: float


def timed(
    write: Callable[[list[Event]], None], events: list[Event], batch: int, backend_pid: int
) -> Rate:
    """Rows/s of ``write`` over ``events`` in batches of ``batch``."""
    cpu = cpu_seconds(backend_pid)
    started = time.perf_counter()
    for k in range(0, len(events), batch):
        write(events[k : k + batch])
    wall = time.perf_counter() - started
    return Rate(len(events) / wall, len(events) / (cpu_seconds(backend_pid) - cpu))


def raw_copy(conn: psycopg.Connection[tuple[object, ...]]) -> Callable[[list[Event]], None]:
    """Baseline: the same rows COPYed straight into rtep.events (no staging, no conflict check)."""
    copy_sql = sql.SQL("COPY rtep.events ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, EVENTS.columns))
    )

    def write(batch: list[Event]) -> None:
        with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for event in batch:
                copy.write_row(EVENTS.row(event))

    return write


def main() -> None:
    """Print rows/s per batch size: raw COPY, EventsSink (new rows), EventsSink (replay)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    events = make_events(args.events)
    with fresh_database("rtep_bench") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        part = EventsSink(dsn).open()
        part.write_batch(make_events(args.events + 1)[-1:])  # connect before measuring
        sink_pid = part.backend_pid
        assert sink_pid is not None
        print(f"{args.events:,} events per run, one transaction per batch; rows/s wall-clock,")
        print("and rows per CPU-second of client + PostgreSQL backend (independent of other load)")
        print(
            f"{'batch':>6} {'raw COPY':>10} {'EventsSink':>10} {'ratio':>5} {'replay':>10}"
            f" {'raw/cpu-s':>10} {'sink/cpu-s':>10}"
        )
        for batch in (1000, 5000):
            conn.execute("TRUNCATE rtep.events")
            raw = timed(raw_copy(conn), events, batch, conn.info.backend_pid)
            conn.execute("TRUNCATE rtep.events")
            sink = timed(part.write_batch, events, batch, sink_pid)
            replay = timed(part.write_batch, events, batch, sink_pid)
            print(
                f"{batch:>6} {raw.wall:>10,.0f} {sink.wall:>10,.0f} {sink.wall / raw.wall:>5.2f}"
                f" {replay.wall:>10,.0f} {raw.cpu:>10,.0f} {sink.cpu:>10,.0f}"
            )
        part.close()


if __name__ == "__main__":
    main()
