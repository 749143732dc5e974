# Vigil on AWS, one deployment per residency zone: the kms, network, observability, archive, msk, elasticache,
# clickhouse and eks modules wired together. The region is pinned by the residency zone (variables.tf validates it),
# and the provider refuses any account but the allowed one.

provider "aws" {
  region              = var.region
  allowed_account_ids = var.allowed_account_ids

  default_tags {
    tags = {
      "vigil:environment"    = var.environment
      "vigil:residency-zone" = var.residency_zone
      "managed-by"           = "terraform"
    }
  }
}

locals {
  name_prefix = "vigil-${var.environment}-${var.residency_zone}"
}

module "kms" {
  source = "../../modules/kms"

  name_prefix         = local.name_prefix
  key_admin_role_arns = var.kms_admin_role_arns
}

module "network" {
  source = "../../modules/network"

  name_prefix        = local.name_prefix
  cidr_block         = var.vpc_cidr_block
  availability_zones = var.availability_zones
  log_kms_key_arn    = module.kms.key_arns["audit"]
}

module "observability" {
  source = "../../modules/observability"

  name_prefix           = local.name_prefix
  log_kms_key_arn       = module.kms.key_arns["audit"]
  metrics_kms_key_arn   = module.kms.key_arns["telemetry"]
  prometheus_rules_yaml = file("${path.module}/../../../prometheus/rules.yml")
  alert_subscriptions   = var.alert_subscriptions
}

module "archive" {
  source = "../../modules/archive"

  name_prefix           = "${var.organisation}-${local.name_prefix}"
  telemetry_kms_key_arn = module.kms.key_arns["telemetry"]
  audit_kms_key_arn     = module.kms.key_arns["audit"]
  s3_vpc_endpoint_id    = module.network.s3_endpoint_id
}

module "msk" {
  source = "../../modules/msk"

  name_prefix         = local.name_prefix
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  client_cidr_blocks  = [module.network.vpc_cidr_block]
  kms_key_arn         = module.kms.key_arns["telemetry"]
  secrets_kms_key_arn = module.kms.key_arns["secrets"]
  log_group_name      = module.observability.log_group_names["msk"]
}

module "elasticache" {
  source = "../../modules/elasticache"

  name_prefix         = local.name_prefix
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  client_cidr_blocks  = [module.network.vpc_cidr_block]
  kms_key_arn         = module.kms.key_arns["telemetry"]
  secrets_kms_key_arn = module.kms.key_arns["secrets"]
  log_group_name      = module.observability.log_group_names["redis"]
}

module "clickhouse" {
  source = "../../modules/clickhouse"

  name_prefix                = local.name_prefix
  vpc_id                     = module.network.vpc_id
  vpc_cidr_block             = module.network.vpc_cidr_block
  subnet_ids                 = module.network.private_subnet_ids
  client_cidr_blocks         = [module.network.vpc_cidr_block]
  kms_key_arn                = module.kms.key_arns["clinical"]
  secrets_kms_key_arn        = module.kms.key_arns["secrets"]
  tls_certificate_secret_arn = var.clickhouse_tls_certificate_secret_arn
}

module "eks" {
  source = "../../modules/eks"

  name_prefix             = local.name_prefix
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  admin_cidr_blocks       = var.admin_cidr_blocks
  secrets_kms_key_arn     = module.kms.key_arns["secrets"]
  node_volume_kms_key_arn = module.kms.key_arns["clinical"]
  log_kms_key_arn         = module.kms.key_arns["audit"]
  kms_key_arns            = module.kms.key_arns
  amp_workspace_arn       = module.observability.amp_workspace_arn

  msk = {
    cluster_arn  = module.msk.cluster_arn
    cluster_name = module.msk.cluster_name
    cluster_uuid = module.msk.cluster_uuid
  }

  archive_bucket_arns = {
    raw               = module.archive.bucket_arns["raw"]
    audit_checkpoints = module.archive.bucket_arns["audit_checkpoints"]
  }

  # The ClickHouse service users' secrets are added here once created (modules/clickhouse/README.md).
  secret_arns          = [module.elasticache.auth_token_secret_arn]
  registry_secret_arns = [module.msk.scram_secret_arns["vigil-registry"]]
}
