output "replica_private_ips" {
  description = "Private addresses of the three replicas (HTTPS 8443, secure native 9440)."
  value       = aws_instance.replica[*].private_ip
}

output "https_url" {
  description = "ClickHouse HTTPS URL of the first replica, for @clickhouse/client (CLICKHOUSE_URL). Put an internal NLB or DNS name in front for failover."
  value       = "https://${aws_instance.replica[0].private_ip}:8443"
}

output "admin_secret_arn" {
  description = "Secrets Manager ARN of the admin user's credentials (migrations, roles.sql, break-glass)."
  value       = aws_secretsmanager_secret.admin.arn
}

output "security_group_id" {
  description = "The replicas' security group."
  value       = aws_security_group.clickhouse.id
}

output "rbac_apply_command" {
  description = "The documented step that applies infra/clickhouse/rbac/roles.sql after Vigil's migrations (README.md)."
  value       = "clickhouse-client --host ${aws_instance.replica[0].private_ip} --port 9440 --secure --user vigil_admin --password \"$CLICKHOUSE_ADMIN_PASSWORD\" --database vigil --multiquery < infra/clickhouse/rbac/roles.sql"
}
