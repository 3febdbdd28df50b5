"""Private, throw-away Redis and PostgreSQL servers that a test may stop and start at will.

Never stop the shared servers: outage tests run against these, on free loopback ports.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

from rtep.core.embedded import free_port
from tests.harness import wait_until


class PrivateRedis:
    """``redis-server --save ''`` on a free port; ``stop()`` loses its data, like a crash."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _answers(client), timeout=20, what="private redis-server to start")
        client.close()

    def stop(self) -> None:
        """Kill the server (our own process only) and wait for it to exit."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None

    def client(self) -> redis.Redis:
        """A client of this server (decoded strings)."""
        return redis.Redis.from_url(self.url, decode_responses=True)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A running private Redis, stopped afterwards."""
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster in a temp dir, run as user ``postgres`` when we are root."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.data = root / "data"
        self.log = root / "server.log"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_user:
            shutil.chown(root, "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")  # fmt: skip

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start on the same port and data, and wait until it accepts connections."""
        options = f"-p {self.port} -k '' -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "start")  # fmt: skip
        wait_until(self.accepts, timeout=30, what="private PostgreSQL to accept connections")

    def stop(self) -> None:
        """Stop immediately (``-m immediate``: like a crash, connections are cut)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def accepts(self) -> bool:
        """True when a connection succeeds."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL cluster, stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="rtep-pg-"))
    try:
        server = PrivatePostgres(root)
        server.start()
        try:
            yield server
        finally:
            if server.accepts():
                server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
