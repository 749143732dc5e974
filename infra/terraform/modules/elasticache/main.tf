# ElastiCache for Redis (or Valkey) for the gateway's shared token buckets and replay state and the workers' dedupe
# windows: a primary and two replicas across three zones with automatic failover, TLS required, an AUTH token that
# lives in Secrets Manager (services read it there, `rediss://` in their settings), encryption at rest with the
# telemetry key, slow and engine logs to CloudWatch.

resource "aws_security_group" "redis" {
  name        = "${var.name_prefix}-redis"
  description = "Redis over TLS from Vigil's clients only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-redis" })
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  for_each = toset(var.client_cidr_blocks)

  security_group_id = aws_security_group.redis.id
  description       = "Redis TLS from a client range"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
}

resource "aws_vpc_security_group_ingress_rule" "replication" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Replication between the group's nodes"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_vpc_security_group_egress_rule" "replication" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Replication between the group's nodes"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name_prefix}-redis"
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

# The token is generated here, stored in Secrets Manager and given to ElastiCache; it is also in Terraform's state,
# which is why the state backend must be encrypted and access-controlled (environments/example/README.md).
resource "random_password" "auth_token" {
  length  = 64
  special = false # ElastiCache AUTH tokens allow only some printable characters; alphanumerics avoid the question
}

resource "aws_secretsmanager_secret" "auth_token" {
  #checkov:skip=CKV2_AWS_57: ElastiCache AUTH rotation is a two-step ROTATE/SET change of the replication group, run by Terraform (README.md, "Rotating the token"), not a Secrets Manager rotation Lambda.
  name                    = "${var.name_prefix}/vigil/redis-auth-token"
  description             = "AUTH token of ${var.name_prefix}-redis (rediss:// clients)"
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = 30
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "auth_token" {
  secret_id     = aws_secretsmanager_secret.auth_token.id
  secret_string = random_password.auth_token.result
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = "${var.name_prefix}-redis"
  description          = "Vigil gateway and dedupe state (${var.name_prefix})"
  engine               = var.engine
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379

  num_cache_clusters         = 3
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.auth_token.result
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:05:00-sun:06:00"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = var.log_group_name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  log_delivery_configuration {
    destination      = var.log_group_name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "engine-log"
  }

  tags = var.tags
}
