# One customer-managed key per data class (telemetry, clinical, audit, secrets), rotation always on. Keys are per
# class, not per service, so that a class can be crypto-shredded or its access audited on its own: the raw archive
# and MSK use telemetry, ClickHouse's disks clinical, the audit log's checkpoints and the log groups audit, and
# Secrets Manager and EKS secrets the secrets key.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  region       = data.aws_region.current.region
  log_arn      = "arn:${data.aws_partition.current.partition}:logs:${local.region}:${data.aws_caller_identity.current.account_id}:log-group:*"

  # Service principals that use a key on the account's behalf and cannot get it through IAM policies alone.
  class_statements = {
    # EKS managed node groups launch instances through EC2 Auto Scaling, whose service-linked role must be able to
    # use the key of the nodes' volumes (the clinical key).
    clinical = [{
      Sid       = "AutoScalingUsesNodeVolumeKey"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling" }
      Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
      Resource  = "*"
    }]
    # Amazon Managed Prometheus's Alertmanager publishes to the alert topic, which the audit key encrypts.
    audit = [{
      Sid       = "ManagedPrometheusPublishesAlerts"
      Effect    = "Allow"
      Principal = { Service = "aps.amazonaws.com" }
      Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
      Resource  = "*"
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  }

  admin_statements = length(var.key_admin_role_arns) == 0 ? [] : [{
    Sid       = "KeyAdministration"
    Effect    = "Allow"
    Principal = { AWS = var.key_admin_role_arns }
    Action = [
      "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
      "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
      "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
    ]
    Resource = "*"
  }]
}

resource "aws_kms_key" "this" {
  for_each = var.data_classes

  description             = "Vigil ${each.key} data (${var.name_prefix})"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  deletion_window_in_days = var.deletion_window_in_days
  multi_region            = false # a multi-region key would let the data class leave its residency zone

  # In a key policy, "Resource": "*" means this key. IAM in the account decides who may use the key (the IRSA roles
  # of the eks module); CloudWatch Logs may use it only for this account's log groups.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid       = "AccountIamDecides"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsForThisAccount"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = local.log_arn }
        }
      },
    ], lookup(local.class_statements, each.key, []), local.admin_statements)
  })

  tags = merge(var.tags, { "vigil:data-class" = each.key })
}

resource "aws_kms_alias" "this" {
  for_each = var.data_classes

  name          = "alias/${var.name_prefix}-${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
