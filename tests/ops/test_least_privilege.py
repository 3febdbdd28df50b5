"""Least privilege: no secret in the plan's reach, no instance role in containers, Grafana on
loopback, and a read-only PostgreSQL role for everything that only reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import errors

from rtep.commands.migrate import migrate, migration_files
from tests.harness import fresh_database
from tests.integration.private_servers import private_postgres
from tests.ops.terraform_model import TERRAFORM, github_subject, instance
from tests.ops.validators import ROOT, compose_model
from tests.ops.workflows import condition, step, workflow

# --- the pull-request plan: no fork, no secret in reach ------------------------------------------


def test_pull_request_plan_runs_for_this_repository_only_without_refresh() -> None:
    terraform_workflow = workflow("terraform.yml")
    assert set(terraform_workflow["on"]) == {"pull_request"}, "never pull_request_target"
    plan = terraform_workflow["jobs"]["plan"]
    assert condition(plan) == (
        "vars.AWS_PLAN_ROLE_ARN != ''"
        " && github.event.pull_request.head.repo.full_name == github.repository"
    )
    assert "-refresh=false" in step(plan, "terraform plan")["run"]
    assert "id-token" not in terraform_workflow["jobs"]["check"].get("permissions", {})


def test_state_and_outputs_hold_no_secret(hcl: dict[str, Any]) -> None:
    """Passwords are ephemeral and written through a write-only argument: never in state or plan."""
    assert "random_password" not in hcl["resource"], "a random_password resource lives in state"
    assert set(hcl["ephemeral"]["random_password"]) >= {"postgres", "postgres_readonly"}
    env = hcl["resource"]["aws_ssm_parameter"]["env"]
    assert "value" not in env and env["type"] == "SecureString"
    assert "ephemeral.random_password.postgres.result" in env["value_wo"]
    assert "value_wo_version" in env
    for name, output in hcl["output"].items():
        value = str(output["value"])
        for leak in (
            "nonsensitive(",
            "ephemeral.",
            "random_password",
            "aws_ssm_parameter.env.value",
        ):
            assert leak not in value, f"output {name} can print a secret ({leak})"
    sensitive = {n for n, v in hcl["variable"].items() if v.get("sensitive")}
    for name, output in hcl["output"].items():
        assert not any(f"var.{v}" in str(output["value"]) for v in sensitive), name


def test_plan_role_reads_the_state_and_is_denied_the_stack_secrets(hcl: dict[str, Any]) -> None:
    documents = hcl["data"]["aws_iam_policy_document"]
    assert github_subject(hcl, "plan") == "repo:${var.github_repository}:pull_request"
    statements = {s["sid"]: s for s in documents["plan"]["statement"]}
    allowed = {a for s in statements.values() if s.get("effect") != "Deny" for a in s["actions"]}
    assert allowed == {
        "s3:GetObject",
        "s3:ListBucket",
        "ssm:GetParameter",
        "iam:GetOpenIDConnectProvider",
        "ec2:DescribeSubnets",
    }
    assert statements["PublicAmiParameter"]["resources"] == [
        "arn:${data.aws_partition.current.partition}:ssm:${var.region}::parameter/aws/service/canonical/*"
    ]
    deny_parameters = statements["NoStackSecrets"]
    assert deny_parameters["effect"] == "Deny"
    assert deny_parameters["resources"] == ["${local.stack_parameters}"]
    assert {"ssm:GetParameter", "ssm:GetParametersByPath"} <= set(deny_parameters["actions"])
    assert statements["NoDecryptThroughSsm"]["effect"] == "Deny"


# --- least privilege on the host ------------------------------------------------------------------


def test_containers_get_no_instance_credentials(hcl: dict[str, Any]) -> None:
    (metadata,) = instance(hcl)["metadata_options"]
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 1


def test_grafana_listens_on_loopback_only() -> None:
    (port,) = compose_model()["services"]["grafana"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "3000", 3000)
    parameters = (TERRAFORM / "parameters.tf").read_text()
    assert "GRAFANA_BIND" not in parameters


def test_grafana_and_the_exporter_read_postgres_as_the_readonly_role() -> None:
    services = compose_model()["services"]
    exporter = services["postgres-exporter"]["environment"]
    assert exporter["DATA_SOURCE_USER"] == "rtep_readonly"
    assert exporter["DATA_SOURCE_PASS"] == "change-me-three"  # POSTGRES_READONLY_PASSWORD
    provisioning = ROOT / "ops" / "grafana" / "provisioning" / "datasources" / "datasources.yml"
    datasources = yaml.safe_load(provisioning.read_text())["datasources"]
    (postgres,) = [d for d in datasources if d["type"] == "grafana-postgresql-datasource"]
    assert postgres["user"] == "rtep_readonly"
    assert postgres["secureJsonData"]["password"] == "$POSTGRES_READONLY_PASSWORD"
    grafana = services["grafana"]["environment"]
    assert "POSTGRES_PASSWORD" not in grafana, "Grafana never holds the application's password"
    assert grafana["POSTGRES_READONLY_PASSWORD"] == "change-me-three"


def test_the_application_role_is_not_the_superuser() -> None:
    services = compose_model()["services"]
    postgres = services["postgres"]["environment"]
    assert postgres["POSTGRES_USER"] == "postgres", "the image makes POSTGRES_USER a superuser"
    assert postgres["POSTGRES_PASSWORD"] == "change-me-too"  # POSTGRES_ADMIN_PASSWORD
    assert services["rtep"]["environment"]["RTEP_DATABASE_URL"].startswith("postgresql://rtep:")
    mounts = {v["target"]: v["source"] for v in services["postgres"]["volumes"]}
    initdb = ROOT / "ops" / "postgres" / "initdb"
    assert mounts["/docker-entrypoint-initdb.d"] == str(initdb)
    roles = (initdb / "10-rtep-roles.sh").read_text()
    assert re.search(r"CREATE ROLE rtep LOGIN PASSWORD :'app_password' NOSUPERUSER", roles)
    assert "ALTER DATABASE rtep OWNER TO rtep;" in roles
    assert re.search(r"CREATE ROLE rtep_readonly LOGIN PASSWORD :'readonly_password'", roles)


def test_the_readonly_role_is_created_by_the_next_migration() -> None:
    migrations = sorted(p.name for p in (ROOT / "sql").glob("*.sql"))
    assert migrations[:2] == ["001_core_tables.sql", "002_readonly_role.sql"]
    sql = (ROOT / "sql" / "002_readonly_role.sql").read_text()
    assert "CREATE ROLE rtep_readonly LOGIN NOSUPERUSER" in sql


def test_readonly_role_reads_and_can_do_nothing_else() -> None:
    """Scenario: someone with a Grafana login writes SQL against the PostgreSQL datasource.

    We expect: as rtep_readonly, SELECT and the server statistics work; writes, DDL and
    COPY ... TO PROGRAM (a superuser's shell on the database host) are refused.
    """
    with fresh_database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        roles = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'rtep_readonly'")
        assert roles.fetchall() == [(False,)]
        conn.execute("SET ROLE rtep_readonly")
        assert conn.execute("SELECT count(*) FROM rtep.events").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM rtep.alerts").fetchone() == (0,)
        conn.execute("SELECT * FROM pg_stat_activity")  # what postgres-exporter reads
        refused = [
            "INSERT INTO rtep.event_counts_minute VALUES (now(), 'login', 1, 1)",
            "DELETE FROM rtep.events",
            "CREATE TABLE rtep.x (i int)",
            "COPY (SELECT 1) TO PROGRAM 'true'",
            "ALTER ROLE rtep_readonly SUPERUSER",
        ]
        for statement in refused:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_initdb_roles_let_the_application_migrate_without_superuser() -> None:
    """Scenario: a new EC2 host initialises PostgreSQL, then rtep migrates as its own role.

    We expect: ops/postgres/initdb/10-rtep-roles.sh (as the image runs it, as the superuser) makes
    `rtep` a non-superuser that owns the database; every migration, 002's grants included, runs as
    `rtep`; `rtep_readonly` then logs in, reads, and is refused any write.
    """
    with private_postgres() as server:
        admin = server.dsn
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE rtep")  # the image's POSTGRES_DB, before initdb.d
        script = ROOT / "ops" / "postgres" / "initdb" / "10-rtep-roles.sh"
        env = {
            "PATH": os.environ["PATH"],
            "PGHOST": "127.0.0.1",
            "PGPORT": str(server.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "rtep",
            "RTEP_APP_PASSWORD": "app-secret",
            "RTEP_READONLY_PASSWORD": "readonly-secret",
        }
        result = subprocess.run(
            ["bash", "-c", f"source {script}"], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        app = f"postgresql://rtep@127.0.0.1:{server.port}/rtep"
        assert migrate(app) == [version for version, _ in migration_files()]
        with psycopg.connect(app) as conn:
            row = conn.execute(
                "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = 'rtep'"
            )
            assert row.fetchone() == (False, False)
        readonly = f"postgresql://rtep_readonly@127.0.0.1:{server.port}/rtep"
        with psycopg.connect(readonly, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM rtep.sessions").fetchone() == (0,)
            conn.execute("SELECT * FROM pg_stat_database")
            with pytest.raises(errors.ReadOnlySqlTransaction):
                conn.execute("DELETE FROM rtep.sessions")


def test_deploy_role_may_run_only_the_deploy_document(hcl: dict[str, Any]) -> None:
    statements = hcl["data"]["aws_iam_policy_document"]["deploy"]["statement"]
    (policy,) = [s for s in statements if "ssm:SendCommand" in s["actions"]]
    assert policy["resources"] == ["${aws_instance.host.arn}", "${aws_ssm_document.deploy.arn}"]
    document = hcl["resource"]["aws_ssm_document"]["deploy"]
    assert document["document_type"] == "Command"
    assert "systemctl reload-or-restart rtep.service" in document["content"]
    assert "parameters" not in document["content"], "no parameters: nothing to inject"
    granted = json.dumps(hcl["data"]["aws_iam_policy_document"])
    assert "AWS-RunShellScript" not in granted, "no role may send free-form shell to the host"
    assert github_subject(hcl, "deploy") == "repo:${var.github_repository}:environment:production"
