"""``make run`` as a new user runs it: events flow within a minute, Ctrl-C stops everything."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT, fresh_database, redis_prefix, rtep_run_env, wait_until


def test_make_run_flows_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """Scenario: the main job on embedded defaults (no RTEP_KAFKA_BROKERS, empty database), then Ctrl-C.

    We expect: rows in rtep.events within 60 s, then a clean stop (exit 0) of the simulator,
    dataflow and embedded broker, with "stopped cleanly" logged.
    """
    with fresh_database(migrated=False) as dsn, redis_prefix() as prefix:
        env = rtep_run_env(dsn, prefix, tmp_path)
        out = (tmp_path / "run.log").open("w+b")
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtep.commands.run", "--rate", "100", "--users", "1000", "--broker-port", "0"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            import psycopg

            def events() -> int:
                try:
                    with psycopg.connect(dsn) as conn:
                        row = conn.execute("SELECT count(*) FROM rtep.events").fetchone()
                except psycopg.errors.UndefinedTable:  # make run has not migrated yet
                    return 0
                return int(row[0]) if row else 0

            wait_until(lambda: proc.poll() is None and events() > 0, timeout=60, what="events")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        log = Path(out.name).read_text()
        assert "rtep is running. Where to look" in log
        assert "stopped cleanly" in log, log[-3000:]
