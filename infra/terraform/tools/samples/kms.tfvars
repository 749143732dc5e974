name_prefix         = "vigil-prod-eu-zone-a"
key_admin_role_arns = ["arn:aws:iam::111111111111:role/break-glass"]
