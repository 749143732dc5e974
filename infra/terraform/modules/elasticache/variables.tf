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

variable "subnet_ids" {
  description = "Three private subnets (network module): one replica per zone."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "subnet_ids must hold three private subnets."
  }
}

variable "client_cidr_blocks" {
  description = "Ranges allowed to reach Redis (the VPC's range, or only the EKS subnets)."
  type        = list(string)

  validation {
    condition     = length(var.client_cidr_blocks) > 0 && alltrue([for c in var.client_cidr_blocks : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "client_cidr_blocks must be valid CIDRs, never 0.0.0.0/0."
  }
}

variable "engine" {
  description = "redis or valkey (both speak the protocol Vigil's gateway and dedupe state use)."
  type        = string
  default     = "redis"

  validation {
    condition     = contains(["redis", "valkey"], var.engine)
    error_message = "engine must be redis or valkey."
  }
}

variable "engine_version" {
  description = "Engine version (7.x or later: TLS with AUTH and transit_encryption_mode)."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^([7-9]|[1-9][0-9])\\.", var.engine_version))
    error_message = "engine_version must be 7.x or later."
  }
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.r7g.large"

  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "node_type must be an ElastiCache node type (cache.*)."
  }
}

variable "kms_key_arn" {
  description = "Key for data at rest (the kms module's telemetry key: dedupe windows and rate-limit buckets)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "secrets_kms_key_arn" {
  description = "Key for the auth token's secret (the kms module's secrets key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.secrets_kms_key_arn))
    error_message = "secrets_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_group_name" {
  description = "CloudWatch log group for the slow log and engine log (observability module)."
  type        = string
}

variable "snapshot_retention_days" {
  description = "Daily snapshots kept (Redis is a cache of recomputable state for Vigil, so a short retention suffices)."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_retention_days >= 1 && var.snapshot_retention_days <= 35
    error_message = "snapshot_retention_days must be between 1 and 35."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
