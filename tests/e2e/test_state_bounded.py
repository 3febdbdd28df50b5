"""Memory stays bounded by active users: closed sessions leave no per-user state behind."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from rtep.core.embedded import free_port
from rtep.core.kafka_admin import ensure_topics
from tests.harness import Stack, event_json, produce, scrape_metric, stop_process, wait_until

USERS = int(os.environ.get("RTEP_TEST_STATE_USERS", "200000"))


def test_closed_sessions_leave_no_user_state(stack: Stack) -> None:
    """Scenario: 200,000 users each send one event (an hour ago), then traffic stops.

    We expect: every session closes by timeout once the shards' watermarks pass it (gap 10 s,
    lateness 5 s, the watermark advancing with idle wall time), and the dataflow's session state
    then holds no user at all: rtep_session_state_users == 0 and rtep_active_sessions == 0 while
    the process keeps running. (new_device_login keeps a device history per user by design,
    bounded by RTEP_NEW_DEVICE_HISTORY_DAYS: that is not session state.)
    """
    start = datetime.now(UTC) - timedelta(hours=1)
    old = [
        event_json(
            "page_view", user=f"user-{i}", ts=(start + timedelta(milliseconds=i)).isoformat()
        )
        for i in range(USERS)
    ]
    # one partition: events arrive in time order, so none is late
    topic = stack.topics["RTEP_EVENTS_TOPIC"] + ".single"
    ensure_topics(stack.brokers, {topic: 1})
    produce(stack.brokers, topic, old)
    port = free_port()
    pipeline = stack.start_pipeline(
        RTEP_EVENTS_TOPIC=topic,
        RTEP_METRICS_PORT=str(port),
        RTEP_SESSION_GAP_SECONDS="10",
        RTEP_ALLOWED_LATENESS_SECONDS="5",
    )
    try:
        wait_until(
            lambda: scrape_metric(port, "rtep_session_state_users") > 0,
            timeout=120,
            what="session state to fill",
        )
        wait_until(
            lambda: (
                pipeline.poll() is None
                and stack.scalar("SELECT count(*) FROM rtep.sessions WHERE ended_by = 'timeout'")
                == USERS
            ),
            timeout=400,
            what="every session to close",
        )
        wait_until(
            lambda: (
                scrape_metric(port, "rtep_session_state_users") == 0
                and scrape_metric(port, "rtep_active_sessions") == 0
            ),
            timeout=60,
            what="session state to empty",
        )
        assert pipeline.poll() is None
        assert stack.scalar("SELECT count(*) FROM rtep.sessions WHERE ended_at IS NULL") == 0
    finally:
        stop_process(pipeline)
