terraform {
  required_version = ">= 1.9.0" # variable validations that refer to other variables (region pinning)

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # State holds generated secrets (Redis token, SCRAM and ClickHouse passwords): keep it in an encrypted,
  # versioned, access-controlled bucket of the same residency zone. Partial configuration: see backend.hcl.example.
  backend "s3" {}
}
