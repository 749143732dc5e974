variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"vigil-prod-euw2\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "The VPC (network module)."
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's range (network module): replicas talk to their peers and the AWS endpoints inside it."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr_block))
    error_message = "vpc_cidr_block must be a valid IPv4 CIDR."
  }
}

variable "subnet_ids" {
  description = "Three private subnets (network module): one replica per zone."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "subnet_ids must hold three private subnets (three replicas, three Keeper voters)."
  }
}

variable "client_cidr_blocks" {
  description = "Ranges allowed to reach ClickHouse's HTTPS (8443) and secure native (9440) ports."
  type        = list(string)

  validation {
    condition     = length(var.client_cidr_blocks) > 0 && alltrue([for c in var.client_cidr_blocks : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "client_cidr_blocks must be valid CIDRs, never 0.0.0.0/0."
  }
}

variable "instance_type" {
  description = "Instance type of each replica (memory-optimised; Graviton by default)."
  type        = string
  default     = "r7g.2xlarge"
}

variable "architecture" {
  description = "CPU architecture of instance_type: arm64 (Graviton) or amd64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "amd64"], var.architecture)
    error_message = "architecture must be arm64 or amd64."
  }
}

variable "clickhouse_version" {
  description = "ClickHouse server package version installed at first boot (an LTS line; Vigil's DDL needs 24.8 or later)."
  type        = string
  default     = "25.8"

  validation {
    condition     = can(regex("^(2[4-9]|[3-9][0-9])\\.[0-9]+", var.clickhouse_version))
    error_message = "clickhouse_version must be 24.x or later."
  }
}

variable "data_volume_size_gib" {
  description = "Data volume per replica (GiB). The capacity model in docs/ gives storage per year."
  type        = number
  default     = 2000

  validation {
    condition     = var.data_volume_size_gib >= 100 && var.data_volume_size_gib <= 65536
    error_message = "data_volume_size_gib must be between 100 and 65536."
  }
}

variable "kms_key_arn" {
  description = "Key for the EBS volumes and backups (the kms module's clinical key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "secrets_kms_key_arn" {
  description = "Key for the admin password's secret (the kms module's secrets key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.secrets_kms_key_arn))
    error_message = "secrets_kms_key_arn must be a KMS key ARN."
  }
}

variable "tls_certificate_secret_arn" {
  description = "Secrets Manager secret holding the servers' TLS certificate and key as JSON {\"certificate\":PEM,\"private_key\":PEM,\"ca\":PEM}, issued by the hospital's internal CA (AWS Private CA or its own)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.tls_certificate_secret_arn))
    error_message = "tls_certificate_secret_arn must be a Secrets Manager ARN."
  }
}

variable "backup_retention_days" {
  description = "Daily EBS snapshots of the data volumes kept by AWS Backup."
  type        = number
  default     = 35

  validation {
    condition     = var.backup_retention_days >= 7
    error_message = "backup_retention_days must be at least 7."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
