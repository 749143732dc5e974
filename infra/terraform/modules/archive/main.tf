# The archive: two S3 buckets with Object Lock in compliance mode — the raw archive (the device's bytes as received,
# the evidence a signature is re-verified from) and the audit log's signed checkpoints — plus a bucket for their
# access logs. Both locked buckets are versioned, encrypted with their data class's key (bucket keys on), closed to
# the public, refuse plain HTTP and unencrypted uploads, log every access, and announce writes to EventBridge.
# Compliance mode means nobody, the account root included, can delete or overwrite a locked version before its
# retention ends: erasure of a subject's data is crypto-shredding (README.md), never a delete.

data "aws_caller_identity" "current" {}

locals {
  locked = {
    raw = {
      name           = "${var.name_prefix}-raw-archive"
      kms_key_arn    = var.telemetry_kms_key_arn
      retention_days = var.raw_retention_days
    }
    audit_checkpoints = {
      name           = "${var.name_prefix}-audit-checkpoints"
      kms_key_arn    = var.audit_kms_key_arn
      retention_days = var.checkpoint_retention_days
    }
  }
}

# --- access logs -------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18: this is the access-log target itself; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144: cross-region replication would move logs out of the residency zone; the bucket is versioned and locked instead.
  #checkov:skip=CKV_AWS_145: S3 server access logging delivers only to buckets with SSE-S3 default encryption, not SSE-KMS.
  #checkov:skip=CKV2_AWS_62: nothing consumes events of the log bucket; CloudTrail data events cover it.
  #checkov:skip=CKV_AWS_143: S3 server access logging refuses a target bucket with a default Object Lock retention; the logs are versioned, and deletes of this bucket's objects are CloudTrail data events.
  bucket = "${var.name_prefix}-archive-access-logs"
  tags   = merge(var.tags, { "vigil:data-class" = "audit" })
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days + 1
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json
}

# --- the locked buckets ------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "locked" {
  #checkov:skip=CKV_AWS_144: cross-region replication would copy PHI-bearing evidence out of its residency zone; durability comes from S3's multi-AZ storage, versioning and Object Lock. Add a replica inside the zone's allowed regions where policy permits.
  for_each = local.locked

  bucket              = each.value.name
  object_lock_enabled = true
  tags                = merge(var.tags, { "vigil:archive" = each.key })
}

resource "aws_s3_bucket_versioning" "locked" {
  for_each = local.locked

  bucket = aws_s3_bucket.locked[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "locked" {
  for_each = local.locked

  bucket = aws_s3_bucket.locked[each.key].id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = each.value.retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.locked]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "locked" {
  for_each = local.locked

  bucket = aws_s3_bucket.locked[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = each.value.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "locked" {
  for_each = local.locked

  bucket                  = aws_s3_bucket.locked[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "locked" {
  for_each = local.locked

  bucket = aws_s3_bucket.locked[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "locked" {
  for_each = local.locked

  bucket        = aws_s3_bucket.locked[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"
}

# Versions are never expired by lifecycle (Object Lock would refuse it before retention ends anyway); the rule only
# moves old objects to cheaper storage and cleans up abandoned multipart uploads.
resource "aws_s3_bucket_lifecycle_configuration" "locked" {
  for_each = local.locked

  bucket = aws_s3_bucket.locked[each.key].id
  rule {
    id     = "tier-and-clean"
    status = "Enabled"
    filter {}
    transition {
      days          = 90
      storage_class = "GLACIER_IR"
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_notification" "locked" {
  for_each = local.locked

  bucket      = aws_s3_bucket.locked[each.key].id
  eventbridge = true
}

data "aws_iam_policy_document" "locked" {
  for_each = local.locked

  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.locked[each.key].arn, "${aws_s3_bucket.locked[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyUploadsWithoutTheClassKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.locked[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [each.value.kms_key_arn]
    }
  }

  dynamic "statement" {
    for_each = var.s3_vpc_endpoint_id == null ? [] : [var.s3_vpc_endpoint_id]
    content {
      sid       = "WritesOnlyThroughTheVpcEndpoint"
      effect    = "Deny"
      actions   = ["s3:PutObject", "s3:PutObjectRetention", "s3:PutObjectLegalHold"]
      resources = ["${aws_s3_bucket.locked[each.key].arn}/*"]
      principals {
        type        = "*"
        identifiers = ["*"]
      }
      condition {
        test     = "StringNotEquals"
        variable = "aws:SourceVpce"
        values   = [statement.value]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "locked" {
  for_each = local.locked

  bucket = aws_s3_bucket.locked[each.key].id
  policy = data.aws_iam_policy_document.locked[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.locked]
}
