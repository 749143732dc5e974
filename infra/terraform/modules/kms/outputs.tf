output "key_arns" {
  description = "Key ARN per data class, e.g. key_arns[\"clinical\"]."
  value       = { for class, key in aws_kms_key.this : class => key.arn }
}

output "key_ids" {
  description = "Key id per data class."
  value       = { for class, key in aws_kms_key.this : class => key.key_id }
}

output "alias_names" {
  description = "Alias per data class (alias/<prefix>-<class>)."
  value       = { for class, alias in aws_kms_alias.this : class => alias.name }
}
