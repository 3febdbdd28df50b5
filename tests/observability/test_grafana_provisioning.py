"""Grafana provisioning as code, checked without a Grafana server: JSON schemas written from Grafana's
documented provisioning fields, plus the cross-references Grafana would only report at start-up."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.harness import ROOT
from tests.observability.artifacts import (
    DASHBOARDS,
    EXPRESSION_UID,
    PROVISIONING,
    PROVISIONING_SCHEMAS,
    alert_rules,
    expand_sql_macros,
    load_dashboard,
    load_yaml,
    panel_targets,
    schema,
)

RUNBOOKS = ROOT / "docs" / "runbooks.md"
REQUIRED_ALERTS = {
    "rtep-failed-login-spike",
    "rtep-critical-detection",
    "rtep-dlq-ratio",
    "rtep-consumer-lag-growing",
    "rtep-e2e-latency-p99",
    "rtep-pipeline-down",
}


def _errors(instance: Any, schema_name: str) -> list[str]:
    validator = Draft202012Validator(schema(schema_name))
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def _datasources() -> dict[str, str]:
    """Provisioned datasource uid → type."""
    config = load_yaml(PROVISIONING / "datasources" / "datasources.yml")
    return {ds["uid"]: ds["type"] for ds in config["datasources"]}


def _duplicates(values: list[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


@pytest.mark.parametrize("path", list(PROVISIONING_SCHEMAS), ids=lambda p: p.name)
def test_provisioning_file_matches_schema(path: Path) -> None:
    """Each provisioning file has exactly the fields Grafana reads, with valid values."""
    assert _errors(load_yaml(path), PROVISIONING_SCHEMAS[path]) == []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_matches_schema(path: Path) -> None:
    """Each dashboard has a uid, panels with a datasource and Prometheus or SQL targets."""
    assert _errors(load_dashboard(path), "dashboard.schema.json") == []


def test_schemas_reject_broken_files() -> None:
    """The schemas are not vacuous: a rule without condition or a bad noDataState is refused."""
    broken = load_yaml(PROVISIONING / "alerting" / "rules.yml")
    rule = broken["groups"][0]["rules"][0]
    del rule["condition"]
    rule["noDataState"] = "Sometimes"
    errors = _errors(broken, "alert-rules.schema.json")
    assert any("'condition' is a required property" in e for e in errors)
    assert any("Sometimes" in e for e in errors)


def test_expected_dashboards_and_alerts_exist() -> None:
    """The three dashboards and the six alert rules of the observability issue are provisioned."""
    assert {p.stem for p in DASHBOARDS} == {"pipeline-health", "user-activity", "security"}
    assert {rule["uid"] for rule in alert_rules()} == REQUIRED_ALERTS


def test_datasource_uids_exist_and_types_match() -> None:
    """Panels, targets and alert queries name provisioned datasources, with the right type."""
    provisioned = _datasources()
    assert {"rtep-prometheus", "rtep-postgres"} <= set(provisioned)
    refs: list[tuple[str, dict[str, str]]] = []
    for path in DASHBOARDS:
        for panel in load_dashboard(path)["panels"]:
            refs.append((f"{path.name} / {panel['title']}", panel["datasource"]))
    refs.extend((where, target["datasource"]) for where, target in panel_targets())
    for where, ref in refs:
        assert provisioned.get(ref["uid"]) == ref["type"], f"{where}: unknown datasource {ref}"
    for rule in alert_rules():
        for data in rule["data"]:
            uid = data["datasourceUid"]
            assert uid == EXPRESSION_UID or uid in provisioned, f"{rule['uid']}: datasource {uid}"


def test_alert_rule_conditions_and_references() -> None:
    """condition names one of the rule's refIds; expressions read existing refIds; refIds unique."""
    for rule in alert_rules():
        ref_ids = [data["refId"] for data in rule["data"]]
        assert _duplicates(ref_ids) == [], rule["uid"]
        assert rule["condition"] in ref_ids, f"{rule['uid']}: condition {rule['condition']}"
        for data in rule["data"]:
            assert data["model"]["refId"] == data["refId"], rule["uid"]
            if data["datasourceUid"] == EXPRESSION_UID:
                assert data["model"]["expression"] in ref_ids, f"{rule['uid']}/{data['refId']}"


def test_uids_are_unique() -> None:
    """Rule, dashboard, datasource and receiver uids are unique; panel ids unique per dashboard."""
    rule_uids = [rule["uid"] for rule in alert_rules()]
    boards = [load_dashboard(path) for path in DASHBOARDS]
    contact_points = load_yaml(PROVISIONING / "alerting" / "contact-points.yml")["contactPoints"]
    receivers = [r["uid"] for cp in contact_points for r in cp["receivers"]]
    datasources = [
        ds["uid"]
        for ds in load_yaml(PROVISIONING / "datasources" / "datasources.yml")["datasources"]
    ]
    for uids in (rule_uids, [b["uid"] for b in boards], receivers, datasources):
        assert _duplicates(uids) == []
    for board in boards:
        assert _duplicates([p["id"] for p in board["panels"]]) == [], board["uid"]
        for panel in board["panels"]:
            assert _duplicates([t["refId"] for t in panel["targets"]]) == [], panel["title"]


def test_policies_route_to_provisioned_contact_points() -> None:
    """Every receiver of the notification policy tree is a provisioned contact point."""
    contact_points = load_yaml(PROVISIONING / "alerting" / "contact-points.yml")["contactPoints"]
    names = {cp["name"] for cp in contact_points}

    def receivers(route: dict[str, Any]) -> set[str]:
        own = {route["receiver"]} if "receiver" in route else set()
        return own.union(*(receivers(child) for child in route.get("routes", [])))

    policies = load_yaml(PROVISIONING / "alerting" / "policies.yml")["policies"]
    for policy in policies:
        assert receivers(policy) <= names


def test_alert_annotations_and_runbooks() -> None:
    """Annotations carry no "$" (Grafana expands env vars in provisioning files) and each
    runbook_url anchor is a section of docs/runbooks.md."""
    text = RUNBOOKS.read_text()
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', text))
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert all("$" not in value for value in annotations.values()), rule["uid"]
        anchor = annotations["runbook_url"].partition("#")[2]
        assert anchor.startswith("runbook-") and anchor in anchors, f"{rule['uid']}: {anchor}"


def test_sql_macro_expansion_mirrors_grafana() -> None:
    """The live SQL test expands macros as Grafana's PostgreSQL datasource does; unknown ones fail."""
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    sql = "SELECT $__timeGroupAlias(ts, '5m'), count(*) FROM t WHERE $__timeFilter(ts) GROUP BY 1"
    assert expand_sql_macros(sql, start, end) == (
        'SELECT floor(extract(epoch from ts)/300)*300 AS "time", count(*) FROM t '
        "WHERE ts BETWEEN '2026-01-01T00:00:00+00:00' AND '2026-01-02T00:00:00+00:00' GROUP BY 1"
    )
    with pytest.raises(ValueError, match="unexpanded"):
        expand_sql_macros("SELECT 1 WHERE $__unixEpochFilter(ts)", start, end)
