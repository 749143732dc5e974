# Amazon MSK for Vigil: brokers in three zones of private subnets, TLS only between clients and brokers and inside
# the cluster, SASL/SCRAM-SHA-512 and IAM (OAUTHBEARER) authentication and nothing unauthenticated, data at rest under
# the telemetry key, broker logs to CloudWatch. The server properties are the ones Vigil's exactly-once path relies
# on (replication 3, min.insync.replicas 2, no unclean election, no auto-created topics: topics come from
# infra/local/topics.ts, see README.md).

resource "aws_security_group" "brokers" {
  name        = "${var.name_prefix}-msk"
  description = "MSK brokers: SASL over TLS from Vigil's clients only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-msk" })
}

resource "aws_vpc_security_group_ingress_rule" "sasl_scram" {
  for_each = toset(var.client_cidr_blocks)

  security_group_id = aws_security_group.brokers.id
  description       = "SASL/SCRAM over TLS"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 9096
  to_port           = 9096
}

resource "aws_vpc_security_group_ingress_rule" "sasl_iam" {
  for_each = toset(var.client_cidr_blocks)

  security_group_id = aws_security_group.brokers.id
  description       = "SASL/IAM (OAUTHBEARER) over TLS"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 9098
  to_port           = 9098
}

resource "aws_vpc_security_group_ingress_rule" "inter_broker" {
  security_group_id            = aws_security_group.brokers.id
  description                  = "Broker to broker replication"
  referenced_security_group_id = aws_security_group.brokers.id
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9098
}

# Terraform drops the default allow-all egress of a security group it creates: brokers may reach each other only.
resource "aws_vpc_security_group_egress_rule" "inter_broker" {
  security_group_id            = aws_security_group.brokers.id
  description                  = "Broker to broker replication"
  referenced_security_group_id = aws_security_group.brokers.id
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9098
}

resource "aws_msk_configuration" "this" {
  name           = "${var.name_prefix}-vigil"
  kafka_versions = [var.kafka_version]
  description    = "Vigil: durable writes for exactly-once, explicit topics, ACLs required"

  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    unclean.leader.election.enable=false
    allow.everyone.if.no.acl.found=false
    transaction.state.log.replication.factor=3
    transaction.state.log.min.isr=2
    offsets.topic.replication.factor=3
    log.message.timestamp.type=LogAppendTime
  PROPERTIES
}

resource "aws_msk_cluster" "this" {
  cluster_name           = "${var.name_prefix}-vigil"
  kafka_version          = var.kafka_version
  number_of_broker_nodes = 3 * var.brokers_per_zone
  enhanced_monitoring    = "PER_TOPIC_PER_PARTITION" # lag per partition for KEDA and the VigilConsumerLagHigh rule

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.brokers.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size_gib
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn

    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  client_authentication {
    unauthenticated = false

    sasl {
      scram = true
      iam   = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = var.log_group_name
      }
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  tags = var.tags
}

# SCRAM credentials: MSK reads them from Secrets Manager secrets named AmazonMSK_*, encrypted with a customer key.
resource "random_password" "scram" {
  for_each = var.scram_users

  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "scram" {
  for_each = var.scram_users

  #checkov:skip=CKV2_AWS_57: MSK SCRAM passwords have no managed rotation Lambda; rotate by a new secret version and a rolling client restart (README.md, "Rotating SCRAM passwords").
  name                    = "AmazonMSK_${var.name_prefix}_${each.key}"
  description             = "SASL/SCRAM-SHA-512 credentials of ${each.key} on ${var.name_prefix}-vigil"
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = 30
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "scram" {
  for_each = var.scram_users

  secret_id = aws_secretsmanager_secret.scram[each.key].id
  secret_string = jsonencode({
    username = each.key
    password = random_password.scram[each.key].result
  })
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [for user in var.scram_users : aws_secretsmanager_secret.scram[user].arn]

  depends_on = [aws_secretsmanager_secret_version.scram]
}
