"""sim.score against real rtep.alerts rows: matching, precision, recall, latency, exit code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sim import score

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def incident(
    rule: str, subject: str, start_s: float, end_s: float, sent_s: float
) -> dict[str, Any]:
    first, last = T0 + timedelta(seconds=start_s), T0 + timedelta(seconds=end_s)
    return {
        "kind": "incident", "rule": rule, "subject_type": "ip" if "." in subject else "user",
        "subject": subject, "first_event_id": "a", "last_event_id": "b",
        "first_ts": _iso(first), "last_ts": _iso(last), "threshold_event_id": "b",
        "threshold_ts": _iso(last), "injected": True,
        "threshold_sent_at": _iso(T0 + timedelta(seconds=sent_s)),
    }  # fmt: skip


def insert_alert(
    dsn: str, rule: str, subject: str, start_s: float, end_s: float, created_s: float
) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO rtep.alerts (alert_id, rule, severity, subject_type, subject, window_start,"
            " window_end, event_count, created_at) VALUES (%s, %s, 'warning', 'user', %s, %s, %s, 5, %s)",
            (f"{rule}-{subject}-{start_s}", rule, subject, T0 + timedelta(seconds=start_s),
             T0 + timedelta(seconds=end_s), T0 + timedelta(seconds=created_s)),
        )  # fmt: skip


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    records = [
        incident("failed_login_burst", "user-1", 0, 30, 20),
        incident("failed_login_burst", "user-2", 100, 140, 130),
        incident("failed_login_burst", "user-3", 200, 220, 210),  # missed
        incident("credential_stuffing", "45.1.2.3", 0, 200, 150),
        {"kind": "summary", "first_ts": _iso(T0), "last_ts": _iso(T0 + timedelta(seconds=600))},
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_scores_match_alerts_to_incidents(
    database: str, labels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: 3 burst incidents, 2 detected (one late alert), 1 false alert on another user,
    1 stuffing incident detected, an old alert outside the run. We expect: burst precision 2/3,
    recall 2/3, latency p50 from threshold_sent_at; stuffing 1.0/1.0; exit 1 under --min-recall 1."""
    insert_alert(database, "failed_login_burst", "user-1", 0, 30, 21.5)
    insert_alert(database, "failed_login_burst", "user-2", 110, 150, 133)
    insert_alert(database, "failed_login_burst", "user-9", 300, 320, 321)  # no incident
    insert_alert(database, "credential_stuffing", "45.1.2.3", 10, 190, 151)
    insert_alert(database, "failed_login_burst", "user-1", -90_000, -89_990, -89_990)  # older run

    assert score.main(["--labels", str(labels), "--database-url", database, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_rule = {r["rule"]: r for r in out["rules"]}
    burst = by_rule["failed_login_burst"]
    assert (burst["incidents"], burst["detected"], burst["alerts"]) == (3, 2, 3)
    assert burst["precision"] == pytest.approx(2 / 3)
    assert burst["recall"] == pytest.approx(2 / 3)
    assert burst["latency_p50_s"] == pytest.approx(1.5)
    assert burst["latency_p99_s"] == pytest.approx(3.0)
    stuffing = by_rule["credential_stuffing"]
    assert (stuffing["precision"], stuffing["recall"]) == (1.0, 1.0)

    code = score.main(
        ["--labels", str(labels), "--database-url", database, "--min-recall", "1",
         "--rules", "failed_login_burst,credential_stuffing"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "failed_login_burst: recall 0.667 < 1.0" in captured.err
    assert "credential_stuffing" in captured.out
    assert score.main(
        ["--labels", str(labels), "--database-url", database, "--min-recall", "1",
         "--min-precision", "1", "--rules", "credential_stuffing"]
    ) == 0  # fmt: skip


def test_alerts_on_decoys_are_counted_per_population(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: a traveller (listed twice, as an endless run repeats decoys), a NAT user and the
    NAT address; an impossible_travel alert on the traveller, a new_country_login alert on them
    (a rule they may fire), a password_spraying alert on the NAT address, and an impossible
    travel incident detected on another user.

    We expect: decoy alerts {nat: 1, traveller: 1}; the travel rule still has recall 1.0 (the
    decoy alert is a false alert: precision 1/2); exit 1 only under --max-decoy-alerts 1 or less."""
    decoy = {"kind": "decoy", "subject_type": "user", "rules": ["impossible_travel"]}
    records = [
        incident("impossible_travel", "user-5", 0, 300, 300),
        {**decoy, "population": "traveller", "subject": "user-7"},
        {**decoy, "population": "traveller", "subject": "user-7"},
        {**decoy, "population": "nat", "subject": "user-8"},
        {"kind": "decoy", "population": "nat", "subject_type": "ip", "subject": "81.2.69.160",
         "rules": ["password_spraying", "credential_stuffing"]},
        {"kind": "summary", "first_ts": _iso(T0), "last_ts": _iso(T0 + timedelta(seconds=600))},
    ]  # fmt: skip
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    insert_alert(database, "impossible_travel", "user-5", 0, 300, 300.5)
    insert_alert(database, "impossible_travel", "user-7", 100, 200, 201)
    insert_alert(database, "new_country_login", "user-7", 200, 200, 201)
    insert_alert(database, "password_spraying", "81.2.69.160", 10, 400, 401)

    args = ["--labels", str(path), "--database-url", database, "--rules", "impossible_travel"]
    assert score.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decoy_alerts"] == {"nat": 1, "traveller": 1}
    (travel,) = out["rules"]
    assert (travel["recall"], travel["precision"]) == (1.0, 0.5)
    assert score.main([*args, "--max-decoy-alerts", "2"]) == 0
    assert "alerts on decoys: 2 (nat: 1) (traveller: 1)" in capsys.readouterr().out
    assert score.main([*args, "--max-decoy-alerts", "1"]) == 1
    assert "alerts on decoys" in capsys.readouterr().err
