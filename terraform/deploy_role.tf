# GitHub Actions deploy role (OIDC): only the repository's `production` environment (required
# reviewers) may assume it. It may set the image parameter and run one fixed SSM document on this
# host (re-sync and restart rtep), nothing else: no AWS-RunShellScript, so no free-form shell.

locals {
  create_deploy_role = var.github_repository != ""
  github_oidc_url    = "token.actions.githubusercontent.com"
}

resource "aws_iam_openid_connect_provider" "github" {
  count          = local.create_deploy_role && var.create_github_oidc_provider ? 1 : 0
  url            = "https://${local.github_oidc_url}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_openid_connect_provider" "github" {
  count = local.create_deploy_role && !var.create_github_oidc_provider ? 1 : 0
  url   = "https://${local.github_oidc_url}"
}

locals {
  github_oidc_arn = !local.create_deploy_role ? "" : (
    var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
  )
}

# The GitHub OIDC subject each role trusts: the production environment (deploy.yml, behind required
# reviewers) and this repository's pull requests (the read-only plan role, plan_role.tf).
locals {
  github_role_subjects = merge(
    local.create_deploy_role ? { deploy = "repo:${var.github_repository}:environment:production" } : {},
    local.create_plan_role ? { plan = "repo:${var.github_repository}:pull_request" } : {},
  )
}

data "aws_iam_policy_document" "github_assume" {
  for_each = local.github_role_subjects
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_url}:sub"
      values   = [each.value]
    }
  }
}

resource "aws_iam_role" "deploy" {
  count              = local.create_deploy_role ? 1 : 0
  name               = "${var.name}-github-deploy"
  assume_role_policy = data.aws_iam_policy_document.github_assume["deploy"].json
}

data "aws_iam_policy_document" "deploy" {
  count = local.create_deploy_role ? 1 : 0

  statement {
    sid       = "SetImage"
    actions   = ["ssm:GetParameter", "ssm:PutParameter"]
    resources = [aws_ssm_parameter.image.arn]
  }

  statement {
    sid       = "RunOnHost"
    actions   = ["ssm:SendCommand"]
    resources = [aws_instance.host.arn, aws_ssm_document.deploy.arn]
  }

  statement {
    sid = "FollowCommand"
    # GetCommandInvocation and ListCommandInvocations do not support resource-level permissions.
    actions   = ["ssm:GetCommandInvocation", "ssm:ListCommandInvocations"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "deploy" {
  count  = local.create_deploy_role ? 1 : 0
  name   = "rtep-deploy"
  role   = aws_iam_role.deploy[0].id
  policy = data.aws_iam_policy_document.deploy[0].json
}

# The only command the deploy role can run on the host: it takes no parameters.
resource "aws_ssm_document" "deploy" {
  name            = "${var.name}-deploy"
  document_type   = "Command"
  document_format = "YAML"
  content = yamlencode({
    schemaVersion = "2.2"
    description   = "Re-sync rtep from SSM Parameter Store, pull the images and restart what changed."
    mainSteps = [{
      action = "aws:runShellScript"
      name   = "reloadRtep"
      inputs = {
        runCommand     = ["systemctl reload-or-restart rtep.service"]
        timeoutSeconds = "900"
      }
    }]
  })
}
