variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"vigil-prod-euw2\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "cidr_block" {
  description = "The VPC's IPv4 range. A /16 leaves room for three /19 private subnets and three /24 egress subnets."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && tonumber(split("/", var.cidr_block)[1]) <= 18
    error_message = "cidr_block must be a valid IPv4 CIDR of /18 or larger."
  }
}

variable "availability_zones" {
  description = "Exactly three availability zones of the region, e.g. [\"eu-west-2a\", \"eu-west-2b\", \"eu-west-2c\"]."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3 && length(distinct(var.availability_zones)) == 3
    error_message = "availability_zones must name three distinct zones (MSK, EKS and ClickHouse spread over three)."
  }
}

variable "enable_nat_gateway" {
  description = "Give the private subnets outbound internet through one NAT gateway per zone (container images, OS updates). Off = endpoints only."
  type        = bool
  default     = true
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints, so their traffic never leaves the VPC."
  type        = set(string)
  default     = ["ecr.api", "ecr.dkr", "sts", "kms", "logs", "secretsmanager", "aps-workspaces", "ec2", "elasticloadbalancing", "ssm", "ssmmessages", "ec2messages"]
}

variable "flow_log_retention_days" {
  description = "Retention of VPC flow logs in CloudWatch."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a CloudWatch retention value of at least 365 days."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key that encrypts the flow log group (the kms module's audit key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
