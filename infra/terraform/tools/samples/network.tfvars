name_prefix        = "vigil-prod-eu-zone-a"
availability_zones = ["eu-west-2a", "eu-west-2b", "eu-west-2c"]
log_kms_key_arn    = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
