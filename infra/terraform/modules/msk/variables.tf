variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"vigil-prod-euw2\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC the brokers live in (network module)."
  type        = string
}

variable "subnet_ids" {
  description = "Three private subnets, one per availability zone (network module)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "subnet_ids must hold three subnets (one broker set per zone)."
  }
}

variable "client_cidr_blocks" {
  description = "Ranges allowed to reach the brokers' SASL/TLS listeners (the VPC's range, or only the EKS subnets)."
  type        = list(string)

  validation {
    condition     = length(var.client_cidr_blocks) > 0 && alltrue([for c in var.client_cidr_blocks : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "client_cidr_blocks must be valid private CIDRs, never 0.0.0.0/0."
  }
}

variable "kafka_version" {
  description = "MSK Kafka version. Vigil needs transactions (exactly-once v2) and idempotent producers: 3.6 or later."
  type        = string
  default     = "3.8.x"

  validation {
    condition     = can(regex("^(3\\.[6-9]|[4-9]\\.[0-9]+)", var.kafka_version))
    error_message = "kafka_version must be 3.6 or later."
  }
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"

  validation {
    condition     = startswith(var.broker_instance_type, "kafka.")
    error_message = "broker_instance_type must be an MSK instance type (kafka.*)."
  }
}

variable "brokers_per_zone" {
  description = "Brokers in each of the three zones (replication factor 3 and min.insync.replicas 2 need at least one per zone)."
  type        = number
  default     = 1

  validation {
    condition     = var.brokers_per_zone >= 1 && var.brokers_per_zone <= 10
    error_message = "brokers_per_zone must be between 1 and 10."
  }
}

variable "broker_volume_size_gib" {
  description = "EBS storage per broker (GiB). Size it from the capacity model in docs/: events/s x record size x retention x 3 replicas / brokers."
  type        = number
  default     = 1000

  validation {
    condition     = var.broker_volume_size_gib >= 100 && var.broker_volume_size_gib <= 16384
    error_message = "broker_volume_size_gib must be between 100 and 16384."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed key for data at rest (the kms module's telemetry key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "secrets_kms_key_arn" {
  description = "Customer-managed key for the SCRAM credentials in Secrets Manager (the kms module's secrets key; MSK refuses secrets under the AWS-managed key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.secrets_kms_key_arn))
    error_message = "secrets_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_group_name" {
  description = "CloudWatch log group for broker logs (observability module)."
  type        = string
}

variable "scram_users" {
  description = "SASL/SCRAM-SHA-512 users: Vigil's services (librdkafka has no MSK IAM signer), the schema registry and tools."
  type        = set(string)
  default     = ["vigil-services", "vigil-registry", "vigil-ops"]

  validation {
    condition     = alltrue([for u in var.scram_users : can(regex("^[a-z][a-z0-9-]{2,40}$", u))])
    error_message = "scram_users must be lower-case names of 3-41 characters."
  }
}

variable "topics" {
  description = "Vigil's topics (from infra/local/topics.ts; scripts/check-terraform.sh fails when they differ). Created by the documented step in README.md, not by Terraform: the brokers are private and Terraform runs outside the VPC."
  type = map(object({
    partitions  = number
    config      = map(string)
    description = string
  }))
  default = {
    "vigil.telemetry.raw" = {
      partitions  = 6
      config      = { "cleanup.policy" = "delete", "retention.ms" = "604800000" }
      description = "Device envelopes as received (Avro, Confluent wire format), keyed by device."
    }
    "vigil.telemetry.raw-priority" = {
      partitions  = 6
      config      = { "cleanup.policy" = "delete", "retention.ms" = "604800000" }
      description = "The alarm lane, co-partitioned with the raw topic (same key, same partition count)."
    }
    "vigil.telemetry.normalised" = {
      partitions  = 6
      config      = { "cleanup.policy" = "delete", "retention.ms" = "604800000" }
      description = "Envelopes that passed decode, validation and dedupe."
    }
    "vigil.clinical.inferences" = {
      partitions  = 6
      config      = { "cleanup.policy" = "delete", "retention.ms" = "2592000000" }
      description = "Inference records (score, model version, provenance)."
    }
    "vigil.clinical.alerts" = {
      partitions  = 3
      config      = { "cleanup.policy" = "delete", "retention.ms" = "2592000000" }
      description = "Alerts raised for clinicians."
    }
    "vigil.clinical.outcomes" = {
      partitions  = 3
      config      = { "cleanup.policy" = "delete", "retention.ms" = "31536000000" }
      description = "Clinical outcomes by patient pseudonym, kept a year for calibration."
    }
    "vigil.clinical.alert-actions" = {
      partitions  = 6
      config      = { "cleanup.policy" = "delete", "retention.ms" = "2592000000" }
      description = "Acknowledgements and escalations of clinical alerts, keyed by device."
    }
    "vigil.ops.dead-letter" = {
      partitions  = 3
      config      = { "cleanup.policy" = "delete", "retention.ms" = "2592000000" }
      description = "Records that left the chain, with a reason code."
    }
    "vigil.ops.duplicates" = {
      partitions  = 3
      config      = { "cleanup.policy" = "delete", "retention.ms" = "604800000" }
      description = "Intentional drops (replays, duplicates)."
    }
    "vigil.ops.gateway-rejections" = {
      partitions  = 3
      config      = { "cleanup.policy" = "delete", "retention.ms" = "7776000000" }
      description = "Every request or event the gateway refused, with its reason code (never the payload)."
    }
    "vigil.ml.drift-histograms" = {
      partitions  = 3
      config      = { "cleanup.policy" = "delete", "retention.ms" = "2592000000" }
      description = "Per-window feature and score histograms for drift detection."
    }
    "vigil.control.model-rollouts" = {
      partitions  = 1
      config      = { "cleanup.policy" = "compact", "min.compaction.lag.ms" = "0", "segment.ms" = "86400000" }
      description = "Model rollout decisions (compacted)."
    }
    "vigil.control.device-identity" = {
      partitions  = 1
      config      = { "cleanup.policy" = "compact", "min.compaction.lag.ms" = "0", "segment.ms" = "86400000" }
      description = "Device identity changes, one key per change so compaction keeps the whole history."
    }
    "vigil.audit.log" = {
      partitions  = 1
      config      = { "cleanup.policy" = "delete", "retention.ms" = "-1", "retention.bytes" = "-1" }
      description = "The append-only audit log (Merkle-tree entries and signed checkpoints): unlimited retention."
    }
  }

  validation {
    condition     = alltrue([for name, t in var.topics : t.partitions >= 1 && contains(["delete", "compact"], t.config["cleanup.policy"])])
    error_message = "every topic needs at least one partition and a cleanup.policy of delete or compact."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
