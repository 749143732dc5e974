output "primary_endpoint" {
  description = "Primary endpoint; clients connect with rediss://:<token>@<endpoint>:6379."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint" {
  description = "Reader endpoint (replicas)."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "port" {
  description = "Redis port (TLS only)."
  value       = aws_elasticache_replication_group.this.port
}

output "auth_token_secret_arn" {
  description = "Secrets Manager ARN of the AUTH token (grant it to the services through the eks module's secret_arns)."
  value       = aws_secretsmanager_secret.auth_token.arn
}

output "security_group_id" {
  description = "The cache's security group."
  value       = aws_security_group.redis.id
}
