# Inbound: nothing. Shell access and Grafana go through SSM Session Manager (port forwarding to
# Grafana on the host's loopback, docs/deploy.md), so no port is open to any network.
resource "aws_security_group" "host" {
  name        = "${var.name}-host"
  description = "rtep host: no inbound traffic (SSM Session Manager only)"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.name}-host" }
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
