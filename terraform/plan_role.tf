# Read-only role for `terraform plan` on pull requests (.github/workflows/terraform.yml, repository
# variable AWS_PLAN_ROLE_ARN). Pull-request code is untrusted, so this role reads only what a plan
# with -refresh=false needs: the state object (which holds no secret, see parameters.tf) and the
# data sources. It is denied the stack's SSM parameters and KMS decryption through SSM outright.

locals {
  create_plan_role = local.create_deploy_role && var.terraform_state_bucket != ""
}

resource "aws_iam_role" "plan" {
  count              = local.create_plan_role ? 1 : 0
  name               = "${var.name}-github-plan"
  assume_role_policy = data.aws_iam_policy_document.github_assume["plan"].json
}

data "aws_iam_policy_document" "plan" {
  count = local.create_plan_role ? 1 : 0

  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.terraform_state_bucket}/${var.terraform_state_key}"]
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.terraform_state_bucket}"]
  }

  statement {
    sid       = "PublicAmiParameter"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${var.region}::parameter/aws/service/canonical/*"]
  }

  statement {
    sid       = "OidcProvider"
    actions   = ["iam:GetOpenIDConnectProvider"]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${local.github_oidc_url}"]
  }

  statement {
    sid = "DescribeSubnets"
    # DescribeSubnets has no resource-level permissions.
    actions   = ["ec2:DescribeSubnets"]
    resources = ["*"]
  }

  statement {
    sid       = "NoStackSecrets"
    effect    = "Deny"
    actions   = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory"]
    resources = [local.stack_parameters]
  }

  statement {
    sid       = "NoDecryptThroughSsm"
    effect    = "Deny"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "plan" {
  count  = local.create_plan_role ? 1 : 0
  name   = "rtep-terraform-plan"
  role   = aws_iam_role.plan[0].id
  policy = data.aws_iam_policy_document.plan[0].json
}
