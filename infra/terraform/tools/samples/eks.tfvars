name_prefix             = "vigil-prod-eu-zone-a"
vpc_id                  = "vpc-0123456789abcdef0"
subnet_ids              = ["subnet-1", "subnet-2", "subnet-3"]
admin_cidr_blocks       = ["10.10.0.0/24"]
secrets_kms_key_arn     = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
node_volume_kms_key_arn = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
log_kms_key_arn         = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
amp_workspace_arn       = "arn:aws:aps:eu-west-2:111111111111:workspace/ws-00000000-0000-0000-0000-000000000000"
msk = {
  cluster_arn  = "arn:aws:kafka:eu-west-2:111111111111:cluster/vigil-prod-eu-zone-a-vigil/00000000-0000-0000-0000-000000000000-1"
  cluster_name = "vigil-prod-eu-zone-a-vigil"
  cluster_uuid = "00000000-0000-0000-0000-000000000000-1"
}
archive_bucket_arns = {
  raw               = "arn:aws:s3:::example-hosp-vigil-prod-eu-zone-a-raw-archive"
  audit_checkpoints = "arn:aws:s3:::example-hosp-vigil-prod-eu-zone-a-audit-checkpoints"
}
kms_key_arns = {
  telemetry = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
  clinical  = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
  audit     = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
  secrets   = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
}
registry_secret_arns = ["arn:aws:secretsmanager:eu-west-2:111111111111:secret:AmazonMSK_vigil_registry-AbCdEf"]
