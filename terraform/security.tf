# Inbound: Grafana from the allow-list only. No SSH: shell access goes through SSM Session Manager.
resource "aws_security_group" "host" {
  name        = "${var.name}-host"
  description = "rtep host: Grafana from an allow-list, no SSH"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.name}-host" }
}

resource "aws_vpc_security_group_ingress_rule" "grafana" {
  for_each          = toset(var.grafana_allowed_cidrs)
  security_group_id = aws_security_group.host.id
  description       = "Grafana from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.grafana_port
  to_port           = var.grafana_port
  cidr_ipv4         = each.value
}

# Egress: HTTPS (SSM, CloudWatch, container registries, snap) and HTTP (Ubuntu package mirrors).
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.host.id
  description       = "HTTPS to AWS APIs and container registries"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "http" {
  security_group_id = aws_security_group.host.id
  description       = "HTTP to Ubuntu package mirrors"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}
