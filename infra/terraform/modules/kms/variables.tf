variable "name_prefix" {
  description = "Prefix for every alias and name, e.g. \"vigil-prod-euw2\". Lower case, digits and hyphens."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "data_classes" {
  description = "Data classes that get a key of their own. Vigil's modules expect telemetry, clinical, audit and secrets."
  type        = set(string)
  default     = ["telemetry", "clinical", "audit", "secrets"]

  validation {
    condition     = length(setsubtract(["telemetry", "clinical", "audit", "secrets"], var.data_classes)) == 0
    error_message = "data_classes must include telemetry, clinical, audit and secrets (other modules take their keys)."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion completes. Long, so a mistaken deletion can be cancelled."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "rotation_period_in_days" {
  description = "Automatic rotation period of every key's material (rotation is always on)."
  type        = number
  default     = 365

  validation {
    condition     = var.rotation_period_in_days >= 90 && var.rotation_period_in_days <= 2560
    error_message = "rotation_period_in_days must be between 90 and 2560 (AWS KMS limits)."
  }
}

variable "key_admin_role_arns" {
  description = "IAM roles allowed to administer (not use) the keys, e.g. the platform team's break-glass role."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.key_admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))])
    error_message = "key_admin_role_arns must be IAM role ARNs."
  }
}

variable "tags" {
  description = "Tags added to every key."
  type        = map(string)
  default     = {}
}
