# Instance profile: SSM (Session Manager + Run Command), registry pull, CloudWatch logs,
# and read access to this stack's own SSM parameters.

# Trust policies of the roles AWS services assume: the instance (ec2) and the snapshots (dlm).
data "aws_iam_policy_document" "service_assume" {
  for_each = toset(["ec2", "dlm"])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "host" {
  name               = "${var.name}-host"
  assume_role_policy = data.aws_iam_policy_document.service_assume["ec2"].json
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.host.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy_attachment" "ecr_read" {
  role       = aws_iam_role.host.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
}

locals {
  # Every SSM parameter of this stack (/<name>/...): the host reads them, the plan role may not.
  stack_parameters = "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter/${var.name}/*"
}

data "aws_iam_policy_document" "host" {
  statement {
    sid       = "ContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.containers.arn}:*"]
  }

  statement {
    sid     = "StackParameters"
    actions = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
    resources = concat(
      [local.stack_parameters],
      var.registry_token_parameter == null ? [] : [
        "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(var.registry_token_parameter, "/")}"
      ],
    )
  }
}

resource "aws_iam_role_policy" "host" {
  name   = "rtep-host"
  role   = aws_iam_role.host.id
  policy = data.aws_iam_policy_document.host.json
}

resource "aws_iam_instance_profile" "host" {
  name = "${var.name}-host"
  role = aws_iam_role.host.name
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

# Every container's stdout/stderr (Docker's awslogs driver, set in user data).
resource "aws_cloudwatch_log_group" "containers" {
  # checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts at rest with an AWS-owned key; the logs hold no secrets (rtep never logs credentials).
  name              = "/${var.name}/containers"
  retention_in_days = var.log_retention_days
}
