variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"vigil-prod-euw2\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "log_kms_key_arn" {
  description = "Key for the log groups and the alert topic (the kms module's audit key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
}

variable "metrics_kms_key_arn" {
  description = "Key for the Amazon Managed Prometheus workspace (the kms module's telemetry key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.metrics_kms_key_arn))
    error_message = "metrics_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_days" {
  description = "Retention of Vigil's log groups. Logs carry no PHI (tested in the application), but they are evidence of operation."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value of at least 365 days."
  }
}

variable "log_groups" {
  description = "Log groups to create, by key: the value is the group's name suffix under /vigil/<name_prefix>/."
  type        = map(string)
  default = {
    msk          = "msk-brokers"
    redis        = "elasticache"
    services     = "services"
    clickhouse   = "clickhouse"
    ampworkspace = "amp"
  }

  validation {
    condition     = alltrue([for k in ["msk", "redis", "services", "ampworkspace"] : contains(keys(var.log_groups), k)])
    error_message = "log_groups must include msk, redis, services and ampworkspace (other modules and the workspace write there)."
  }
}

variable "prometheus_rules_yaml" {
  description = "Prometheus rule file loaded as the workspace's rule group namespace: Vigil's infra/prometheus/rules.yml (file() in the root module)."
  type        = string

  validation {
    condition     = can(yamldecode(var.prometheus_rules_yaml).groups) && length(yamldecode(var.prometheus_rules_yaml).groups) > 0
    error_message = "prometheus_rules_yaml must be a Prometheus rule file with at least one group."
  }
}

variable "alert_subscriptions" {
  description = "Where operational alerts go: SNS subscriptions (protocol and endpoint), e.g. the on-call tool's HTTPS hook. Clinical alerts never come here."
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.alert_subscriptions : contains(["https", "email", "sqs", "lambda"], s.protocol)])
    error_message = "alert_subscriptions protocols must be https, email, sqs or lambda (never plain http)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
