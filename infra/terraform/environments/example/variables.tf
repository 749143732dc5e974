variable "region" {
  description = "AWS region of this deployment. Must be one of the regions its residency zone allows."
  type        = string

  validation {
    condition     = contains(lookup(var.residency_zones, var.residency_zone, []), var.region)
    error_message = "region is not allowed for residency_zone: pick one of residency_zones[residency_zone], or change the zone's list (a reviewed, legal decision)."
  }
}

variable "residency_zone" {
  description = "The data-residency zone this deployment serves, e.g. \"eu-zone-a\". Every processing_policy routed here must map to it."
  type        = string

  validation {
    condition     = contains(keys(var.residency_zones), var.residency_zone)
    error_message = "residency_zone must be a key of residency_zones."
  }
}

variable "residency_zones" {
  description = "Allowed AWS regions per residency zone. The zone names are those the envelope's processing_policy refers to (processing_policy_zones)."
  type        = map(list(string))
  default = {
    "eu-zone-a" = ["eu-west-2"]                 # United Kingdom
    "eu-zone-b" = ["eu-central-1", "eu-west-1"] # EU (Germany, Ireland)
    "us-zone-a" = ["us-east-1", "us-east-2", "us-west-2"]
  }

  validation {
    condition     = alltrue([for zone, regions in var.residency_zones : can(regex("^[a-z][a-z0-9-]{1,14}$", zone)) && length(regions) > 0 && alltrue([for r in regions : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", r))])])
    error_message = "each residency zone needs a name of 2-15 lower-case letters, digits and hyphens (it becomes part of resource names) and at least one AWS region name (e.g. eu-west-2)."
  }
}

variable "processing_policy_zones" {
  description = "The residency zone of each processing_policy value the envelope may carry. Gateways of this deployment should accept only policies of its zone (output served_processing_policies)."
  type        = map(string)
  default = {
    "care-only-v1"             = "eu-zone-a"
    "care-and-surveillance-v1" = "eu-zone-a"
    "hipaa-eu-zone-a"          = "eu-zone-a"
  }

  validation {
    condition     = alltrue([for policy, zone in var.processing_policy_zones : contains(keys(var.residency_zones), zone)])
    error_message = "every processing_policy must map to a zone listed in residency_zones."
  }
}

variable "availability_zones" {
  description = "Three availability zones of the region, named explicitly so the deployment never spreads into a zone added later without review."
  type        = list(string)

  validation {
    condition     = length(distinct(var.availability_zones)) == 3 && alltrue([for az in var.availability_zones : startswith(az, var.region)])
    error_message = "availability_zones must be three distinct zones of the chosen region (e.g. eu-west-2a, eu-west-2b, eu-west-2c)."
  }
}

variable "environment" {
  description = "Environment name, part of every resource name (prod, staging...)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower-case letters and digits."
  }
}

variable "organisation" {
  description = "Short name of the operating organisation, part of the (global) S3 bucket names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.organisation))
    error_message = "organisation must be 2-16 lower-case letters, digits and hyphens."
  }
}

variable "allowed_account_ids" {
  description = "The AWS account(s) this configuration may touch: the provider refuses any other (a guard against applying with the wrong credentials)."
  type        = list(string)

  validation {
    condition     = length(var.allowed_account_ids) > 0 && alltrue([for a in var.allowed_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "allowed_account_ids must list 12-digit AWS account ids."
  }
}

variable "vpc_cidr_block" {
  description = "The VPC's range (must not overlap the hospital networks it is peered with)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "admin_cidr_blocks" {
  description = "Ranges allowed to reach the EKS API (the platform team's VPN or bastion range)."
  type        = list(string)
}

variable "kms_admin_role_arns" {
  description = "Roles that administer the KMS keys (break-glass)."
  type        = list(string)
  default     = []
}

variable "clickhouse_tls_certificate_secret_arn" {
  description = "Secrets Manager secret with ClickHouse's TLS certificate, key and CA (modules/clickhouse/README.md)."
  type        = string
}

variable "alert_subscriptions" {
  description = "Where operational alerts go (SNS subscriptions)."
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = []
}
