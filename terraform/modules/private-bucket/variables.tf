variable "name" {
  description = "Globally unique bucket name."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)."
  }
}

variable "kms_key_arn" {
  description = "KMS key for default encryption (SSE-KMS with a bucket key); null for SSE-S3 (AES-256)."
  type        = string
  default     = null
}

variable "eventbridge_notifications" {
  description = "Send this bucket's object events to EventBridge (the default bus)."
  type        = bool
  default     = false
}

variable "cors_allowed_origins" {
  description = "Origins allowed to POST (presigned POST uploads from browsers) and GET; empty disables CORS."
  type        = list(string)
  default     = []
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which incomplete multipart uploads are aborted (and their parts deleted)."
  type        = number
  default     = 1
  validation {
    condition     = var.abort_incomplete_multipart_days >= 1
    error_message = "abort_incomplete_multipart_days must be at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "With versioning on, days after which noncurrent versions are deleted."
  type        = number
  default     = 30
}

variable "versioning" {
  description = "Enable object versioning."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete a non-empty bucket (for disposable stacks only)."
  type        = bool
  default     = false
}

variable "cloudfront_reader" {
  description = "A CloudFront distribution that may read the bucket's objects through Origin Access Control: its service principal may GetObject on the condition of this distribution ARN as SourceArn. enabled is known before apply (a count depends on it), the ARN may not be."
  type = object({
    enabled          = bool
    distribution_arn = optional(string)
  })
  default = { enabled = false }
  validation {
    condition     = !var.cloudfront_reader.enabled || var.cloudfront_reader.distribution_arn != null
    error_message = "cloudfront_reader.distribution_arn is needed when enabled."
  }
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
