# What the host reads at every start (see templates/rtep-sync.sh):
#   /<name>/config/<path>  the ops/ files compose needs (gzip + base64, one parameter each)
#   /<name>/env            the compose .env with generated secrets (SecureString)
#   /<name>/image          the image to run (the deploy workflow overwrites it)

locals {
  ops_dir = "${path.module}/../ops"
  config_files = toset(concat(
    ["compose.yaml"],
    [for f in fileset(local.ops_dir, "prometheus/**") : f],
    [for f in fileset(local.ops_dir, "grafana/**") : f],
  ))
}

resource "aws_ssm_parameter" "config" {
  # checkov:skip=CKV2_AWS_34: configuration files, not secrets (the secrets live in /<name>/env, a SecureString).
  for_each = local.config_files
  name     = "/${var.name}/config/${each.value}"
  type     = "String"
  # Advanced tier: up to 8 KB per value; gzip keeps dashboards well below it.
  tier  = "Advanced"
  value = base64gzip(file("${local.ops_dir}/${each.value}"))

  lifecycle {
    precondition {
      condition     = length(base64gzip(file("${local.ops_dir}/${each.value}"))) <= 8192
      error_message = "ops/${each.value} is too large for one SSM parameter even compressed (8 KB)."
    }
  }
}

resource "random_password" "postgres" {
  length  = 32
  special = false
}

resource "random_password" "redis" {
  length  = 32
  special = false
}

resource "random_password" "grafana" {
  length  = 24
  special = false
}

resource "aws_ssm_parameter" "env" {
  # checkov:skip=CKV_AWS_337: encrypted with the AWS-managed aws/ssm key; a customer-managed KMS key adds $1/month and key administration for three generated passwords.
  name = "/${var.name}/env"
  type = "SecureString"
  value = join("\n", concat([
    "POSTGRES_PASSWORD=${random_password.postgres.result}",
    "REDIS_PASSWORD=${random_password.redis.result}",
    "GRAFANA_ADMIN_PASSWORD=${random_password.grafana.result}",
    "GRAFANA_BIND=0.0.0.0",
    ], var.alert_webhook_url == "" ? [] : ["RTEP_ALERT_WEBHOOK_URL=${var.alert_webhook_url}"], [""]
  ))
}

resource "aws_ssm_parameter" "image" {
  # checkov:skip=CKV2_AWS_34: an image reference, not a secret.
  name  = "/${var.name}/image"
  type  = "String"
  value = var.image

  lifecycle {
    # Deploys move the image forward; a later `terraform apply` must not roll it back.
    ignore_changes = [value]
  }
}
