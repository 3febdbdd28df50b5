"""``rtep run`` (``make run``): the main job on embedded defaults, for a new user on a fresh machine.

simulator → Kafka (embedded Tansu broker unless RTEP_KAFKA_BROKERS is set) → dataflow →
PostgreSQL / Redis, with /metrics served (and a local Prometheus when its binary is installed).
Creates the database if missing, prints where to look, keeps a live console of what the pipeline
does (rtep/commands/console.py) while every process logs to .run/*.log, and on Ctrl-C stops each child in
order and says how it stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from rtep.commands.cli import command_parser
from rtep.commands.console import LATEST_ALERTS, AlertRow, Rates, Screen, View, scrape
from rtep.commands.migrate import migrate
from rtep.core.embedded import EmbeddedBroker, free_port
from rtep.core.logs import get_logger, log_to_file
from rtep.core.settings import get_settings, settings_help
from sim.attacks import MARGIN as ATTACK_FREE_LEAD

log = get_logger("rtep.commands.run")
ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run"


class SetupError(RuntimeError):
    """A prerequisite is missing; the message says how to fix it."""


def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` when the server runs but the database does not exist."""
    try:
        with psycopg.connect(dsn, connect_timeout=5):
            return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise SetupError(
                f"PostgreSQL is not reachable at RTEP_DATABASE_URL ({_redact(dsn)}): "
                f"{str(exc).strip().splitlines()[-1]}. Start it (Debian: `pg_ctlcluster 15 main "
                "start`) or point RTEP_DATABASE_URL at a running server."
            ) from None
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    log.info("database created", database=name)


def check_redis(url: str) -> None:
    """Fail early, naming the fix, when Redis does not answer."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise SetupError(
            f"Redis is not reachable at RTEP_REDIS_URL ({_redact(url)}): {exc}. Start it "
            "(`redis-server --daemonize yes`) or point RTEP_REDIS_URL at a running server."
        ) from None


def _redact(url: str) -> str:
    """The URL without its password, safe to print."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))


def start_prometheus(metrics_port: int, stack: ExitStack, stops: Stops) -> str | None:
    """A local Prometheus on loopback scraping the pipeline, when the binary is installed."""
    binary = shutil.which("prometheus")
    if not binary:
        log.info("prometheus not installed: skipping it (`make test-deps` installs it)")
        return None
    port = free_port() if _busy(9090) else 9090
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rtep-prom-")))
    rules = sorted((ROOT / "ops" / "prometheus" / "rules").glob("*.yml"))
    config = workdir / "prometheus.yml"
    rule_lines = "".join(f"  - {path}\n" for path in rules)
    config.write_text(
        "global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n"
        + (f"rule_files:\n{rule_lines}" if rule_lines else "")
        + "scrape_configs:\n  - job_name: rtep\n    static_configs:\n"
        + f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    log_path = RUN_DIR / "prometheus.log"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(_stop, Child("prometheus", proc, log_path), stops)
    return f"http://127.0.0.1:{port}"


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Child:
    """A process ``rtep run`` started: its name on the console, its log, and how to stop it."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    grace: float = 10.0  # seconds from SIGINT to SIGKILL


@dataclass
class Stops:
    """Says on the console what ``rtep run`` stopped, as it goes; remembers any it had to kill."""

    say: Callable[[str], None]
    killed: list[str] = field(default_factory=list)


def _stop(child: Child, stops: Stops) -> None:
    """SIGINT, wait up to the grace, else SIGKILL; then say how it went."""
    started = time.monotonic()
    if child.proc.poll() is None:
        child.proc.send_signal(signal.SIGINT)
        try:
            child.proc.wait(timeout=child.grace)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
    code, seconds = child.proc.returncode, time.monotonic() - started
    how = f"exit {code}"
    if code == -signal.SIGKILL:
        how = f"killed: still running {child.grace:.0f} s after SIGINT"
        stops.killed.append(child.name)
    stops.say(f"  stopped {child.name}: {how}, {seconds:.1f} s (log: {_short(child.log)})")
    log.info("stopped", process=child.name, code=code, seconds=round(seconds, 2))


def _short(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _spawn(
    name: str, args: list[str], env: dict[str, str], stack: ExitStack, stops: Stops
) -> Child:
    log_path = RUN_DIR / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
    )
    child = Child(name, proc, log_path)
    stack.callback(_stop, child, stops)
    return child


def _embedded_broker(port: int, stack: ExitStack, stops: Stops) -> EmbeddedBroker:
    """A memory-only broker (on ``port`` when free, else any free port), stopped last."""
    free = port and not _busy(port)
    broker = EmbeddedBroker(port=port if free else None, log_path=RUN_DIR / "broker.log")
    broker.start()

    def stop() -> None:
        started = time.monotonic()
        broker.stop()
        stops.say(
            f"  stopped broker: {time.monotonic() - started:.1f} s (its topics were in memory)"
        )

    stack.callback(stop)
    log.info("embedded broker started (memory only)", brokers=broker.bootstrap)
    return broker


def _progress(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM rtep.events), (SELECT count(*) FROM rtep.rejected_events),"
            " (SELECT count(*) FROM rtep.sessions), (SELECT count(*) FROM rtep.alerts)"
        ).fetchone()
    assert row is not None
    return dict(zip(("events", "rejected", "sessions", "alerts"), map(int, row), strict=True))


class LatestAlerts:
    """The newest alerts of this run from PostgreSQL; a failed read keeps the last answer."""

    def __init__(self, dsn: str, since: datetime) -> None:
        self.dsn, self.since = dsn, since
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._last: tuple[AlertRow, ...] = ()

    def read(self) -> tuple[AlertRow, ...]:
        """Up to LATEST_ALERTS alerts raised since the run started, newest first."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
            rows = self._conn.execute(
                "SELECT rule, severity, subject, created_at FROM rtep.alerts"
                " WHERE created_at >= %s ORDER BY created_at DESC LIMIT %s",
                (self.since, LATEST_ALERTS),
            ).fetchall()
        except psycopg.Error as exc:
            log.warning("latest alerts not read", error=str(exc).strip())
            self.close()
            return self._last
        self._last = tuple(AlertRow(*row) for row in rows)
        return self._last

    def close(self) -> None:
        """Close the connection (the next read opens one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _watch(
    screen: Screen,
    stop: threading.Event,
    *,
    deadline: float | None,
    children: list[Child],
    metrics_port: int,
    alerts: LatestAlerts,
) -> Child | None:
    """Redraw the console every second until Ctrl-C, the deadline, or a child exits (returned)."""
    rates = Rates()
    started = time.monotonic()
    with screen:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for child in children:
                if child.proc.poll() is not None:
                    return child
            now = time.monotonic()
            sample = scrape(metrics_port, now)
            if sample is not None:
                rates.add(sample)
            latest = alerts.read() if sample is not None else ()
            in_rate, stored_rate = rates.per_second("consumed"), rates.per_second("stored")
            screen.show(View(now - started, sample, in_rate, stored_rate, latest))
            stop.wait(1.0)  # refresh interval; Ctrl-C sets the event and ends the wait
    return None


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def run(
    rate: float,
    users: int,
    duration: float | None,
    *,
    broker_port: int = 9092,
    out: TextIO | None = None,
) -> int:
    """Start everything, show the console until Ctrl-C (or ``duration``), then stop in order."""
    settings = get_settings()
    RUN_DIR.mkdir(exist_ok=True)
    log_to_file(RUN_DIR / "run.log")
    screen = Screen(out or sys.stdout)
    stop = threading.Event()

    def _interrupt(_sig: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    dsn = settings.database_url.get_secret_value()
    screen.say(
        f"rtep run: PostgreSQL {_redact(dsn)}, Redis {_redact(settings.redis_url.get_secret_value())}"
    )
    ensure_database(dsn)
    migrate(dsn)  # before anything queries the tables (rtep serve would, but later)
    check_redis(settings.redis_url.get_secret_value())
    env = dict(os.environ)
    env.setdefault("RTEP_RECOVERY_DIR", str(RUN_DIR / "recovery"))
    metrics_port = settings.metrics_port
    if not metrics_port or _busy(metrics_port):
        metrics_port = free_port()
    env["RTEP_METRICS_PORT"] = str(metrics_port)
    since = datetime.now(UTC)
    alerts = LatestAlerts(dsn, since)
    stops = Stops(screen.say)
    with ExitStack() as stack:
        stack.callback(alerts.close)
        if "RTEP_KAFKA_BROKERS" not in os.environ:
            broker = _embedded_broker(broker_port, stack, stops)
            env["RTEP_KAFKA_BROKERS"] = broker.bootstrap
            screen.say(f"rtep run: embedded broker on {broker.bootstrap} (memory only)")
            # a fresh broker has no topics: stale offsets in an old recovery store would skip data
            shutil.rmtree(env["RTEP_RECOVERY_DIR"], ignore_errors=True)
        pipeline = _spawn("pipeline", ["-m", "rtep.commands.serve"], env, stack, stops)
        # The simulator's timeline starts ATTACK_FREE_LEAD back (sent at once, then real time):
        # its chunks hold no attack in their first minutes, and a newcomer should see one now.
        lead = (datetime.now(UTC) - timedelta(seconds=ATTACK_FREE_LEAD)).isoformat()
        sim_args = ["-m", "sim", "--count", "0", "--rate", str(rate), "--users", str(users)]
        sim_args += ["--seed", str(int(time.time())), "--attack-share", "0.02"]
        sim_args += ["--malformed-share", "0.01", "--start", lead]
        sim = _spawn("simulator", sim_args, env, stack, stops)
        prometheus = start_prometheus(metrics_port, stack, stops)
        screen.say(where_to_look(dsn, metrics_port, prometheus, settings.redis_prefix))
        deadline = time.monotonic() + duration if duration else None
        failed = _watch(
            screen,
            stop,
            deadline=deadline,
            children=[pipeline, sim],
            metrics_port=metrics_port,
            alerts=alerts,
        )
        if failed is not None:
            screen.say(
                f"rtep run: {failed.name} exited with {failed.proc.returncode}; the end of "
                f"{_short(failed.log)}:\n{_tail(failed.log)}"
            )
        screen.say("stopping: Prometheus, simulator, pipeline, then the broker")
    totals = _progress(dsn)
    log.info("stopped", **totals)
    if failed is not None:
        return 1
    if stops.killed:
        screen.say(f"stopped, but had to kill: {', '.join(stops.killed)} (see their logs)")
        return 1
    screen.say(
        "stopped cleanly. In PostgreSQL now: "
        + ", ".join(f"{count:,} {what}" for what, count in totals.items())
    )
    return 0


def where_to_look(dsn: str, metrics_port: int, prometheus: str | None, prefix: str) -> str:
    """The block printed once at start: queries, URLs and log files to look at."""
    lines = [
        "",
        "rtep is running. Where to look:",
        f"  events:     psql '{_redact(dsn)}' -c 'SELECT type, count(*) FROM rtep.events GROUP BY 1'",  # noqa: S608 - a printed hint
        f"  alerts:     psql '{_redact(dsn)}' -c 'SELECT rule, subject, event_count FROM rtep.alerts'",  # noqa: S608 - a printed hint
        f"  metrics:    http://127.0.0.1:{metrics_port}/metrics",
        f"  redis:      redis-cli --scan --pattern '{prefix}*' | head",
        f"  logs:       {_short(RUN_DIR)}/pipeline.log, simulator.log, broker.log, run.log",
    ]
    if prometheus:
        lines.append(
            f"  prometheus: {prometheus}/graph?g0.expr=rate(rtep_events_consumed_total[1m])"
        )
    else:
        lines.append("  prometheus: not installed (make test-deps installs it)")
    lines.append("Press Ctrl-C to stop.\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "python -m rtep.commands.run") -> int:
    """Entry point of ``make run`` and ``rtep run``."""
    parser = command_parser(
        prog,
        __doc__,
        settings_help(
            "kafka_brokers",
            "database_url",
            "redis_url",
            "metrics_port",
            "recovery_dir",
            note="RTEP_KAFKA_BROKERS unset: an embedded broker (memory only) is started",
        ),
        f"{prog}                          # 200 events/s, 5,000 users, until Ctrl-C",
        f"{prog} --rate 1000 --duration 60",
        f"RTEP_KAFKA_BROKERS=kafka:9092 {prog}",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="simulated events per second")
    parser.add_argument("--users", type=int, default=5000, help="simulated users")
    parser.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    parser.add_argument(
        "--broker-port",
        type=int,
        default=9092,
        help="port of the embedded broker (when RTEP_KAFKA_BROKERS is unset); taken: any free "
        "one; 0: any free one",
    )
    args = parser.parse_args(argv)
    try:
        return run(args.rate, args.users, args.duration, broker_port=args.broker_port)
    except SetupError as exc:
        log.error(str(exc))
        print(f"rtep run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
