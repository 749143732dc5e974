name_prefix                = "vigil-prod-eu-zone-a"
vpc_id                     = "vpc-0123456789abcdef0"
vpc_cidr_block             = "10.40.0.0/16"
subnet_ids                 = ["subnet-1", "subnet-2", "subnet-3"]
client_cidr_blocks         = ["10.40.0.0/16"]
kms_key_arn                = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
secrets_kms_key_arn        = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
tls_certificate_secret_arn = "arn:aws:secretsmanager:eu-west-2:111111111111:secret:example/clickhouse-tls-AbCdEf"
