variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"vigil-prod-euw2\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (a version in standard support)."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.(3[0-9]|[4-9][0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.30 or later, as \"1.NN\"."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's interfaces and the nodes (network module)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "subnet_ids must hold three private subnets."
  }
}

variable "admin_cidr_blocks" {
  description = "Ranges (inside the VPC, or peered/VPN) allowed to reach the private API endpoint. The public endpoint is off."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.admin_cidr_blocks : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "admin_cidr_blocks must be valid CIDRs, never 0.0.0.0/0."
  }
}

variable "vpc_id" {
  description = "The VPC (network module)."
  type        = string
}

variable "node_instance_types" {
  description = "Instance types of the managed node group (Vigil's workers are CPU-bound: compute-optimised)."
  type        = list(string)
  default     = ["c7i.xlarge"]
}

variable "node_count" {
  description = "Desired, minimum and maximum nodes. KEDA scales pods by consumer lag; the cluster autoscaler or Karpenter scales nodes within these bounds."
  type = object({
    desired = number
    min     = number
    max     = number
  })
  default = { desired = 3, min = 3, max = 12 }

  validation {
    condition     = var.node_count.min >= 3 && var.node_count.min <= var.node_count.desired && var.node_count.desired <= var.node_count.max
    error_message = "node_count needs 3 <= min <= desired <= max (one node per zone at least)."
  }
}

variable "node_volume_size_gib" {
  description = "Root volume of each node (GiB)."
  type        = number
  default     = 100

  validation {
    condition     = var.node_volume_size_gib >= 50
    error_message = "node_volume_size_gib must be at least 50."
  }
}

variable "secrets_kms_key_arn" {
  description = "Key for envelope encryption of Kubernetes secrets (the kms module's secrets key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.secrets_kms_key_arn))
    error_message = "secrets_kms_key_arn must be a KMS key ARN."
  }
}

variable "node_volume_kms_key_arn" {
  description = "Key for the nodes' EBS volumes (the kms module's clinical key: pods' scratch space may hold clinical records)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.node_volume_kms_key_arn))
    error_message = "node_volume_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_kms_key_arn" {
  description = "Key for the control plane's log group (the kms module's audit key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_days" {
  description = "Retention of the control plane's logs (API server audit log included)."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365 (the API audit log is evidence)."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of Vigil's services (the Helm chart's release namespace)."
  type        = string
  default     = "vigil"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "msk" {
  description = "The MSK cluster the services reach with IAM auth (msk module outputs): its ARN, name and UUID."
  type = object({
    cluster_arn  = string
    cluster_name = string
    cluster_uuid = string
  })
}

variable "topic_prefix" {
  description = "VIGIL_TOPIC_PREFIX of this environment (empty for none): IAM grants cover \"<prefix>.vigil.*\"."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]*$", var.topic_prefix))
    error_message = "topic_prefix may hold letters, digits, dots, underscores and hyphens only."
  }
}

variable "archive_bucket_arns" {
  description = "The archive module's buckets: raw (the raw archive) and audit_checkpoints."
  type = object({
    raw               = string
    audit_checkpoints = string
  })
}

variable "kms_key_arns" {
  description = "The kms module's key per data class (telemetry, clinical, audit, secrets)."
  type        = map(string)

  validation {
    condition     = length(setsubtract(["telemetry", "clinical", "audit", "secrets"], keys(var.kms_key_arns))) == 0
    error_message = "kms_key_arns must hold telemetry, clinical, audit and secrets."
  }
}

variable "secret_arns" {
  description = "Secrets Manager ARNs the services read at start-up (Redis auth token, ClickHouse users), mounted by the Secrets Store CSI driver."
  type        = list(string)
  default     = []
}

variable "registry_secret_arns" {
  description = "Secrets the schema registry reads: its SCRAM credentials for MSK (msk module scram_secret_arns[\"vigil-registry\"])."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.registry_secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:", arn))])
    error_message = "registry_secret_arns must be Secrets Manager ARNs."
  }
}

variable "amp_workspace_arn" {
  description = "Amazon Managed Prometheus workspace the in-cluster collector writes to (observability module)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
