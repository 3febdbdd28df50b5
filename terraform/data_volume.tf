# PostgreSQL's data on its own encrypted EBS volume: it is not the root volume, so terminating or
# replacing the instance leaves it (an aws_volume_attachment is never deleted on termination), and
# prevent_destroy makes Terraform refuse to delete it. Data Lifecycle Manager snapshots it daily;
# docs/deploy.md "Restore the database from a snapshot" says how to bring one back.

locals {
  postgres_mount_point = "/var/lib/rtep-postgres"
  # The volume must sit in the instance's availability zone.
  availability_zone = local.create_network ? aws_subnet.public[0].availability_zone : data.aws_subnet.existing[0].availability_zone
  snapshot_tag      = { "${var.name}-snapshot" = "postgres" }
}

data "aws_subnet" "existing" {
  count = local.create_network ? 0 : 1
  id    = var.subnet_id
}

resource "aws_ebs_volume" "postgres" {
  # checkov:skip=CKV_AWS_189: encrypted with the AWS-managed aws/ebs key; a customer-managed KMS key adds $1/month and key administration, and DLM snapshots inherit the volume's encryption either way.
  availability_zone = local.availability_zone
  type              = "gp3"
  size              = var.postgres_volume_size_gb
  encrypted         = true

  tags = merge({ Name = "${var.name}-postgres" }, local.snapshot_tag)

  lifecycle {
    # Every stored event lives here: `terraform destroy` must fail rather than delete it.
    prevent_destroy = true
  }
}

resource "aws_volume_attachment" "postgres" {
  # /dev/sdf: on Nitro instances the volume shows as an NVMe device named after its volume id,
  # which is how templates/rtep-data-volume.sh finds it.
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.postgres.id
  instance_id = aws_instance.host.id
  # Stop the instance before a detach (a restore swaps volumes) so PostgreSQL is shut down cleanly.
  stop_instance_before_detaching = true
}

# Daily crash-consistent snapshots of every volume tagged <name>-snapshot = postgres (PostgreSQL
# replays its WAL on a restored copy, as after a power cut).
resource "aws_dlm_lifecycle_policy" "postgres" {
  description        = "${var.name} PostgreSQL data volume, daily snapshots"
  execution_role_arn = aws_iam_role.dlm.arn
  state              = "ENABLED"

  policy_details {
    resource_types = ["VOLUME"]
    target_tags    = local.snapshot_tag

    schedule {
      name = "daily"

      create_rule {
        interval      = 24
        interval_unit = "HOURS"
        times         = [var.snapshot_time_utc]
      }

      retain_rule {
        count = var.snapshot_retention_count
      }

      tags_to_add = { SnapshotCreator = "dlm", Project = var.name }
      copy_tags   = true
    }
  }
}

resource "aws_iam_role" "dlm" {
  name               = "${var.name}-dlm"
  assume_role_policy = data.aws_iam_policy_document.service_assume["dlm"].json
}

resource "aws_iam_role_policy_attachment" "dlm" {
  role       = aws_iam_role.dlm.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
}
