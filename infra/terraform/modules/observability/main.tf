# Observability for Vigil: CloudWatch log groups (MSK broker logs, ElastiCache logs, the services', ClickHouse's and
# the Prometheus workspace's own), encrypted and kept a year; an Amazon Managed Prometheus workspace that the
# in-cluster collector writes to, with Vigil's operational rules (infra/prometheus/rules.yml, the same file
# promtool tests) loaded as a rule group namespace; and an Alertmanager definition that sends them to an encrypted
# SNS topic for on-call. Operational alerts only: clinical alerts travel on their own topic.

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  for_each = var.log_groups

  name              = "/vigil/${var.name_prefix}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_prometheus_workspace" "this" {
  alias       = "${var.name_prefix}-vigil"
  kms_key_arn = var.metrics_kms_key_arn

  logging_configuration {
    log_group_arn = "${aws_cloudwatch_log_group.this["ampworkspace"].arn}:*"
  }

  tags = var.tags
}

resource "aws_prometheus_rule_group_namespace" "vigil" {
  name         = "vigil"
  workspace_id = aws_prometheus_workspace.this.id
  data         = var.prometheus_rules_yaml
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-vigil-ops-alerts"
  kms_master_key_id = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "alerts" {
  count = length(var.alert_subscriptions)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = var.alert_subscriptions[count.index].protocol
  endpoint  = var.alert_subscriptions[count.index].endpoint
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "AmpPublishes"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["aps.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_prometheus_workspace.this.arn]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

# Alertmanager in the workspace: pages and tickets both go to the on-call topic, with the severity as the subject
# (routes by the rules' `severity` label: page | ticket).
resource "aws_prometheus_alert_manager_definition" "this" {
  workspace_id = aws_prometheus_workspace.this.id
  definition   = <<-YAML
    alertmanager_config: |
      route:
        receiver: vigil-oncall
        group_by: [alertname, pipeline]
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h
      receivers:
        - name: vigil-oncall
          sns_configs:
            - topic_arn: ${aws_sns_topic.alerts.arn}
              sigv4:
                region: ${data.aws_region.current.region}
              subject: 'Vigil {{ .CommonLabels.severity }}: {{ .CommonLabels.alertname }}'
  YAML
}
