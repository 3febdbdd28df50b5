"""Every dashboard and alert query against a real Prometheus scraping a real pipeline run.

Scenario: the pipeline (``python -m rtep.commands.serve``) consumes a simulator run with attacks and malformed
events while a real Prometheus (apt binary, 1 s scrapes, the production recording rules) scrapes its
/metrics; a second, short run has no attacks.
We expect: every PromQL query of every panel, recording rule and alert rule returns data; the
failed-login and critical-detection alert rules cross their thresholds in the attack run and stay
below them in the benign run; every PostgreSQL panel query runs on the run's database and returns rows.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rtep.core.embedded import EmbeddedBroker, free_port
from tests.harness import (
    Stack,
    fresh_database,
    provision_topics,
    redis_prefix,
    stop_process,
    wait_until,
)
from tests.observability.artifacts import (
    EXPRESSION_UID,
    Query,
    alert_rules,
    expand_sql_macros,
    promql_queries,
    sql_queries,
)
from tests.observability.prometheus import MISSING, PROMETHEUS, Prometheus, running_prometheus

pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason=MISSING)

# The attack run compresses 10 min of event time (the shortest span with incidents) into ~12 s;
# the benign run is real time.
ATTACK_SIM = ("--rate", "500", "--count", "6000", "--users", "200", "--seed", "11", "--span", "600",
              "--attack-share", "0.05", "--malformed-share", "0.03")  # fmt: skip
BENIGN_SIM = ("--rate", "500", "--count", "2500", "--users", "1000", "--seed", "12",
              "--attack-share", "0", "--malformed-share", "0")  # fmt: skip
ALERTS_UNDER_TEST = ("rtep-failed-login-spike", "rtep-critical-detection")


@dataclass
class Run:
    """A finished pipeline run: its stack (database), the Prometheus that scraped it, and when."""

    stack: Stack
    prometheus: Prometheus
    started: float
    at: float  # evaluation time: all input consumed and (if they ever did) all queries had data


def _empty_queries(prometheus: Prometheus, at: float) -> list[Query]:
    return [q for q in promql_queries() if not prometheus.query(q.text, at)]


def now() -> float:
    """Wall-clock unix time, the time axis of Prometheus queries."""
    return time.time()


def _wait_for(
    stack: Stack, proc: subprocess.Popen[bytes], condition: Callable[[], bool], what: str
) -> None:
    """Poll ``condition`` while the pipeline runs; on failure show the pipeline's log."""

    def check() -> bool:
        assert proc.poll() is None, f"pipeline exited with {proc.returncode}"
        return condition()

    try:
        wait_until(check, timeout=60, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.pipeline_log()}") from None


@contextlib.contextmanager
def pipeline_run(
    broker: EmbeddedBroker, workdir: Path, sim_args: tuple[str, ...], settle: bool
) -> Iterator[Run]:
    """Run the pipeline on ``sim_args`` under a scraping Prometheus; stop the pipeline, keep the data.

    With ``settle``, also wait (bounded) until every PromQL query has data.
    """
    count = int(sim_args[sim_args.index("--count") + 1])
    with fresh_database() as dsn, redis_prefix() as prefix:
        topics = provision_topics(broker.bootstrap)
        stack = Stack(broker.bootstrap, dsn, prefix, topics, workdir)
        port = free_port()
        with running_prometheus(f"127.0.0.1:{port}", workdir / "prometheus") as prometheus:
            started = now()
            proc = stack.start_pipeline(RTEP_METRICS_PORT=str(port))
            try:
                # A first scrape before any input: counters start from a sample at 0.
                _wait_for(
                    stack,
                    proc,
                    lambda: prometheus.value("rtep_events_consumed_total", now()) == 0,
                    "the first scrape of the pipeline",
                )
                stack.run_sim(*sim_args)
                _wait_for(
                    stack,
                    proc,
                    lambda: (
                        (prometheus.value("sum(rtep_events_consumed_total)", now()) or 0) >= count
                    ),
                    f"the pipeline to consume {count} messages",
                )
                # Rules and rates catch up within a few 1 s evaluations; a query that stays empty
                # is reported by the test, not here.
                with contextlib.suppress(AssertionError):
                    if settle:
                        wait_until(lambda: not _empty_queries(prometheus, now()), timeout=15)
                at = now()
            finally:
                stop_process(proc)
            yield Run(stack, prometheus, started, at)


@pytest.fixture(scope="module")
def attack_run(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One run with attacks and malformed events, shared by the assertions of this module."""
    with pipeline_run(broker, tmp_path_factory.mktemp("attack"), ATTACK_SIM, settle=True) as run:
        yield run


@pytest.fixture(scope="module")
def benign_run(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """A short run without attacks or malformed events."""
    with pipeline_run(broker, tmp_path_factory.mktemp("benign"), BENIGN_SIM, settle=False) as run:
        yield run


def test_every_promql_query_returns_data(attack_run: Run) -> None:
    """No panel, recording rule or alert query is empty: each names real series and labels."""
    empty = _empty_queries(attack_run.prometheus, attack_run.at)
    assert empty == [], "queries without data:\n" + "\n".join(f"{q.where}: {q.text}" for q in empty)


def _crossings(rule: dict[str, Any], run: Run) -> list[float]:
    """The values of the rule's query, over the whole run, that cross its threshold."""
    data = {d["refId"]: d for d in rule["data"]}
    condition = data[rule["condition"]]["model"]
    assert condition["type"] == "threshold", rule["uid"]
    reduce = data[condition["expression"]]["model"]
    assert (reduce["type"], reduce["reducer"]) == ("reduce", "last"), rule["uid"]
    query = data[reduce["expression"]]
    assert query["datasourceUid"] != EXPRESSION_UID, rule["uid"]
    evaluator = condition["conditions"][0]["evaluator"]
    kind, params = evaluator["type"], evaluator["params"]
    tests = {
        "gt": lambda v: v > params[0],
        "lt": lambda v: v < params[0],
        "within_range": lambda v: params[0] < v < params[1],
        "outside_range": lambda v: v < params[0] or v > params[1],
    }
    series = run.prometheus.query_range(query["model"]["expr"], run.started, run.at)
    values = [float(v) for s in series for _, v in s["values"]]
    return [v for v in values if v == v and tests[kind](v)]  # v == v drops NaN (mode dropNN)


@pytest.mark.parametrize("uid", ALERTS_UNDER_TEST)
def test_security_alert_fires_during_attacks(attack_run: Run, uid: str) -> None:
    """The alert's query crosses its threshold at some point of the attack run."""
    (rule,) = [r for r in alert_rules() if r["uid"] == uid]
    assert _crossings(rule, attack_run), f"{uid} never crossed its threshold during attacks"


@pytest.mark.parametrize("uid", ALERTS_UNDER_TEST)
def test_security_alert_quiet_without_attacks(benign_run: Run, uid: str) -> None:
    """Without attacks the alert's query never crosses its threshold."""
    (rule,) = [r for r in alert_rules() if r["uid"] == uid]
    assert _crossings(rule, benign_run) == [], f"{uid} crossed its threshold without attacks"


def test_postgres_panel_queries_run(attack_run: Run) -> None:
    """Every PostgreSQL panel query, macros expanded to the run's time range, returns rows;
    time-series queries return a ``time`` column first."""
    start = datetime.fromtimestamp(attack_run.started, UTC) - timedelta(hours=1)
    end = datetime.fromtimestamp(attack_run.at, UTC) + timedelta(hours=1)
    for query in sql_queries():
        sql = expand_sql_macros(query.text, start, end)
        with psycopg.connect(attack_run.stack.dsn) as conn:
            cursor = conn.execute(sql)
            rows = cursor.fetchall()
            columns = [c.name for c in cursor.description or []]
        assert rows, f"{query.where}: no rows\n{sql}"
        if query.fmt == "time_series":
            assert columns[0] == "time", f"{query.where}: first column {columns[0]}"
