output "log_group_names" {
  description = "Log group name per key (msk, redis, services, clickhouse, ampworkspace)."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "log_group_arns" {
  description = "Log group ARN per key."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.arn }
}

output "amp_workspace_id" {
  description = "The Amazon Managed Prometheus workspace's id."
  value       = aws_prometheus_workspace.this.id
}

output "amp_workspace_arn" {
  description = "The workspace's ARN (the eks module grants remote write on it)."
  value       = aws_prometheus_workspace.this.arn
}

output "amp_remote_write_url" {
  description = "Remote-write URL for the in-cluster collector."
  value       = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/remote_write"
}

output "alerts_topic_arn" {
  description = "SNS topic that receives Vigil's operational alerts."
  value       = aws_sns_topic.alerts.arn
}
