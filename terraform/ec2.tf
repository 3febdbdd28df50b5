# The host: Ubuntu 24.04 LTS (AMI id from Canonical's public SSM parameter), IMDSv2 only,
# encrypted gp3 root volume, no key pair (Session Manager instead of SSH).

data "aws_ssm_parameter" "ubuntu_ami" {
  name = "/aws/service/canonical/ubuntu/server/24.04/stable/current/${var.architecture}/hvm/ebs-gp3/ami-id"
}

resource "aws_instance" "host" {
  # checkov:skip=CKV_AWS_88: the public address serves Grafana to grafana_allowed_cidrs only (security group) and gives egress without a NAT gateway ($30+/month); set associate_public_ip = false with an existing private subnet.
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
  })

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # 2 hops: containers on the Docker bridge can reach IMDSv2 (the awslogs driver runs on the host).
    http_put_response_hop_limit = 2
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    delete_on_termination = true
  }

  tags = { Name = var.name }

  lifecycle {
    # A newer AMI must not replace the host (its data volumes live on the root volume).
    ignore_changes = [ami, user_data]
  }

  depends_on = [aws_ssm_parameter.config, aws_ssm_parameter.env, aws_ssm_parameter.image]
}
