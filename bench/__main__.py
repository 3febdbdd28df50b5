"""``make bench`` (``python -m bench``): rtep against a raw baseline and a peer, in one run.

On one embedded broker: a backlog of simulator events (default mix) is produced once into a
4-partition topic; then each system (``raw``: ``bench.raw``; ``peer``: ``bench.peer_quix``;
``rtep``: ``python -m rtep.commands.serve`` with recovery and metrics on; ``rtep-nogeo``: the
same with ``RTEP_GEOIP_ENABLED=false``, so ``rtep/rtep-nogeo`` is what IP geolocation costs)
consumes it from the start into its own fresh database, and we time it until ``rtep.events``
holds every distinct valid event. Then each system but ``rtep-nogeo`` serves a paced real-time
load (``--rate`` events/s for ``--seconds``) on its own topic and we read end-to-end latency
(``stored_at − ts``) from its table.

Reports (never asserts): ``bench/results/<date>.json``, ``latest.md``, ``latest.png``.
``--rss`` runs the memory-flatness check instead (five 1 M-event steps through rtep; slow);
``--scale 1 2`` the scale-out curve (rtep alone on the backlog as 1, then 2 processes).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import feed, peer_env, report
from bench.processes import Processes
from bench.procstat import BackendSampler, cpu_seconds
from rtep.commands.cli import command_parser
from rtep.core.embedded import EmbeddedBroker, broker_binary, free_port
from rtep.core.kafka_admin import ensure_topics
from tests.harness import ROOT, Stack, fresh_database, redis_prefix

SYSTEMS = ("raw", "peer", "rtep", "rtep-nogeo")
RTEP_VARIANTS: dict[str, dict[str, str]] = {
    "rtep": {},
    "rtep-nogeo": {"RTEP_GEOIP_ENABLED": "false"},
}
"""The rtep systems and the settings each runs with (before ``--rtep-env``)."""
LATENCY_SYSTEMS = ("raw", "peer", "rtep")
STALL_SECONDS = 30.0  # no new row for this long: the system is done (or stuck) below target
REST_SECONDS = 12.0  # RSS at rest: the lowest over this window (> 2 heap-trim intervals)


@dataclass
class Env:
    """The shared broker and what each system run needs to start."""

    broker: EmbeddedBroker
    broker_pid: int
    redis_pid: int | None
    workdir: Path
    redis_prefix: str
    fetch_wait_ms: int
    rtep_env: dict[str, str]


def launch(system: str, env: Env, topic: str, dsn: str, processes: int = 1) -> Processes:
    """Start one system consuming ``topic`` into ``dsn``; the caller stops it.

    rtep runs as ``processes`` processes of one cluster (``-i/-a``) sharing a recovery directory.
    """
    brokers = env.broker.bootstrap
    tag = uuid.uuid4().hex[:8]
    workdir = env.workdir / f"{system}-{tag}"
    workdir.mkdir()
    stack = Stack(brokers, dsn, env.redis_prefix, {"RTEP_EVENTS_TOPIC": topic}, workdir)
    if system in RTEP_VARIANTS:
        topics = {"RTEP_DLQ_TOPIC": f"{topic}.dlq", "RTEP_ALERTS_TOPIC": f"{topic}.alerts"}
        consumer = json.dumps({"fetch.wait.max.ms": str(env.fetch_wait_ms)})
        port = free_port()  # process i serves /metrics on port + i
        settings = {"RTEP_METRICS_PORT": str(port), "RTEP_KAFKA_EXTRA_CONFIG": consumer, **topics}
        settings |= RTEP_VARIANTS[system]
        settings |= env.rtep_env  # --rtep-env overrides
        addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
        procs = [
            stack.start_pipeline(*(["-i", str(i), "-a", addresses] if processes > 1 else []),
                                 **settings)
            for i in range(processes)
        ]  # fmt: skip
        return Processes(procs, [port + i for i in range(processes)])
    python, module = {
        "raw": (str(ROOT / ".venv/bin/python"), "bench.raw"),
        "peer": (peer_env.python(), "bench.peer_quix"),
    }[system]
    args = ["--brokers", brokers, "--topic", topic, "--dsn", dsn, "--group", f"bench-{tag}"]
    args += ["--fetch-wait-ms", str(env.fetch_wait_ms)]
    log = (workdir / "pipeline.log").open("ab")
    proc = subprocess.Popen(
        [python, "-m", module, *args],
        env=stack.env(),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return Processes([proc], [])


def stored(conn: psycopg.Connection[Any]) -> int:
    """Rows in rtep.events."""
    row = conn.execute("SELECT count(*) FROM rtep.events").fetchone()
    return int(row[0]) if row else 0


@dataclass
class Progress:
    """When the first and the last row arrived (monotonic seconds) and how many rows."""

    first: float
    last: float
    rows: int

    def rate(self) -> float:
        """Sustained events/s: rows over the time from the first stored row to the last."""
        return self.rows / max(self.last - self.first, 1e-3)


def wait_stored(
    conn: psycopg.Connection[Any], target: int, procs: Processes, baseline: int = 0
) -> Progress:
    """Poll until ``target`` rows are stored, or no row arrives for ``STALL_SECONDS``."""
    count, now = baseline, time.monotonic()
    progress = Progress(now, now, 0)
    while count < target:
        if (code := procs.exited()) is not None:
            raise RuntimeError(f"the system under test exited early (rc {code})")
        now_count, now = stored(conn), time.monotonic()
        if now_count != count:
            if count == baseline:
                progress.first = now
            count, progress.last = now_count, now
        elif now - progress.last > STALL_SECONDS and count > baseline:
            break
        time.sleep(0.1)  # poll interval
    progress.rows = count - baseline
    return progress


@contextmanager
def measured(
    system: str, env: Env, topic: str, processes: int = 1
) -> Iterator[tuple[str, Processes, Callable[[], dict[str, Any]]]]:
    """A fresh database and the running system; yields (dsn, processes, resource snapshot)."""
    with fresh_database("rtep_bench") as dsn:
        sampler = BackendSampler(dsn).start()
        broker_cpu = cpu_seconds(env.broker_pid) or 0.0
        redis_cpu = (cpu_seconds(env.redis_pid) or 0.0) if env.redis_pid else 0.0
        procs = launch(system, env, topic, dsn, processes)

        def resources() -> dict[str, Any]:
            split = procs.cpu_split()
            return {
                "cpu_s_pipeline": sum(split),
                "cpu_s_by_process": split,
                "cpu_s_postgres": sampler.stop(),
                "cpu_s_broker": (cpu_seconds(env.broker_pid) or 0.0) - broker_cpu,
                "cpu_s_redis": (cpu_seconds(env.redis_pid) or 0.0) - redis_cpu
                if env.redis_pid
                else 0.0,
                "peak_rss_mb": procs.memory_mb("VmHWM"),
                "rss_mb": procs.memory_mb("VmRSS"),
            }

        try:
            yield dsn, procs, resources
        finally:
            sampler.stop()
            procs.stop()


def throughput(
    system: str, env: Env, topic: str, target: int, processes: int = 1
) -> dict[str, Any]:
    """Consume the backlog from the start; events/s until every valid event is stored."""
    began = time.monotonic()
    run = measured(system, env, topic, processes)
    with run as (dsn, procs, resources), psycopg.connect(dsn) as conn:
        conn.autocommit = True
        progress = wait_stored(conn, target, procs)
        res = resources()
        sinks = sink_seconds(procs.metrics_ports)
    rows = progress.rows
    per_k = 1000 / max(rows, 1)
    result = {
        "system": system,
        "processes": processes,
        "target": target,
        "stored": rows,
        "complete": rows == target,
        "seconds_from_start": round(progress.last - began, 2),
        "seconds_first_to_last_row": round(progress.last - progress.first, 2),
        "events_per_s": round(progress.rate()),
        "peak_rss_mb": round(res["peak_rss_mb"], 1),
    }
    for name in ("pipeline", "postgres", "broker", "redis"):
        result[f"cpu_s_per_1k_{name}"] = round(res[f"cpu_s_{name}"] * per_k, 4)
    result["cpu_s_per_1k_by_process"] = [round(cpu * per_k, 4) for cpu in res["cpu_s_by_process"]]
    if sinks:
        result["sink_write_seconds"] = sinks
    print(f"  {system}: {json.dumps(result)}", flush=True)
    return result


def sink_seconds(ports: list[int]) -> dict[str, float]:
    """Seconds rtep spent in each sink's writes (``rtep_sink_write_seconds_sum{sink}``, all processes)."""
    seconds: dict[str, float] = {}
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        found = re.findall(r'^rtep_sink_write_seconds_sum\{sink="([^"]+)"\} (\S+)$', text, re.M)
        for sink, value in found:
            seconds[sink] = round(seconds.get(sink, 0.0) + float(value), 2)
    return seconds


def latency(system: str, env: Env, rate: int, seconds: float) -> dict[str, Any]:
    """Paced real-time load on a fresh topic; p50/p99 of ``stored_at − ts``."""
    topic = f"bench.lat.{system}.{uuid.uuid4().hex[:6]}"
    brokers = env.broker.bootstrap
    ensure_topics(brokers, {topic: 4})
    with measured(system, env, topic) as (dsn, procs, _), psycopg.connect(dsn) as conn:
        conn.autocommit = True
        load = feed.producer(brokers)  # one for both: its start-up is not the system's latency
        warm = feed.produce_paced(load, topic, rate, 2.0, start=10**9)
        wait_stored(conn, warm, procs)  # started, connected, warm
        load_start = time.time()
        sent = feed.produce_paced(load, topic, rate, seconds, start=2 * 10**9)
        rows = warm + wait_stored(conn, warm + sent, procs, baseline=warm).rows
        row = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM stored_at - ts)), count(*) "
            "FROM rtep.events WHERE ts >= to_timestamp(%s)",
            (load_start - 0.001,),
        ).fetchone()
    assert row is not None
    (p50, p99), measured_rows = row[0] or (None, None), row[1]
    result = {
        "system": system,
        "offered_per_s": rate,
        "seconds": seconds,
        "sent": sent,
        "measured": measured_rows,
        "complete": rows == warm + sent,
        "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
    }
    print(f"  {system} latency: {json.dumps(result)}", flush=True)
    return result


@contextmanager
def environment(args: argparse.Namespace) -> Iterator[Env]:
    """A broker, a scratch directory and a Redis prefix, all cleaned up afterwards."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rtep-bench-")))
        broker = stack.enter_context(EmbeddedBroker(log_path=workdir / "broker.log"))
        binary = Path(broker_binary()).name
        pid = next(p.pid for p in psutil.Process().children() if Path(p.exe()).name == binary)
        redis_pid = next(
            (p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"), None
        )
        yield Env(
            broker,
            pid,
            redis_pid,
            workdir,
            stack.enter_context(redis_prefix()),
            args.fetch_wait_ms,
            dict(kv.split("=", 1) for kv in args.rtep_env),
        )


def backlog(env: Env, args: argparse.Namespace, topic: str) -> tuple[str, feed.Expected]:
    """Produce the ``--events`` backlog into a fresh 4-partition topic; (source, expected)."""
    ensure_topics(env.broker.bootstrap, {topic: 4})
    started = time.monotonic()
    source = feed.produce_backlog(env.broker.bootstrap, topic, args.events, args.seed, args.users)
    want = feed.expected(env.broker.bootstrap, topic)
    print(f"backlog: {want} from {source} in {time.monotonic() - started:.1f}s", flush=True)
    return source, want


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Backlog throughput and paced latency for each system; the ratios."""
    systems = list(dict.fromkeys(args.systems))  # in the order given
    with environment(args) as env:
        topic = "bench.backlog"
        source, want = backlog(env, args, topic)
        runs = {
            s: throughput(
                s, env, topic, want.rtep_valid if s in RTEP_VARIANTS else want.checks_valid
            )
            for s in systems
        }
        paced = [s for s in systems if s in LATENCY_SYSTEMS] if args.seconds else []
        lat = {s: latency(s, env, args.rate, args.seconds) for s in paced}
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": report.machine(),
        "input": {"source": source, **want.__dict__, "partitions": 4},
        "consumer_config": {"fetch.wait.max.ms": args.fetch_wait_ms},
        "rtep_env": args.rtep_env,
        "throughput": runs,
        "latency": lat,
        "ratios": report.ratios(runs),
    }


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    """rtep's backlog throughput as 1, 2, … processes of one cluster (``--scale 1 2``)."""
    with environment(args) as env:
        topic = "bench.backlog"
        source, want = backlog(env, args, topic)
        runs = [throughput("rtep", env, topic, want.rtep_valid, n) for n in args.scale]
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": report.machine(),
        "input": {"source": source, **want.__dict__, "partitions": 4},
        "rtep_env": args.rtep_env,
        "scale": runs,
    }


def rss_at_rest(procs: Processes, window: float = REST_SECONDS) -> float:
    """The lowest RSS over ``window`` seconds of idle after a backlog (MiB).

    A reading taken at once depends on when the process last handed freed memory back (every
    5 s, ``rtep.core.memory``); the lowest over a longer window does not.
    """
    lowest = procs.memory_mb("VmRSS")
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        time.sleep(0.5)  # sampling interval of a measurement window
        lowest = min(lowest, procs.memory_mb("VmRSS"))
    return lowest


def run_rss(args: argparse.Namespace) -> dict[str, Any]:
    """rtep's RSS after each of ``--rss-steps`` events (1 M, 2 M, … 5 M) of one user population.

    Each step is produced as one backlog and consumed at full speed, so with equal steps every
    reading is taken under the same conditions and the series shows a trend, if any.
    """
    with environment(args) as env:
        topic = "bench.rss"
        ensure_topics(env.broker.bootstrap, {topic: 4})
        points = []
        with measured("rtep", env, topic) as (dsn, procs, resources), psycopg.connect(dsn) as conn:
            conn.autocommit = True
            spe = 60.0 / args.users  # one event per user per minute of event time
            t0 = time.time() - max(args.rss_steps) * spe - 600
            produced = 0
            for total in args.rss_steps:
                count = total - produced
                timeline = (t0 + produced * spe, count * spe)
                feed.produce_backlog(env.broker.bootstrap, topic, count, args.seed, args.users,
                                     start=produced, timeline=timeline)  # fmt: skip
                wait_stored(conn, total, procs, baseline=produced)
                produced = total
                rows = stored(conn)
                peak = resources()["peak_rss_mb"]
                rest = rss_at_rest(procs)
                points.append(
                    {"events": total, "stored": rows, "rss_mb": round(rest, 1),
                     "peak_rss_mb": round(peak, 1)}
                )  # fmt: skip
                print(f"  rss after {total:,}: {json.dumps(points[-1])}", flush=True)
    first, last = points[0], points[-1]
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": report.machine(),
        "rss": points,
        "rest_seconds": REST_SECONDS,
        "growth": round(last["rss_mb"] / first["rss_mb"] - 1, 3),
        "peak_growth": round(last["peak_rss_mb"] / first["peak_rss_mb"] - 1, 3),
    }


BENCH_SETTINGS = """settings (environment variables):
  RTEP_TEST_ADMIN_DSN=postgresql://postgres@127.0.0.1:5432/postgres
      The PostgreSQL server each system gets a fresh database on.
  RTEP_TEST_REDIS_URL=redis://127.0.0.1:6379/0
      The Redis rtep writes to (under a fresh key prefix).
  rtep's own settings for its run: --rtep-env, e.g. RTEP_KAFKA_BATCH_SIZE=5000 (docs/configuration.md)"""


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> None:
    """Parse arguments, run, write the results."""
    parser = command_parser(
        prog,
        __doc__,
        BENCH_SETTINGS,
        f"{prog}                                   # make bench: 500k backlog + 30 s paced, ~5 min",
        f"{prog} --events 100000 --seconds 0 --systems raw rtep",
        f"{prog} --scale 1 2                       # make bench-scale",
    )
    parser.add_argument("--events", type=int, default=500_000, help="backlog size")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--rate", type=int, default=5000, help="offered load (events/s)")
    parser.add_argument("--seconds", type=float, default=30, help="paced load; 0 skips it")
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=20,
        help="fetch.wait.max.ms for every consumer (the embedded broker holds each fetch this "
        "long even when data is waiting; librdkafka's default 500 adds ~100 ms to every system)",
    )
    parser.add_argument(
        "--rtep-env",
        nargs="*",
        default=[],
        metavar="RTEP_X=V",
        help="settings for the rtep run (experiments), e.g. RTEP_KAFKA_BATCH_SIZE=5000",
    )
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--rss", action="store_true", help="RSS flatness: 1 M then 5 M events")
    parser.add_argument(
        "--rss-steps", type=int, nargs="+", default=[n * 1_000_000 for n in range(1, 6)],
        help="with --rss",
    )  # fmt: skip
    parser.add_argument(
        "--scale", type=int, nargs="+", metavar="N",
        help="scale-out curve instead: rtep's backlog throughput as N processes (-i/-a), e.g. 1 2",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.rss:
        report.write_rss(run_rss(args), args.out)
    elif args.scale:
        report.write_scale(run_scale(args), args.out)
    else:
        report.write(run_all(args), args.out)


if __name__ == "__main__":
    main()
