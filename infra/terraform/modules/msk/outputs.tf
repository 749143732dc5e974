output "cluster_arn" {
  description = "The MSK cluster's ARN."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "The MSK cluster's name."
  value       = aws_msk_cluster.this.cluster_name
}

output "cluster_uuid" {
  description = "The cluster's UUID, part of topic and group ARNs in IAM policies (eks module)."
  value       = aws_msk_cluster.this.cluster_uuid
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap servers for IAM (OAUTHBEARER) clients: Vigil's services on EKS."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap servers for SCRAM-SHA-512 clients: the schema registry and operators' tools."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "security_group_id" {
  description = "The brokers' security group."
  value       = aws_security_group.brokers.id
}

output "scram_secret_arns" {
  description = "Secrets Manager ARN of each SCRAM user's credentials (the value never leaves Secrets Manager through Terraform outputs)."
  value       = { for user, secret in aws_secretsmanager_secret.scram : user => secret.arn }
}

output "topics" {
  description = "Vigil's topics with partitions and configs, for the creation step in README.md."
  value       = var.topics
}

output "topic_create_commands" {
  description = "One kafka-topics.sh command per topic, run from inside the VPC with an IAM client config (README.md)."
  value = [
    for name, t in var.topics : join(" ", concat(
      ["kafka-topics.sh --bootstrap-server \"$BOOTSTRAP\" --command-config client-iam.properties --create --if-not-exists",
      "--topic ${name} --partitions ${t.partitions} --replication-factor 3"],
      [for k, v in t.config : "--config ${k}=${v}"]
    ))
  ]
}
