output "bucket_arns" {
  description = "ARN per archive: raw and audit_checkpoints (the eks module grants the sink and the checkpoint signer)."
  value       = { for k, b in aws_s3_bucket.locked : k => b.arn }
}

output "bucket_names" {
  description = "Bucket name per archive: raw and audit_checkpoints."
  value       = { for k, b in aws_s3_bucket.locked : k => b.bucket }
}

output "access_log_bucket_name" {
  description = "The bucket that receives both archives' S3 server access logs."
  value       = aws_s3_bucket.access_logs.bucket
}
