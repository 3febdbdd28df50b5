output "instance_id" {
  description = "EC2 instance id (target of `aws ssm start-session` and of the deploy workflow)."
  value       = aws_instance.host.id
}

output "private_ip" {
  description = "Private IPv4 address of the host."
  value       = aws_instance.host.private_ip
}

output "public_ip" {
  description = "Public IPv4 address of the host (empty when associate_public_ip is false)."
  value       = aws_instance.host.public_ip
}

output "grafana_url" {
  description = "Grafana, reachable from grafana_allowed_cidrs."
  value       = "http://${coalesce(aws_instance.host.public_ip, aws_instance.host.private_ip)}:${var.grafana_port}"
}

output "ssm_prefix" {
  description = "SSM Parameter Store path holding the stack's config, .env and image."
  value       = "/${var.name}"
}

output "grafana_admin_password_parameter" {
  description = "SSM parameter whose value holds GRAFANA_ADMIN_PASSWORD (read with --with-decryption)."
  value       = aws_ssm_parameter.env.name
}

output "deploy_role_arn" {
  description = "Role for .github/workflows/deploy.yml (repository variable AWS_DEPLOY_ROLE_ARN); empty without github_repository."
  value       = local.create_deploy_role ? aws_iam_role.deploy[0].arn : ""
}

output "log_group" {
  description = "CloudWatch log group with every container's logs."
  value       = aws_cloudwatch_log_group.containers.name
}
