# What the host reads at every start (see templates/rtep-sync.sh):
#   /<name>/config/<path>        the ops/ files compose needs (gzip + base64, one parameter each)
#   /<name>/env                  the compose .env with generated secrets (SecureString)
#   /<name>/image                the image to run (the deploy workflow overwrites it)
#   /<name>/alert-webhook-url    optional, created by hand (SecureString): RTEP_ALERT_WEBHOOK_URL

locals {
  ops_dir = "${path.module}/../ops"
  config_files = toset(concat(
    ["compose.yaml"],
    [for f in fileset(local.ops_dir, "prometheus/**") : f],
    [for f in fileset(local.ops_dir, "grafana/**") : f],
    [for f in fileset(local.ops_dir, "postgres/**") : f],
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

# Passwords: ephemeral values, sent to SSM through a write-only argument, so they are never in the
# Terraform state or plan (the pull-request plan role reads the state; no output can reach them).
# Terraform writes /<name>/env once, when it creates it; later runs generate values they do not
# send (value_wo_version unchanged). Bumping env_version writes new passwords: only for a new,
# empty PostgreSQL volume, since the database keeps the passwords it was initialised with.
ephemeral "random_password" "postgres" {
  length  = 32
  special = false
}

ephemeral "random_password" "postgres_admin" {
  length  = 32
  special = false
}

ephemeral "random_password" "postgres_readonly" {
  length  = 32
  special = false
}

ephemeral "random_password" "redis" {
  length  = 32
  special = false
}

ephemeral "random_password" "grafana" {
  length  = 24
  special = false
}

locals {
  env_version = 1
}

resource "aws_ssm_parameter" "env" {
  # checkov:skip=CKV_AWS_337: encrypted with the AWS-managed aws/ssm key; a customer-managed KMS key adds $1/month and key administration for five generated passwords.
  name = "/${var.name}/env"
  type = "SecureString"
  value_wo = join("\n", [
    "POSTGRES_PASSWORD=${ephemeral.random_password.postgres.result}",
    "POSTGRES_ADMIN_PASSWORD=${ephemeral.random_password.postgres_admin.result}",
    "POSTGRES_READONLY_PASSWORD=${ephemeral.random_password.postgres_readonly.result}",
    "REDIS_PASSWORD=${ephemeral.random_password.redis.result}",
    "GRAFANA_ADMIN_PASSWORD=${ephemeral.random_password.grafana.result}",
    "",
  ])
  value_wo_version = local.env_version
}

locals {
  # The registry path of this repository's images (release.yml pushes there); rtep-sync on the host
  # refuses any other. Empty without github_repository: then any explicit tag or digest runs.
  image_repository = var.github_repository == "" ? "" : "ghcr.io/${lower(var.github_repository)}"
}

resource "aws_ssm_parameter" "image" {
  # checkov:skip=CKV2_AWS_34: an image reference, not a secret.
  name  = "/${var.name}/image"
  type  = "String"
  value = var.image

  lifecycle {
    precondition {
      condition     = local.image_repository == "" || startswith(var.image, "${local.image_repository}:") || startswith(var.image, "${local.image_repository}@")
      error_message = "image must be ghcr.io/<github_repository, lower case>:<tag> or @sha256:<digest>: the host runs only this repository's images."
    }

    # Deploys move the image forward; a later `terraform apply` must not roll it back.
    ignore_changes = [value]
  }
}
