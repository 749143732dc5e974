name_prefix           = "vigil-prod-eu-zone-a"
log_kms_key_arn       = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
metrics_kms_key_arn   = "arn:aws:kms:eu-west-2:111111111111:key/00000000-0000-0000-0000-000000000000"
prometheus_rules_yaml = "groups:\n  - name: vigil\n    rules: []\n"
alert_subscriptions   = [{ protocol = "https", endpoint = "https://oncall.example.org/hooks/vigil" }]
