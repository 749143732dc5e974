# EKS for the schema registry and Vigil's services (gateways, workers, sinks, the checkpoint signer): a private API
# endpoint only, Kubernetes secrets encrypted with the secrets key, every control-plane log type kept a year, nodes
# with IMDSv2 and encrypted disks in the private subnets, and one IAM role per service account (IRSA) granting
# exactly the topics, buckets and keys that service uses. MSK is reached with IAM auth (SASL OAUTHBEARER), so no
# Kafka password exists for Vigil's own services.

data "aws_partition" "current" {}

locals {
  cluster_name = "${var.name_prefix}-vigil"
  partition    = data.aws_partition.current.partition
  p            = var.topic_prefix == "" ? "" : "${var.topic_prefix}."

  # MSK IAM resource ARNs are the cluster's ARN with another resource type: topic/<cluster>/<uuid>/<topic>.
  topic_arn = replace(var.msk.cluster_arn, ":cluster/", ":topic/")
  group_arn = replace(var.msk.cluster_arn, ":cluster/", ":group/")
  txn_arn   = replace(var.msk.cluster_arn, ":cluster/", ":transactional-id/")

  connect = {
    sid       = "MskConnect"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [var.msk.cluster_arn]
  }
  read_topics = {
    sid       = "MskReadVigilTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:ReadData"]
    resources = ["${local.topic_arn}/${local.p}vigil.*"]
  }
  groups = {
    sid       = "MskConsumerGroups"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = ["${local.group_arn}/vigil-*", "${local.group_arn}/${local.p}vigil-*"]
  }
  transactions = {
    sid       = "MskTransactions"
    actions   = ["kafka-cluster:DescribeTransactionalId", "kafka-cluster:AlterTransactionalId"]
    resources = ["${local.txn_arn}/vigil-*", "${local.txn_arn}/${local.p}vigil-*"]
  }

  # One entry per service account of the Helm chart (infra/helm/vigil): what each may touch, nothing more.
  service_accounts = merge(local.vigil_service_accounts, local.registry_service_account)

  # The schema registry (Apicurio, kafkasql storage) authenticates to MSK with SCRAM: it reads only its own secret.
  registry_service_account = length(var.registry_secret_arns) == 0 ? {} : {
    "vigil-registry" = [
      {
        sid       = "ReadRegistryScramSecret"
        actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        resources = var.registry_secret_arns
      },
      {
        sid       = "SecretsKeyForRegistry"
        actions   = ["kms:Decrypt"]
        resources = [var.kms_key_arns["secrets"]]
      },
    ]
  }

  vigil_service_accounts = {
    "vigil-gateway" = [
      local.connect,
      {
        sid       = "MskWriteIngress"
        actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData", "kafka-cluster:WriteDataIdempotently"]
        resources = ["${local.topic_arn}/${local.p}vigil.telemetry.raw", "${local.topic_arn}/${local.p}vigil.telemetry.raw-priority", "${local.topic_arn}/${local.p}vigil.ops.gateway-rejections"]
      },
      {
        sid       = "MskFollowIdentity"
        actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
        resources = ["${local.topic_arn}/${local.p}vigil.control.device-identity"]
      },
      local.groups,
    ]
    "vigil-worker" = [
      local.connect, local.read_topics, local.groups, local.transactions,
      {
        sid       = "MskWriteOutputs"
        actions   = ["kafka-cluster:WriteData", "kafka-cluster:WriteDataIdempotently"]
        resources = ["${local.topic_arn}/${local.p}vigil.*"]
      },
      {
        # Workers create their state changelog topics themselves (runtime/endpoints.ts stateChangelogTopic).
        sid       = "MskStateChangelogs"
        actions   = ["kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData"]
        resources = ["${local.topic_arn}/${local.p}vigil.state.*"]
      },
    ]
    "vigil-sink" = [
      local.connect, local.read_topics, local.groups, local.transactions,
      {
        sid       = "ArchiveRaw"
        actions   = ["s3:PutObject", "s3:GetObject", "s3:PutObjectRetention"]
        resources = ["${var.archive_bucket_arns.raw}/*"]
      },
      {
        sid       = "TelemetryKey"
        actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
        resources = [var.kms_key_arns["telemetry"]]
      },
    ]
    "vigil-checkpoint-signer" = [
      local.connect, local.groups, local.transactions,
      {
        sid       = "MskAuditLog"
        actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData", "kafka-cluster:WriteDataIdempotently"]
        resources = ["${local.topic_arn}/${local.p}vigil.audit.log"]
      },
      {
        sid       = "ArchiveCheckpoints"
        actions   = ["s3:PutObject", "s3:GetObject", "s3:PutObjectRetention"]
        resources = ["${var.archive_bucket_arns.audit_checkpoints}/*"]
      },
      {
        sid       = "AuditKey"
        actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
        resources = [var.kms_key_arns["audit"]]
      },
    ]
    "vigil-metrics" = [
      {
        sid       = "RemoteWriteToAmp"
        actions   = ["aps:RemoteWrite", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"]
        resources = [var.amp_workspace_arn]
      },
    ]
  }

  # Every Vigil service reads its connection secrets (Redis token, ClickHouse user) at start-up.
  secret_statements = length(var.secret_arns) == 0 ? [] : [
    {
      sid       = "ReadConnectionSecrets"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = var.secret_arns
    },
    {
      sid       = "SecretsKey"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arns["secrets"]]
    },
  ]
}

# --- control plane -----------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${local.cluster_name}-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# Created before the cluster so EKS writes into a group with our key and retention, not a default one.
resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/${local.cluster_name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_security_group" "api" {
  name        = "${local.cluster_name}-api"
  description = "EKS private API endpoint: HTTPS from the admin ranges only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${local.cluster_name}-api" })
}

resource "aws_vpc_security_group_ingress_rule" "api" {
  for_each = toset(var.admin_cidr_blocks)

  security_group_id = aws_security_group.api.id
  description       = "Kubernetes API from an admin range"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_eks_cluster" "this" {
  name     = local.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  vpc_config {
    subnet_ids              = var.subnet_ids
    security_group_ids      = [aws_security_group.api.id]
    endpoint_private_access = true
    endpoint_public_access  = false
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = var.secrets_kms_key_arn
    }
  }

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

# --- nodes -------------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${local.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.key}"
}

resource "aws_launch_template" "node" {
  name_prefix = "${local.cluster_name}-node-"

  # IMDSv2 only, one hop: pods cannot reach the node's credentials, they use their own IRSA role.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.node_volume_size_gib
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.node_volume_kms_key_arn
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${local.cluster_name}-node" })
  }
}

resource "aws_eks_node_group" "this" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "${local.cluster_name}-default"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  instance_types  = var.node_instance_types

  scaling_config {
    desired_size = var.node_count.desired
    min_size     = var.node_count.min
    max_size     = var.node_count.max
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.node]

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size] # the autoscaler owns it after creation
  }
}

# --- IRSA: one role per service account --------------------------------------------------------------------------

resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.service_accounts

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.this.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${replace(aws_iam_openid_connect_provider.this.url, "https://", "")}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${replace(aws_iam_openid_connect_provider.this.url, "https://", "")}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "irsa" {
  for_each = local.service_accounts

  dynamic "statement" {
    for_each = concat(each.value, contains(["vigil-metrics", "vigil-registry"], each.key) ? [] : local.secret_statements)
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.service_accounts

  name               = "${local.cluster_name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
  tags               = var.tags
}

resource "aws_iam_role_policy" "irsa" {
  for_each = local.service_accounts

  name   = each.key
  role   = aws_iam_role.irsa[each.key].id
  policy = data.aws_iam_policy_document.irsa[each.key].json
}
