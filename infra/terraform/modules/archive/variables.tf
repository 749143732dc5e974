variable "name_prefix" {
  description = "Prefix of the bucket names, e.g. \"vigil-prod-euw2\". Bucket names are global: add something of the organisation's."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name_prefix))
    error_message = "name_prefix must be 3-41 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "raw_retention_days" {
  description = "Object Lock (compliance mode) retention of the raw archive: not even the account root can delete or shorten it. Medical-device records are commonly kept for years; set it from the hospital's records schedule."
  type        = number
  default     = 2557 # 7 years

  validation {
    condition     = var.raw_retention_days >= 365 && var.raw_retention_days <= 36500
    error_message = "raw_retention_days must be between 365 and 36500."
  }
}

variable "checkpoint_retention_days" {
  description = "Object Lock (compliance mode) retention of the audit log's signed checkpoints."
  type        = number
  default     = 3653 # 10 years

  validation {
    condition     = var.checkpoint_retention_days >= 365 && var.checkpoint_retention_days <= 36500
    error_message = "checkpoint_retention_days must be between 365 and 36500."
  }
}

variable "access_log_retention_days" {
  description = "How long S3 server access logs are kept."
  type        = number
  default     = 730

  validation {
    condition     = var.access_log_retention_days >= 365
    error_message = "access_log_retention_days must be at least 365."
  }
}

variable "telemetry_kms_key_arn" {
  description = "Key of the raw archive (the kms module's telemetry key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.telemetry_kms_key_arn))
    error_message = "telemetry_kms_key_arn must be a KMS key ARN."
  }
}

variable "audit_kms_key_arn" {
  description = "Key of the checkpoint bucket (the kms module's audit key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.audit_kms_key_arn))
    error_message = "audit_kms_key_arn must be a KMS key ARN."
  }
}

variable "s3_vpc_endpoint_id" {
  description = "The network module's S3 gateway endpoint: writes to the archive must come through it (null to allow any network path)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every bucket."
  type        = map(string)
  default     = {}
}
