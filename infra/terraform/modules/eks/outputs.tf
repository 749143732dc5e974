output "cluster_name" {
  description = "The EKS cluster's name."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The private API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA bundle of the API endpoint."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "The security group EKS created for the cluster and its nodes (MSK, Redis and ClickHouse allow clients from the VPC range)."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "The IRSA OIDC provider."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "service_account_role_arns" {
  description = "IAM role per service account: annotate each with eks.amazonaws.com/role-arn (the Helm chart's serviceAccount.roleArn values)."
  value       = { for sa, role in aws_iam_role.irsa : sa => role.arn }
}
