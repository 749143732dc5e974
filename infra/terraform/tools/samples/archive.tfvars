name_prefix           = "example-hosp-vigil-prod-eu-zone-a"
telemetry_kms_key_arn = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
audit_kms_key_arn     = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
s3_vpc_endpoint_id    = "vpce-0123456789abcdef0"
