# The host: Ubuntu 24.04 LTS (AMI id from Canonical's public SSM parameter), IMDSv2 only with a hop
# limit of 1, encrypted gp3 root volume, no key pair (Session Manager instead of SSH). PostgreSQL's
# data lives on its own volume (data_volume.tf), which outlives the instance.

data "aws_ssm_parameter" "ubuntu_ami" {
  name = "/aws/service/canonical/ubuntu/server/24.04/stable/current/${var.architecture}/hvm/ebs-gp3/ami-id"
}

resource "aws_instance" "host" {
  # checkov:skip=CKV_AWS_88: the public address only gives egress without a NAT gateway ($30+/month); the security group admits no inbound traffic at all. Set associate_public_ip = false with an existing private subnet.
  ami                         = data.aws_ssm_parameter.ubuntu_ami.value
  instance_type               = var.instance_type
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.host.id]
  iam_instance_profile        = aws_iam_instance_profile.host.name
  associate_public_ip_address = var.associate_public_ip
  monitoring                  = true
  ebs_optimized               = true

  user_data = templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
    ssm_prefix               = "/${var.name}"
    region                   = var.region
    log_group                = aws_cloudwatch_log_group.containers.name
    registry_token_parameter = var.registry_token_parameter == null ? "" : var.registry_token_parameter
    sync_script_b64          = filebase64("${path.module}/templates/rtep-sync.sh")
    data_volume_script_b64   = filebase64("${path.module}/templates/rtep-data-volume.sh")
    data_volume_id           = aws_ebs_volume.postgres.id
    data_mount_point         = local.postgres_mount_point
    image_repository         = local.image_repository
  })

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # 1 hop: only processes on the host (SSM agent, rtep-sync, dockerd's awslogs driver) reach the
    # instance role; a container's request crosses the Docker bridge (a second hop) and gets nothing.
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  # Docker images and the rebuildable state (Kafka, Redis, the recovery store, Prometheus, Grafana):
  # lost with the instance, see docs/deploy.md "What survives the host".
  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    delete_on_termination = true
  }

  tags = { Name = var.name }

  lifecycle {
    # A newer AMI must not replace the host by surprise (Kafka and the recovery store live on the
    # root volume); replace it on purpose with `terraform apply -replace=aws_instance.host`.
    ignore_changes = [ami, user_data]
  }

  depends_on = [aws_ssm_parameter.config, aws_ssm_parameter.env, aws_ssm_parameter.image]
}
