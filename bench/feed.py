"""Benchmark input: a pre-produced backlog, a paced real-time load, and the expected outcome.

The backlog comes from the simulator (``python -m sim --rate 0``) when it is installed, else from
``bench.validation.make_messages`` (simulator-like, 2% malformed). The paced load stamps each
event with the wall-clock time at which it is produced, so ``stored_at − ts`` is end-to-end latency.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Producer

from bench.checks import check
from bench.validation import event_message, make_messages
from operators.records import Event, Source
from operators.validation import Limits, validate_message
from tests.harness import ROOT, read_topic

_CHUNK = 100_000


def sim_installed() -> bool:
    """Whether the simulator's command (``python -m sim``) exists in this checkout."""
    return (ROOT / "sim" / "__main__.py").exists()


def producer(brokers: str) -> Producer:
    """The load generator's producer (idempotent, 20 ms linger).

    Keep one for a warm-up and the measured load: an idempotent producer holds its first
    messages about 0.5 s while it gets a producer id, which would count as pipeline latency.
    """
    return Producer(
        {
            "bootstrap.servers": brokers,
            "linger.ms": 20,
            "queue.buffering.max.messages": 1_000_000,
            "enable.idempotence": True,
        }
    )


def produce_backlog(
    brokers: str,
    topic: str,
    count: int,
    seed: int,
    users: int,
    start: int = 0,
    timeline: tuple[float, float] | None = None,
) -> str:
    """Produce ``count`` events into ``topic`` as fast as possible; return the source used.

    ``start`` numbers the first event (a later segment of the same population: the simulator gets
    seed ``seed + start`` so eventIds differ, and population seed ``seed`` so the users keep their
    IPs and devices); ``timeline`` is the simulator's (first timestamp, span) in epoch seconds, so
    that consecutive segments follow each other in event time.
    """
    if sim_installed():
        env = {**os.environ, "RTEP_KAFKA_BROKERS": brokers, "RTEP_EVENTS_TOPIC": topic}
        args = [
            "--rate",
            "0",
            "--count",
            str(count),
            "--seed",
            str(seed + start),
            "--population-seed",
            str(seed),
            "--users",
            str(users),
        ]
        if timeline is not None:
            first_ts, span = timeline
            args += [
                "--start",
                datetime.fromtimestamp(first_ts, UTC).isoformat(),
                "--span",
                str(span),
            ]
        subprocess.run([sys.executable, "-m", "sim", *args], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return f"python -m sim {' '.join(args)}"
    backlog_producer = producer(brokers)
    for first in range(start, start + count, _CHUNK):
        size = min(_CHUNK, start + count - first)
        for i, value in enumerate(make_messages(size, first, users), first):
            backlog_producer.produce(topic, value, f"user-{i % users}".encode())
            backlog_producer.poll(0)
    if backlog_producer.flush(120) != 0:
        raise RuntimeError("backlog not acknowledged by the broker")
    return f"bench.validation.make_messages({count}, {start}, users={users})"


def produce_paced(load: Producer, topic: str, rate: int, seconds: float, start: int) -> int:
    """Produce ``rate`` events/s for ``seconds`` with real-time timestamps through ``load`` (see
    ``producer``); return the count."""
    users = 5000
    sent = 0
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        due = int(elapsed * rate) - sent
        now = datetime.now(UTC)
        for i in range(start + sent, start + sent + due):
            load.produce(topic, event_message(i, users, now), f"user-{i % users}".encode())
        sent += max(due, 0)
        load.poll(0)
        time.sleep(0.002)  # pacing tick of the load generator, not synchronisation
    if load.flush(60) != 0:
        raise RuntimeError("paced load not acknowledged by the broker")
    return sent


@dataclass(frozen=True)
class Expected:
    """What a correct consumer of the topic must end up storing."""

    messages: int
    rtep_valid: int  # distinct eventIds rtep's validation accepts (the authoritative count)
    checks_valid: int  # distinct eventIds the raw/peer minimal checks accept


def expected(brokers: str, topic: str) -> Expected:
    """Read the whole topic back and count distinct valid events under both validations."""
    records = read_topic(brokers, topic, timeout=300)
    now = datetime.now(UTC)
    limits, source = Limits(), Source(topic, 0, 0)
    rtep_ids = set()
    check_ids = set()
    for record in records:
        result = validate_message(record.value, source, now, now, limits)
        if isinstance(result, Event):
            rtep_ids.add(result.event_id)
        if (row := check(record.value, now)) is not None:
            check_ids.add(row["event_id"])
    return Expected(len(records), len(rtep_ids), len(check_ids))
