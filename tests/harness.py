"""Test harness: real services on free loopback ports, isolated databases, Redis prefixes and topics.

Nothing here mocks a backend: each helper starts or provisions a real one and cleans it up.
Synchronisation is by polling a condition with a deadline (``wait_until``), never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import redis
from confluent_kafka import Message

from rtep.commands.migrate import migrate
from rtep.core.embedded import free_port
from rtep.core.kafka_admin import read_to_end

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("RTEP_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RTEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 60.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition}")
        time.sleep(interval)  # poll interval, not synchronisation


@dataclass(frozen=True)
class Record:
    """One Kafka message as read back by a test."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


def _headers(message: Message) -> dict[str, bytes]:
    """A message's headers by name, values as bytes (a header without a value as b"")."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {k: v if isinstance(v, bytes) else (v or "").encode() for k, v in pairs}


def read_topic(brokers: str, topic: str, timeout: float = 60.0) -> list[Record]:
    """Every message of ``topic`` from the beginning to the current end of each partition."""
    return [
        Record(m.key(), m.value(), _headers(m), m.partition() or 0, m.offset() or 0)
        for m in read_to_end(brokers, topic, timeout=timeout)
    ]


def produce(brokers: str, topic: str, values: list[bytes | None], key: bytes | None = None) -> None:
    """Produce ``values`` (in order) and wait until every one is acknowledged."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "acks": "all"})
    for value in values:
        producer.produce(topic, value, key)
        producer.poll(0)
    assert producer.flush(30) == 0, "messages not acknowledged"


def event_json(
    kind: str = "page_view", user: str = "u1", ts: str | None = None, **payload: object
) -> bytes:
    """A valid event message (fields may be overridden through ``payload``)."""
    import orjson

    defaults: dict[str, dict[str, object]] = {
        "login": {"ip": "10.0.0.1", "device": "Chrome on macOS"},
        "logout": {"ip": "10.0.0.1"},
        "page_view": {"page": "/home", "device": "Chrome on macOS"},
        "button_click": {"buttonId": "buy", "page": "/cart"},
        "form_submit": {"formId": "f", "fields": {"a": "b"}},
    }
    from datetime import UTC, datetime

    body = {
        "eventId": str(uuid.uuid4()),
        "type": kind,
        "timestamp": ts or datetime.now(UTC).isoformat(),
        "payload": {"userId": user, **defaults[kind], **payload},
    }
    return orjson.dumps(body)


def scrape_metric(port: int, name: str) -> float:
    """Sum of all samples of metric ``name`` on a local /metrics endpoint (0 when absent)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def dsn_for(database: str) -> str:
    """The DSN of ``database`` on the test server."""
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


@contextmanager
def fresh_database(prefix: str = "rtep_t", migrated: bool = True) -> Iterator[str]:
    """A new database (migrated unless told otherwise); dropped afterwards. Yields its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = dsn_for(name)
    try:
        if migrated:
            migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A unique Redis key prefix under ``rtep:``; its keys are deleted afterwards."""
    prefix = f"rtep:t{uuid.uuid4().hex[:8]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def unique_topics() -> dict[str, str]:
    """Topic names unique to one test, as RTEP_* environment variables."""
    tag = uuid.uuid4().hex[:8]
    return {
        "RTEP_EVENTS_TOPIC": f"t{tag}.events",
        "RTEP_DLQ_TOPIC": f"t{tag}.dlq",
        "RTEP_ALERTS_TOPIC": f"t{tag}.alerts",
    }


def provision_topics(brokers: str) -> dict[str, str]:
    """Create this test's own events (4 partitions), DLQ and alerts topics; their RTEP_* names."""
    from rtep.core.kafka_admin import ensure_topics

    topics = unique_topics()
    ensure_topics(
        brokers,
        {
            topics["RTEP_EVENTS_TOPIC"]: 4,
            topics["RTEP_DLQ_TOPIC"]: 1,
            topics["RTEP_ALERTS_TOPIC"]: 1,
        },
    )
    return topics


@dataclass
class Stack:
    """Everything one pipeline test needs: broker address, database, Redis prefix, topics."""

    brokers: str
    dsn: str
    redis_prefix: str
    topics: dict[str, str]
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment for rtep processes of this stack."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RTEP_")}
        env.update(
            RTEP_KAFKA_BROKERS=self.brokers,
            RTEP_DATABASE_URL=self.dsn,
            RTEP_REDIS_URL=REDIS_URL,
            RTEP_REDIS_PREFIX=self.redis_prefix,
            RTEP_RECOVERY_DIR=str(self.workdir / "recovery"),
            RTEP_METRICS_PORT="0",
            PYTHONPATH=str(ROOT),
            **self.topics,
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Run one query on the stack's database and return all rows."""
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, *params: object) -> object:
        """Run one query and return the first column of the first row."""
        return self.query(sql, *params)[0][0]

    def run_sim(
        self, *args: str, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m sim`` against this stack; fail the test if it fails."""
        proc = subprocess.run(
            [sys.executable, "-m", "sim", *args],
            env=self.env(**env),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"sim failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        return proc

    def run_labelled_sim(self, labels: Path, *args: str) -> list[dict[str, Any]]:
        """Run the simulator with ground-truth labels written to ``labels``; return the labels."""
        self.run_sim(*args, "--labels", str(labels))
        return [json.loads(line) for line in labels.read_text().splitlines() if line.strip()]

    def start_pipeline(self, *extra_args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start the dataflow as ``python -m rtep.commands.serve`` (recovery on); the caller stops it."""
        log = (self.workdir / "pipeline.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "rtep.commands.serve", *extra_args],
            env=self.env(**env),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def pipeline_log(self) -> str:
        """The pipeline's combined output so far (for failure messages)."""
        path = self.workdir / "pipeline.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout: float = 15) -> list[int]:
    """Stop child processes with SIGINT, all at once (then SIGKILL); return their exit codes.

    All at once: the processes of one Bytewax cluster panic when a peer leaves before them.
    """
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(2)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return [int(proc.returncode) for proc in procs]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    """Stop a child process with SIGINT (then SIGKILL); return its exit code."""
    return stop_processes([proc], timeout)[0]


def rtep_run_env(dsn: str, prefix: str, workdir: Path) -> dict[str, str]:
    """The environment of an ``rtep run`` under test: this machine's, less every RTEP_ setting,
    plus its own database, Redis prefix, free metrics port and recovery directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTEP_")}
    return env | {
        "RTEP_DATABASE_URL": dsn,
        "RTEP_REDIS_PREFIX": prefix,
        "RTEP_METRICS_PORT": str(free_port()),
        "RTEP_RECOVERY_DIR": str(workdir / "recovery"),
    }
