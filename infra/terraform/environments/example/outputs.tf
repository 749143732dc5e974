output "region" {
  description = "The region this deployment is pinned to."
  value       = var.region
}

output "served_processing_policies" {
  description = "The processing_policy values whose residency zone this deployment serves; events of any other policy belong to another deployment."
  value       = sort([for policy, zone in var.processing_policy_zones : policy if zone == var.residency_zone])
}

output "kafka_bootstrap_iam" {
  description = "MSK bootstrap servers for IAM clients (Vigil's services: SASL OAUTHBEARER over TLS)."
  value       = module.msk.bootstrap_brokers_sasl_iam
}

output "kafka_bootstrap_scram" {
  description = "MSK bootstrap servers for SCRAM-SHA-512 clients (schema registry, tools)."
  value       = module.msk.bootstrap_brokers_sasl_scram
}

output "topic_create_commands" {
  description = "The topic creation step (modules/msk/README.md)."
  value       = module.msk.topic_create_commands
}

output "redis_endpoint" {
  description = "ElastiCache primary endpoint (rediss://)."
  value       = module.elasticache.primary_endpoint
}

output "redis_auth_token_secret_arn" {
  description = "Secrets Manager ARN of the Redis AUTH token."
  value       = module.elasticache.auth_token_secret_arn
}

output "clickhouse_https_url" {
  description = "ClickHouse HTTPS URL."
  value       = module.clickhouse.https_url
}

output "clickhouse_admin_secret_arn" {
  description = "Secrets Manager ARN of ClickHouse's admin credentials (migrations and roles.sql)."
  value       = module.clickhouse.admin_secret_arn
}

output "clickhouse_rbac_apply_command" {
  description = "The step that applies infra/clickhouse/rbac/roles.sql (modules/clickhouse/README.md)."
  value       = module.clickhouse.rbac_apply_command
}

output "archive_buckets" {
  description = "The Object Lock buckets: raw and audit_checkpoints."
  value       = module.archive.bucket_names
}

output "eks_cluster_name" {
  description = "The EKS cluster."
  value       = module.eks.cluster_name
}

output "service_account_role_arns" {
  description = "IRSA role per service account, for the Helm chart's values."
  value       = module.eks.service_account_role_arns
}

output "amp_remote_write_url" {
  description = "Where the in-cluster collector sends metrics."
  value       = module.observability.amp_remote_write_url
}

output "kms_key_arns" {
  description = "Key per data class."
  value       = module.kms.key_arns
}
