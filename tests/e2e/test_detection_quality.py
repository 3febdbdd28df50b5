"""Simulator with labelled attacks → pipeline → sim.score: every incident found, no false alert;
the sessions table agrees with sessions rebuilt from the stream by the reference definition."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from operators.records import Event, Source
from operators.validation import Limits, validate_message
from sim.score import main as score_main
from tests.harness import Stack, read_topic, stop_process, wait_until
from tests.unit.session_oracle import reference_sessions

N = 30_000
THRESHOLD_RULES = "failed_login_burst,credential_stuffing,brute_force_success"


def test_detection_quality_and_sessions(stack: Stack, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Scenario: 30,000 simulated events with 2% injected attacks (seed 42), through the pipeline.

    We expect: sim.score reports precision 1.0 and recall 1.0 for the threshold rules, and the
    rtep.sessions rows equal the sessions the reference definition builds from the same stream
    (ids, bounds, counts, page views; ended_by for sessions closed by logout).
    """
    labels = tmp_path / "labels.jsonl"
    stack.run_sim(
        "--count", str(N), "--rate", "0", "--users", "1000", "--seed", "42",
        "--attack-share", "0.02", "--labels", str(labels),
    )  # fmt: skip
    now = datetime.now(UTC)
    events = [
        e
        for r in read_topic(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"])
        if isinstance(
            e := validate_message(r.value, Source("t", r.partition, r.offset), now, now, Limits()),
            Event,
        )
    ]
    assert len(events) == N
    expected = {s.session_id: s for s in reference_sessions(events, gap=timedelta(seconds=1800))}

    # lateness covers the event-time skew between partitions read from a backlog
    pipeline = stack.start_pipeline(RTEP_ALLOWED_LATENESS_SECONDS="900")
    try:
        wait_until(
            lambda: (
                pipeline.poll() is None
                and stack.scalar("SELECT count(*) FROM rtep.events") == N
                and stack.scalar("SELECT coalesce(sum(event_count), 0) FROM rtep.sessions") == N
            ),
            timeout=300,
            what="every event stored and counted in a session",
        )
        rows = stack.query(
            "SELECT session_id, user_id, started_at, last_event_at, event_count, page_views, ended_by"
            " FROM rtep.sessions"
        )
        stored = {r[0]: r for r in rows}
        assert set(stored) == set(expected)
        for sid, (_, user, started, last, count, views, ended_by) in stored.items():
            ref = expected[sid]
            assert (user, started, last, count, views) == (
                ref.user_id, ref.started_at, ref.last_event_at, ref.event_count, ref.page_views,
            ), sid  # fmt: skip
            assert ended_by in (None, ref.ended_by), sid
            if ref.ended_by == "logout":
                assert ended_by == "logout", sid

        monkeypatch.setenv("RTEP_DATABASE_URL", stack.dsn)
        summary = json.loads(labels.read_text().splitlines()[-1])
        assert summary["kind"] == "summary" and all(
            summary["injected_incidents_by_rule"].get(rule, 0) > 0
            for rule in THRESHOLD_RULES.split(",")
        )
        wait_until(
            lambda: score_main(
                ["--labels", str(labels), "--rules", THRESHOLD_RULES,
                 "--min-precision", "1", "--min-recall", "1"]
            ) == 0,
            timeout=60,
            what="every labelled incident to be detected with no false alert",
        )  # fmt: skip
    finally:
        stop_process(pipeline)
