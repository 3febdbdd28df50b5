"""Data that survives the host: PostgreSQL on its own encrypted volume, kept when the instance
goes, snapshotted daily, mounted before Docker starts (what Kafka and Redis lose: docs/deploy.md)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.ops.terraform_model import TERRAFORM, instance
from tests.ops.validators import compose_model


def test_postgres_data_volume_is_encrypted_and_kept(hcl: dict[str, Any]) -> None:
    volume = hcl["resource"]["aws_ebs_volume"]["postgres"]
    assert volume["encrypted"] is True and volume["type"] == "gp3"
    (lifecycle,) = volume["lifecycle"]
    assert lifecycle["prevent_destroy"] is True
    attachment = hcl["resource"]["aws_volume_attachment"]["postgres"]
    assert attachment["volume_id"] == "${aws_ebs_volume.postgres.id}"
    assert attachment["instance_id"] == "${aws_instance.host.id}"
    # Not a block device of the instance: those default to delete_on_termination = true.
    assert "ebs_block_device" not in instance(hcl)


def test_dlm_snapshots_the_postgres_volume_daily(hcl: dict[str, Any]) -> None:
    policy = hcl["resource"]["aws_dlm_lifecycle_policy"]["postgres"]
    assert policy["state"] == "ENABLED"
    (details,) = policy["policy_details"]
    assert details["resource_types"] == ["VOLUME"]
    # The policy targets the volume by tag: the volume carries the same tags.
    assert details["target_tags"] == "${local.snapshot_tag}"
    volume = hcl["resource"]["aws_ebs_volume"]["postgres"]
    assert "local.snapshot_tag" in volume["tags"]
    (schedule,) = details["schedule"]
    (create,) = schedule["create_rule"]
    assert (create["interval"], create["interval_unit"]) == (24, "HOURS")
    (retain,) = schedule["retain_rule"]
    assert retain["count"] == "${var.snapshot_retention_count}"
    role = hcl["resource"]["aws_iam_role_policy_attachment"]["dlm"]
    assert role["policy_arn"].endswith("service-role/AWSDataLifecycleManagerServiceRole")


def test_host_mounts_the_data_volume_before_docker_starts() -> None:
    template = (TERRAFORM / "templates" / "cloud-init.yaml.tftpl").read_text()
    cloud = yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"X\1", template))
    files = {f["path"]: f for f in cloud["write_files"]}
    dropin = files["/etc/systemd/system/docker.service.d/rtep-data-volume.conf"]["content"]
    assert "RequiresMountsFor=Xdata_mount_point" in dropin
    runcmd = cloud["runcmd"]
    mount = runcmd.index("/usr/local/bin/rtep-data-volume Xdata_volume_id Xdata_mount_point")
    assert mount < runcmd.index("systemctl restart docker")
    assert "RTEP_POSTGRES_DATA=Xdata_mount_point/data" in files["/etc/rtep/rtep.conf"]["content"]
    sync = (TERRAFORM / "templates" / "rtep-sync.sh").read_text()
    assert 'echo "POSTGRES_DATA=${RTEP_POSTGRES_DATA}"' in sync


def test_postgres_data_goes_where_postgres_data_says() -> None:
    """On EC2 POSTGRES_DATA names a directory of the data volume; locally a named volume."""
    target = "/var/lib/postgresql/data"

    def source(model: dict[str, Any]) -> tuple[str, str]:
        (mount,) = [v for v in model["services"]["postgres"]["volumes"] if v["target"] == target]
        return mount["type"], mount["source"]

    assert source(compose_model()) == ("volume", "postgres-data")
    on_host = compose_model(POSTGRES_DATA="/var/lib/rtep-postgres/data")
    assert source(on_host) == ("bind", "/var/lib/rtep-postgres/data")
