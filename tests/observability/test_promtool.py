"""promtool on the Prometheus files: config and rules valid, recording-rule unit tests pass, and every
PromQL expression of every dashboard panel, recording rule and alert rule parses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.observability.artifacts import PROMETHEUS_DIR, promql_queries, recording_rule_files
from tests.observability.prometheus import MISSING, PROMTOOL, promtool

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason=MISSING)


def test_config_is_valid() -> None:
    """Scrape config and the rule files it references load (promtool follows rule_files)."""
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rtep" in (PROMETHEUS_DIR / "prometheus.yml").read_text()


def test_rule_files_are_valid() -> None:
    """Every rule file prometheus.yml loads passes ``promtool check rules``."""
    files = recording_rule_files()
    assert files, "prometheus.yml loads no rule files"
    result = promtool("check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


def test_recording_rule_unit_tests_pass() -> None:
    """ops/prometheus/tests/*.yml (promtool test rules) pass and cover every recording rule."""
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    result = promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["expr"].split("{")[0]
        for path in tests
        for group in yaml.safe_load(path.read_text())["tests"]
        for case in group.get("promql_expr_test", [])
    }
    recorded = {
        rule["record"]
        for path in recording_rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    assert recorded <= tested, f"recording rules without a unit test: {sorted(recorded - tested)}"


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    """Each dashboard, recording-rule and alert query, wrapped as a recording rule, passes promtool."""
    queries = promql_queries()
    assert len(queries) >= 20
    wrapped = {
        "groups": [
            {
                "name": "parse-check",
                "rules": [
                    {"record": f"check:query_{i}", "expr": q.text} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(wrapped))
    result = promtool("check", "rules", str(path))
    listing = "\n".join(f"check:query_{i}: {q.where}" for i, q in enumerate(queries))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{listing}"
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout
