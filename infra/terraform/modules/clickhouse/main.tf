# Self-managed ClickHouse on EC2, the default: three replicas of one shard (one per zone) with ClickHouse Keeper
# embedded in each, data on an encrypted gp3 volume under the clinical key, TLS-only ports (HTTPS 8443, secure
# native 9440, interserver HTTPS 9010), SQL-managed users and roles (the RBAC DDL of infra/clickhouse/rbac/roles.sql
# is applied after the migrations: README.md), an admin password generated into Secrets Manager, daily snapshots by
# AWS Backup. ClickHouse Cloud is the documented alternative (README.md).

data "aws_partition" "current" {}
data "aws_region" "current" {}

data "aws_subnet" "this" {
  count = 3
  id    = var.subnet_ids[count.index]
}

data "aws_ssm_parameter" "ubuntu" {
  name = "/aws/service/canonical/ubuntu/server/24.04/stable/current/${var.architecture}/hvm/ebs-gp3/ami-id"
}

locals {
  name      = "${var.name_prefix}-clickhouse"
  partition = data.aws_partition.current.partition
  # Fixed addresses, so every replica's configuration can name its peers and the Keeper quorum before they exist.
  private_ips = [for s in data.aws_subnet.this : cidrhost(s.cidr_block, 10)]
}

# --- network -----------------------------------------------------------------------------------------------------

resource "aws_security_group" "clickhouse" {
  name        = local.name
  description = "ClickHouse: TLS ports from clients, replication and Keeper between replicas"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = local.name })
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  for_each = toset(var.client_cidr_blocks)

  security_group_id = aws_security_group.clickhouse.id
  description       = "ClickHouse HTTPS interface"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 8443
  to_port           = 8443
}

resource "aws_vpc_security_group_ingress_rule" "native_tls" {
  for_each = toset(var.client_cidr_blocks)

  security_group_id = aws_security_group.clickhouse.id
  description       = "ClickHouse native protocol over TLS"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 9440
  to_port           = 9440
}

resource "aws_vpc_security_group_ingress_rule" "peers" {
  for_each = { interserver = 9010, keeper = 9281, raft = 9234, native = 9440 }

  security_group_id            = aws_security_group.clickhouse.id
  description                  = "Between replicas: ${each.key}"
  referenced_security_group_id = aws_security_group.clickhouse.id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}

resource "aws_vpc_security_group_egress_rule" "vpc" {
  security_group_id = aws_security_group.clickhouse.id
  description       = "To the VPC (peers, endpoints)"
  cidr_ipv4         = var.vpc_cidr_block
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "https_out" {
  security_group_id = aws_security_group.clickhouse.id
  description       = "HTTPS out through NAT: the ClickHouse package repository at first boot"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# --- identity ----------------------------------------------------------------------------------------------------

resource "random_password" "admin" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "admin" {
  #checkov:skip=CKV2_AWS_57: the admin password is changed by ALTER USER and a new secret version in one reviewed step (README.md); a rotation Lambda would need network access to every replica.
  name                    = "${var.name_prefix}/vigil/clickhouse-admin"
  description             = "ClickHouse admin user of ${local.name} (SQL access management; break-glass and migrations)"
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = 30
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "admin" {
  secret_id     = aws_secretsmanager_secret.admin.id
  secret_string = jsonencode({ username = "vigil_admin", password = random_password.admin.result })
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "instance" {
  statement {
    sid       = "ReadBootSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.admin.arn, var.tls_certificate_secret_arn]
  }
  statement {
    sid       = "DecryptBootSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
  }
}

resource "aws_iam_role" "instance" {
  name               = local.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "instance" {
  name   = "boot-secrets"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore" # shell through SSM, no SSH
}

resource "aws_iam_instance_profile" "this" {
  name = local.name
  role = aws_iam_role.instance.name
}

# --- replicas ----------------------------------------------------------------------------------------------------

resource "aws_instance" "replica" {
  count = 3

  ami                         = data.aws_ssm_parameter.ubuntu.insecure_value
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_ids[count.index]
  private_ip                  = local.private_ips[count.index]
  vpc_security_group_ids      = [aws_security_group.clickhouse.id]
  iam_instance_profile        = aws_iam_instance_profile.this.name
  associate_public_ip_address = false
  ebs_optimized               = true
  monitoring                  = true
  disable_api_termination     = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = 50
    volume_type = "gp3"
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  # No secret in user data: the script fetches the admin password and TLS material from Secrets Manager at boot.
  user_data = templatefile("${path.module}/templates/user-data.sh.tftpl", {
    replica_index      = count.index + 1
    private_ips        = local.private_ips
    clickhouse_version = var.clickhouse_version
    region             = data.aws_region.current.region
    admin_secret_arn   = aws_secretsmanager_secret.admin.arn
    tls_secret_arn     = var.tls_certificate_secret_arn
    data_volume_device = "/dev/sdf"
    vpc_cidr_block     = var.vpc_cidr_block
  })
  user_data_replace_on_change = false

  tags = merge(var.tags, { Name = "${local.name}-${count.index + 1}", "vigil:backup" = "clickhouse" })

  lifecycle {
    ignore_changes = [ami] # a new AMI is a planned, replica-by-replica replacement, not a side effect of plan
  }
}

resource "aws_ebs_volume" "data" {
  #checkov:skip=CKV2_AWS_9: every data volume is in the AWS Backup plan through aws_backup_selection.this[count.index]; checkov links only index 0 of a counted reference, so replicas 2 and 3 are reported although selected.
  count = 3

  availability_zone = data.aws_subnet.this[count.index].availability_zone
  size              = var.data_volume_size_gib
  type              = "gp3"
  iops              = 6000
  throughput        = 500
  encrypted         = true
  kms_key_id        = var.kms_key_arn

  tags = merge(var.tags, { Name = "${local.name}-${count.index + 1}-data", "vigil:backup" = "clickhouse" })
}

resource "aws_volume_attachment" "data" {
  count = 3

  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[count.index].id
  instance_id = aws_instance.replica[count.index].id
}

# --- backups -----------------------------------------------------------------------------------------------------

resource "aws_backup_vault" "this" {
  name        = local.name
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

resource "aws_backup_plan" "this" {
  name = local.name

  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.this.name
    schedule          = "cron(0 2 * * ? *)"

    lifecycle {
      delete_after = var.backup_retention_days
    }
  }

  tags = var.tags
}

data "aws_iam_policy_document" "backup_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["backup.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "backup" {
  name               = "${local.name}-backup"
  assume_role_policy = data.aws_iam_policy_document.backup_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "backup" {
  role       = aws_iam_role.backup.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
}

resource "aws_backup_selection" "this" {
  count = 3

  name         = "${local.name}-${count.index + 1}"
  plan_id      = aws_backup_plan.this.id
  iam_role_arn = aws_iam_role.backup.arn
  resources    = [aws_ebs_volume.data[count.index].arn]
}
