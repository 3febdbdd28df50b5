"""The observability files under ops/, loaded, and every query they contain, with where it lives.

Tests iterate over ``promql_queries()`` and ``sql_queries()``: a panel, recording rule or alert rule
added later is checked without touching the tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.harness import ROOT

PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
GRAFANA_DIR = ROOT / "ops" / "grafana"
PROVISIONING = GRAFANA_DIR / "provisioning"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
ALERT_RULES = PROVISIONING / "alerting" / "rules.yml"
SCHEMAS = Path(__file__).parent / "schemas"
EXPRESSION_UID = "__expr__"

# Each provisioning file and the schema (tests/observability/schemas/) it must satisfy.
PROVISIONING_SCHEMAS = {
    PROVISIONING / "datasources" / "datasources.yml": "datasources.schema.json",
    PROVISIONING / "dashboards" / "dashboards.yml": "dashboard-providers.schema.json",
    ALERT_RULES: "alert-rules.schema.json",
    PROVISIONING / "alerting" / "contact-points.yml": "contact-points.schema.json",
    PROVISIONING / "alerting" / "policies.yml": "policies.schema.json",
}


@dataclass(frozen=True)
class Query:
    """One query and where it is defined (for failure messages)."""

    where: str
    text: str
    fmt: str = ""  # SQL panels: Grafana's result format, "table" or "time_series"


def load_yaml(path: Path) -> Any:
    """Parse one YAML file."""
    return yaml.safe_load(path.read_text())


def load_dashboard(path: Path) -> dict[str, Any]:
    """Parse one dashboard JSON file."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def schema(name: str) -> dict[str, Any]:
    """One JSON schema from tests/observability/schemas/."""
    data: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return data


def alert_rules() -> list[dict[str, Any]]:
    """Every Grafana-managed alert rule, across groups."""
    return [rule for group in load_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]


def recording_rule_files() -> list[Path]:
    """The rule files prometheus.yml loads (its rule_files globs, relative to it)."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    return sorted(path for pattern in config["rule_files"] for path in PROMETHEUS_DIR.glob(pattern))


def panel_targets() -> list[tuple[str, dict[str, Any]]]:
    """(``dashboard / panel / refId``, target) for every target of every dashboard panel."""
    found = []
    for path in DASHBOARDS:
        board = load_dashboard(path)
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((f"{path.name} / {panel['title']} / {target['refId']}", target))
    return found


def promql_queries() -> list[Query]:
    """Every PromQL expression: dashboard panels, recording rules, alert rule queries."""
    queries = [
        Query(where, target["expr"]) for where, target in panel_targets() if "expr" in target
    ]
    for path in recording_rule_files():
        for group in load_yaml(path)["groups"]:
            queries.extend(
                Query(f"{path.name} / {rule['record']}", rule["expr"]) for rule in group["rules"]
            )
    for rule in alert_rules():
        queries.extend(
            Query(f"rules.yml / {rule['title']} / {data['refId']}", data["model"]["expr"])
            for data in rule["data"]
            if data["datasourceUid"] != EXPRESSION_UID
        )
    return queries


def sql_queries() -> list[Query]:
    """Every PostgreSQL panel query of the dashboards."""
    return [
        Query(where, target["rawSql"], target["format"])
        for where, target in panel_targets()
        if "rawSql" in target
    ]


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MACRO = re.compile(
    r"\$__(timeFilter|timeGroupAlias|timeGroup)\(([^,()]+)(?:,\s*'([0-9]+[smhd])')?\)"
)


def expand_sql_macros(sql: str, start: datetime, end: datetime) -> str:
    """Replace Grafana's PostgreSQL macros the way its datasource does, for a concrete time range.

    ``$__timeFilter(c)`` → ``c BETWEEN 'start' AND 'end'``; ``$__timeGroup(c, '5m')`` →
    ``floor(extract(epoch from c)/300)*300``; ``$__timeGroupAlias`` adds ``AS "time"``.
    """

    def expand(match: re.Match[str]) -> str:
        macro, column, interval = match.group(1), match.group(2).strip(), match.group(3)
        if macro == "timeFilter":
            return f"{column} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"
        if interval is None:
            raise ValueError(f"${macro} needs an interval: {match.group(0)}")
        seconds = int(interval[:-1]) * _UNIT_SECONDS[interval[-1]]
        group = f"floor(extract(epoch from {column})/{seconds})*{seconds}"
        return group + (' AS "time"' if macro == "timeGroupAlias" else "")

    expanded = _MACRO.sub(expand, sql)
    if "$" in expanded:
        raise ValueError(f"unexpanded Grafana macro or variable in: {expanded}")
    return expanded
