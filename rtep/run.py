"""``make run``: the main job on embedded defaults, for a new user on a fresh machine.

simulator → Kafka (embedded Tansu broker unless RTEP_KAFKA_BROKERS is set) → dataflow →
PostgreSQL / Redis, with /metrics served (and a local Prometheus when its binary is installed).
Creates the database if missing, prints where to look, shows progress, stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from rtep.cli import command_parser
from rtep.embedded import EmbeddedBroker, free_port
from rtep.logs import get_logger
from rtep.migrate import migrate
from rtep.settings import get_settings, settings_help

log = get_logger("rtep.run")
ROOT = Path(__file__).resolve().parent.parent
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


def start_prometheus(metrics_port: int, stack: ExitStack) -> str | None:
    """A local Prometheus on loopback scraping the pipeline, when the binary is installed."""
    binary = shutil.which("prometheus")
    if not binary:
        log.info("prometheus not installed: skipping it (`apt-get install prometheus` to graph)")
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
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(RUN_DIR / "prometheus.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    stack.callback(_stop, proc, "prometheus")
    return f"http://127.0.0.1:{port}"


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.info("stopped", process=name, code=proc.returncode)


def _spawn(
    args: list[str], env: dict[str, str], name: str, stack: ExitStack
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        stdout=(RUN_DIR / f"{name}.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
    )
    stack.callback(_stop, proc, name)
    return proc


def _progress(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM rtep.events), (SELECT count(*) FROM rtep.rejected_events),"
            " (SELECT count(*) FROM rtep.sessions), (SELECT count(*) FROM rtep.alerts)"
        ).fetchone()
    assert row is not None
    return dict(zip(("events", "rejected", "sessions", "alerts"), map(int, row), strict=True))


def run(rate: float, users: int, duration: float | None) -> int:
    """Start everything, report progress until Ctrl-C (or ``duration``), then stop in order."""
    settings = get_settings()
    dsn = settings.database_url.get_secret_value()
    ensure_database(dsn)
    migrate(dsn)  # before anything queries the tables (rtep.serve would, but later)
    check_redis(settings.redis_url.get_secret_value())
    RUN_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("RTEP_RECOVERY_DIR", str(RUN_DIR / "recovery"))
    metrics_port = settings.metrics_port or free_port()
    env["RTEP_METRICS_PORT"] = str(metrics_port)
    stopping = False

    def _interrupt(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with ExitStack() as stack:
        if "RTEP_KAFKA_BROKERS" not in os.environ:
            broker = EmbeddedBroker(
                port=9092 if not _busy(9092) else None, log_path=RUN_DIR / "broker.log"
            )
            stack.enter_context(broker)
            env["RTEP_KAFKA_BROKERS"] = broker.bootstrap
            log.info("embedded broker started (memory only)", brokers=broker.bootstrap)
            # a fresh broker has no topics: stale offsets in an old recovery store would skip data
            shutil.rmtree(env["RTEP_RECOVERY_DIR"], ignore_errors=True)
        pipeline = _spawn(["-m", "rtep.serve"], env, "pipeline", stack)
        sim_args = ["-m", "sim", "--count", "0", "--rate", str(rate), "--users", str(users)]
        sim_args += [
            "--seed",
            str(int(time.time())),
            "--attack-share",
            "0.02",
            "--malformed-share",
            "0.01",
        ]
        sim = _spawn(sim_args, env, "sim", stack)
        prometheus = start_prometheus(metrics_port, stack)
        _print_where_to_look(dsn, metrics_port, prometheus, settings.redis_prefix)
        deadline = time.monotonic() + duration if duration else None
        next_report = 0.0
        while not stopping and (deadline is None or time.monotonic() < deadline):
            for proc, name in ((pipeline, "pipeline"), (sim, "sim")):
                if proc.poll() is not None:
                    log.error(
                        f"{name} exited", code=proc.returncode, log=str(RUN_DIR / f"{name}.log")
                    )
                    return 1
            if time.monotonic() >= next_report:
                log.info("progress", **_progress(dsn))
                next_report = time.monotonic() + 5
            time.sleep(0.5)  # supervisor poll interval
        log.info("stopping: Prometheus, simulator, pipeline, then the broker")
    log.info("stopped cleanly", **_progress(dsn))
    return 0


def _print_where_to_look(dsn: str, metrics_port: int, prometheus: str | None, prefix: str) -> None:
    lines = [
        "",
        "rtep is running. Where to look:",
        f"  events:    psql '{_redact(dsn)}' -c 'SELECT type, count(*) FROM rtep.events GROUP BY 1'",  # noqa: S608 - a printed hint
        f"  alerts:    psql '{_redact(dsn)}' -c 'SELECT rule, subject, event_count FROM rtep.alerts'",  # noqa: S608 - a printed hint
        f"  metrics:   http://127.0.0.1:{metrics_port}/metrics",
        f"  redis:     redis-cli --scan --pattern '{prefix}*' | head",
        f"  logs:      {RUN_DIR}/pipeline.log, {RUN_DIR}/sim.log",
    ]
    if prometheus:
        lines.append(
            f"  prometheus: {prometheus}/graph?g0.expr=rate(rtep_events_consumed_total[1m])"
        )
    lines.append("Press Ctrl-C to stop.\n")
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None, prog: str = "python -m rtep.run") -> int:
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
    args = parser.parse_args(argv)
    try:
        return run(args.rate, args.users, args.duration)
    except SetupError as exc:
        log.error(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
