"""Pure logic of the sinks: backoff bounds, retry decisions, batch reduction, message encoding."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import psycopg
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from operators.erasure import Erase
from operators.records import Reason
from sinks.cache_writes import CacheWrites, Ops
from sinks.kafka import dlq_message, fit
from sinks.pg_tables import EVENTS, carrying_user_id
from sinks.retry import (
    POSTGRES,
    REDIS,
    BackendUnavailable,
    RetryPolicy,
    pg_data_error,
    redis_data_error,
)
from tests.integration.factories import T0, make_event, make_rejection, make_session


@given(attempt=st.integers(1, 10_000), initial=st.floats(0.001, 2), cap=st.floats(0.01, 60))
def test_backoff_stays_within_the_capped_exponential(
    attempt: int, initial: float, cap: float
) -> None:
    policy = RetryPolicy(initial_backoff=initial, max_backoff=cap)
    assert 0 <= policy.delay(attempt) <= min(cap, initial * 2 ** min(attempt - 1, 30))


def test_transient_errors_are_retried_until_success() -> None:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise psycopg.OperationalError("connection refused")
        return "ok"

    policy = RetryPolicy(initial_backoff=0.001, max_backoff=0.001)
    assert policy.call(attempt, backend=POSTGRES, sink="unit") == "ok"
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise psycopg.DataError("value out of range")

    with pytest.raises(psycopg.DataError):
        RetryPolicy().call(attempt, backend=POSTGRES, sink="unit")
    assert len(calls) == 1


def test_giving_up_names_the_backend_and_the_fix() -> None:
    def attempt() -> None:
        raise psycopg.OperationalError("connection refused")

    policy = RetryPolicy(max_retry_seconds=0.05, initial_backoff=0.01, max_backoff=0.01)
    with pytest.raises(BackendUnavailable, match=r"PostgreSQL unavailable.*RTEP_DATABASE_URL"):
        policy.call(attempt, backend=POSTGRES, sink="unit")


_events = st.lists(
    st.builds(
        lambda i, user, seconds, page: make_event(
            i, user_id=user, ts=T0 + timedelta(seconds=seconds), page=page
        ),
        st.integers(0, 50),
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 20),
        st.one_of(st.none(), st.sampled_from(["/x", "/y"])),
    ),
    max_size=40,
)


@given(events=_events)
def test_redis_user_fields_come_from_each_fields_latest_event(events: list) -> None:
    """Each user field holds the value of the latest event by time that had one (the last of
    equal times): the result does not depend on arrival order or batching (catch-up folds
    batches into the same pending writes)."""
    ops = Ops()
    for event in events:
        ops.add(CacheWrites(events=[event]), "rtep:counts:{type}:{minute:%Y%m%d%H%M}")
    for (_, user), fields in ops.items.items():
        mine = [e for e in events if e.user_id == user]
        assert fields["last_seen"] == (max(e.ts for e in mine), None)
        for name, attr in (
            ("last_type", "type"),
            ("last_page", "page"),
            ("session_id", "session_id"),
        ):
            having = [e for e in mine if getattr(e, attr) is not None]
            if having:
                top = max(e.ts for e in having)
                assert fields[name] == (top, [getattr(e, attr) for e in having if e.ts == top][-1])
            else:
                assert name not in fields


def test_an_erase_in_any_kind_forgets_the_users_pending_writes() -> None:
    """An ``Erase`` travels in the events, sessions and alerts lists: wherever it comes, the
    user's pending hash and sessions are dropped and the deletion queued first; writes after it
    stay."""
    count_key = "rtep:counts:{type}:{minute:%Y%m%d%H%M}"
    ops = Ops()
    ops.add(CacheWrites(events=[make_event(1, user_id="u1"), make_event(2, user_id="u2")],
                        sessions=[make_session("s1")]), count_key)  # fmt: skip
    erase = Erase.of("u1", "request-1", T0)
    erase.session_ids = ["s1"]
    ops.add(CacheWrites(sessions=[erase, make_session("s2")]), count_key)
    assert list(ops.items) == [("erase", "u1"), ("user", "u2"), ("session", "s2")]
    assert ops.items[("erase", "u1")] == ("s1",)


@given(ids=st.lists(st.integers(0, 9), max_size=30))
def test_dedupe_keeps_the_last_row_per_key(ids: list[int]) -> None:
    events = [make_event(i, page=f"/n{n}") for n, i in enumerate(ids)]
    rows = EVENTS.dedupe(events)
    last = {e.event_id: e.page for e in events}
    assert {r[0]: r[EVENTS.columns.index("page")] for r in rows} == last
    assert len(rows) == len(last)


@given(raw=st.binary(max_size=300), offset=st.integers(0, 2**62))
def test_dead_letter_value_is_the_original_bytes(raw: bytes, offset: int) -> None:
    key, value, headers = dlq_message(make_rejection(offset, raw, Reason.TOO_LARGE))
    assert key is None and value == raw
    assert dict(headers) == {
        "rtep.reason": b"too_large",
        "rtep.detail": f"bad message at {offset}".encode(),
        "rtep.source.topic": b"t.events",
        "rtep.source.partition": b"0",
        "rtep.source.offset": str(offset).encode(),
    }


@given(size=st.integers(0, 5000), limit=st.integers(2000, 4000))
def test_oversized_dead_letters_are_emptied_with_size_and_digest(size: int, limit: int) -> None:
    message = dlq_message(make_rejection(1, b"x" * size))
    framing = 1024 + sum(len(k) + len(v or b"") for k, v in message[2])
    fitted = fit(message, limit)
    if size + framing <= limit:
        assert fitted == message
    else:
        key, value, headers = fitted
        assert (key, value, headers[: len(message[2])]) == (None, b"", message[2])
        assert dict(headers[len(message[2]) :]) == {
            "rtep.truncated": str(size).encode(),
            "rtep.sha256": hashlib.sha256(b"x" * size).hexdigest(),
        }


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("54000", "data"),  # index row size exceeds the btree maximum (an OperationalError!)
        ("22003", "data"),  # numeric value out of range
        ("22021", "data"),  # invalid byte sequence for encoding
        ("23505", "data"),  # unique violation
        ("23514", "data"),  # check violation
        ("08006", "outage"),  # connection failure
        ("57014", "outage"),  # query canceled: statement_timeout
        ("55P03", "outage"),  # lock_not_available: lock_timeout
        ("25006", "outage"),  # read-only transaction: a failover
        ("53100", "outage"),  # disk full
        ("40P01", "outage"),  # deadlock detected
        ("57P01", "outage"),  # admin shutdown
        ("42P01", "bug"),  # undefined table: a migration not applied
        ("42601", "bug"),  # syntax error
    ],
)
def test_postgres_errors_are_data_outage_or_bug(sqlstate: str, kind: str) -> None:
    """Only unavailability is retried; data errors are isolated; anything else is a bug."""
    exc = psycopg.errors.lookup(sqlstate)("from the server")
    assert pg_data_error(exc) is (kind == "data")
    assert POSTGRES.transient(exc) is (kind == "outage")


def test_a_lost_connection_and_a_value_psycopg_cannot_encode() -> None:
    assert POSTGRES.transient(psycopg.OperationalError("connection refused"))
    assert not pg_data_error(psycopg.OperationalError("connection refused"))
    assert pg_data_error(OverflowError("int too big to convert"))
    assert pg_data_error(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (redis.exceptions.ConnectionError("refused"), "outage"),
        (redis.exceptions.TimeoutError("timed out"), "outage"),
        (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"), "outage"),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "outage"),
        (redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots"), "outage"),
        (redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), "data"),
        (redis.exceptions.ResponseError("ERR wrong number of arguments"), "bug"),
    ],
)  # fmt: skip
def test_redis_errors_are_data_outage_or_bug(error: Exception, kind: str) -> None:
    """A full (OOM) or read-only Redis is an outage of the cache; WRONGTYPE is the data."""
    assert redis_data_error(error) is (kind == "data")
    assert REDIS.transient(error) is (kind == "outage")


@given(st.text(min_size=1, max_size=30), st.booleans(), st.sampled_from([None, (",", ":")]))
def test_a_rejected_message_carrying_a_user_id_is_found_by_its_bytes(
    user: str, ascii_only: bool, separators: tuple[str, str] | None
) -> None:
    """Whatever the id and however a client's JSON writer spaces or escapes it, the erasure's
    byte patterns find ``"userId": <id>`` in the message (and not another user's id)."""
    raw = json.dumps({"type": "login", "payload": {"userId": user, "x": 1}},
                     ensure_ascii=ascii_only, separators=separators).encode()  # fmt: skip
    assert any(pattern in raw for pattern in carrying_user_id(user))
    other = json.dumps({"payload": {"userId": user + "x"}}).encode()
    assert not any(pattern in other for pattern in carrying_user_id(user))
