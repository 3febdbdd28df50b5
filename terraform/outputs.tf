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

output "grafana_tunnel" {
  description = "Grafana listens on the host's loopback only: run this, then open http://127.0.0.1:3000."
  value       = "aws ssm start-session --region ${var.region} --target ${aws_instance.host.id} --document-name AWS-StartPortForwardingSession --parameters portNumber=3000,localPortNumber=3000"
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

output "deploy_document" {
  description = "SSM document the deploy role may run (repository variable RTEP_SSM_DOCUMENT when name is not rtep)."
  value       = aws_ssm_document.deploy.name
}

output "plan_role_arn" {
  description = "Read-only role for the pull-request plan (repository variable AWS_PLAN_ROLE_ARN); empty without terraform_state_bucket."
  value       = local.create_plan_role ? aws_iam_role.plan[0].arn : ""
}

output "postgres_volume_id" {
  description = "EBS volume holding PostgreSQL's data (kept on instance termination, snapshotted daily by DLM)."
  value       = aws_ebs_volume.postgres.id
}

output "log_group" {
  description = "CloudWatch log group with every container's logs."
  value       = aws_cloudwatch_log_group.containers.name
}
