# ---------------------------------------------------------------------------------------------
# Where it runs
# ---------------------------------------------------------------------------------------------

variable "name" {
  description = "Name of this deployment: prefixes every resource (e.g. media-pipeline, media-pipeline-staging)."
  type        = string
  default     = "media-pipeline"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name))
    error_message = "name must be 3-24 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

# ---------------------------------------------------------------------------------------------
# Packaging (make build writes build/; see scripts/build.py)
# ---------------------------------------------------------------------------------------------

variable "build_dir" {
  description = "Directory with the packages from `make build`, which writes <runtime>-<architecture>/<name>.zip for every function and layer. Defaults to build/ at the repository root."
  type        = string
  default     = null
}

variable "lambda_runtime" {
  description = "Python runtime of every function; the layers must be built for it (make build LAMBDA_RUNTIME=...)."
  type        = string
  default     = "python3.13"
  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.11, python3.12 or python3.13."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of every function: arm64 (cheaper per GB-second) or x86_64. The layers must be built for it."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "powertools_layer_arn" {
  description = "ARN of AWS's published Powertools for AWS Lambda (Python) layer for this region, runtime and architecture. null builds and publishes the layer from layers/powertools/."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Uploads and renditions
# ---------------------------------------------------------------------------------------------

variable "upload_prefix" {
  description = "Key prefix under which uploads are processed (the EventBridge rule matches it)."
  type        = string
  default     = "uploads/"
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.upload_prefix))
    error_message = "upload_prefix must be a non-empty key prefix ending in '/'."
  }
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to upload to the uploads bucket with presigned POSTs. Empty: no CORS."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for o in var.cors_allowed_origins : o == "*" || can(regex("^https?://[^/]+$", o))])
    error_message = "Each origin must be scheme://host[:port] without a path."
  }
}

variable "max_upload_bytes" {
  description = "Largest object the workers will process; larger uploads end FAILED (too_large) before any download."
  type        = number
  default     = 26214400
  validation {
    condition     = var.max_upload_bytes >= 1024 && var.max_upload_bytes <= 1073741824
    error_message = "max_upload_bytes must be between 1 KiB and 1 GiB."
  }
}

variable "max_pixels" {
  description = "Largest image (width x height, read from the header before decoding) the workers will decode."
  type        = number
  default     = 50000000
  validation {
    condition     = var.max_pixels >= 1000000 && var.max_pixels <= 500000000
    error_message = "max_pixels must be between 1 and 500 megapixels."
  }
}

variable "renditions" {
  description = "Renditions to make: name => longest edge in pixels. Never upscaled."
  type        = map(number)
  default     = { large = 1024, medium = 512, small = 128 }
  validation {
    condition     = length(var.renditions) > 0 && alltrue([for n, px in var.renditions : can(regex("^[a-z][a-z0-9_-]*$", n)) && px >= 16 && px <= 8192])
    error_message = "renditions needs at least one entry; names lowercase ([a-z][a-z0-9_-]*), sizes 16-8192 px."
  }
}

variable "cropped_renditions" {
  description = "Cropped renditions: name => { edge = longest edge in px, aspect = \"WxH\" (e.g. \"1x1\", \"16x9\"), upscale = enlarge small pictures to the full size (default false) }. Cut around the image's point of interest (found, or set per image with PATCH /images/{id}); names shared with renditions are not allowed."
  type = map(object({
    edge    = number
    aspect  = string
    upscale = optional(bool, false)
  }))
  default = {}
  validation {
    condition     = alltrue([for n, c in var.cropped_renditions : can(regex("^[a-z][a-z0-9_-]*$", n)) && c.edge >= 16 && c.edge <= 8192 && can(regex("^[1-9][0-9]{0,3}x[1-9][0-9]{0,3}$", c.aspect))])
    error_message = "cropped_renditions: names lowercase ([a-z][a-z0-9_-]*), edge 16-8192 px, aspect \"WxH\" with whole numbers from 1 to 9999."
  }
  validation {
    condition     = length(setintersection(keys(var.cropped_renditions), keys(var.renditions))) == 0
    error_message = "cropped_renditions and renditions must not share a name."
  }
}

variable "jpeg_quality" {
  description = "JPEG quality of opaque renditions (1-95)."
  type        = number
  default     = 82
  validation {
    condition     = var.jpeg_quality >= 1 && var.jpeg_quality <= 95
    error_message = "jpeg_quality must be between 1 and 95."
  }
}

variable "webp_quality" {
  description = "WebP quality of renditions with transparency (1-100)."
  type        = number
  default     = 80
  validation {
    condition     = var.webp_quality >= 1 && var.webp_quality <= 100
    error_message = "webp_quality must be between 1 and 100."
  }
}

variable "rendition_formats" {
  description = "Encoding of renditions: opaque images as JPEG, WEBP or AVIF; images with transparency as WEBP, PNG or AVIF."
  type = object({
    opaque = optional(string, "JPEG")
    alpha  = optional(string, "WEBP")
  })
  default  = {}
  nullable = false
  validation {
    condition     = contains(["JPEG", "WEBP", "AVIF"], var.rendition_formats.opaque)
    error_message = "rendition_formats.opaque must be JPEG, WEBP or AVIF."
  }
  validation {
    condition     = contains(["WEBP", "PNG", "AVIF"], var.rendition_formats.alpha)
    error_message = "rendition_formats.alpha must be WEBP, PNG or AVIF (formats that keep transparency)."
  }
}

variable "extra_formats" {
  description = "Formats every rendition is also made in, for the browsers that take them (a <picture>'s sources), in order of preference: AVIF, WEBP, both or none. Each costs its encode time and one PUT per rendition (docs/operations.md, \"Capacity\"); make reprocess adds a new one to older images."
  type        = list(string)
  default     = []
  nullable    = false
  validation {
    condition     = alltrue([for f in var.extra_formats : contains(["AVIF", "WEBP"], f)]) && length(distinct(var.extra_formats)) == length(var.extra_formats)
    error_message = "extra_formats: distinct values of AVIF and WEBP."
  }
}

variable "duplicates" {
  description = "What the pipeline does when an image's picture is the same as (or nearly the same as: re-encoded, resized, slightly cropped) an earlier image of the same app: \"record\" (the image names it, `duplicate_of`), \"reject\" (the image ends FAILED `duplicate`) or \"off\" (nothing is looked up). Found through the duplicates table, never a scan (docs/operations.md, \"Duplicates\")."
  type        = string
  default     = "record"
  nullable    = false
  validation {
    condition     = contains(["record", "reject", "off"], var.duplicates)
    error_message = "duplicates: one of record, reject, off."
  }
}

variable "avif_quality" {
  description = "AVIF quality of renditions when a rendition format is AVIF (1-100)."
  type        = number
  default     = 60
  validation {
    condition     = var.avif_quality >= 1 && var.avif_quality <= 100
    error_message = "avif_quality must be between 1 and 100."
  }
}

variable "include_gps" {
  description = "Record an image's GPS position in its metadata. Off by default: only whether it has one (a privacy choice; renditions never carry EXIF either way)."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------

variable "workers" {
  description = "Sizing of the two SQS-driven workers. Queue visibility timeouts are derived (6x timeout). The thumbnail worker takes one image per invocation by default: a decode that runs past the timeout kills the whole invocation, and with one record per batch it takes no other image with it (Lambda bills per request about 0.2 USD per million: nothing next to the decode's duration). maximum_concurrency (2-1000) caps a worker's concurrent invocations; unset, Lambda scales it up to 1,250 per queue in standard mode, within the account's concurrency. provisioned_pollers ({minimum, maximum}) switches a queue's mapping to provisioned mode, for more than that (docs/operations.md, \"Capacity\")."
  type = object({
    thumbnail = optional(object({
      memory_size          = optional(number, 1024)
      timeout              = optional(number, 60)
      batch_size           = optional(number, 1)
      batching_window      = optional(number, 0)
      maximum_concurrency  = optional(number)
      provisioned_pollers  = optional(object({ minimum = number, maximum = number }))
      reserved_concurrency = optional(number)
    }), {})
    metadata = optional(object({
      memory_size          = optional(number, 512)
      timeout              = optional(number, 30)
      batch_size           = optional(number, 10)
      batching_window      = optional(number, 0)
      maximum_concurrency  = optional(number)
      provisioned_pollers  = optional(object({ minimum = number, maximum = number }))
      reserved_concurrency = optional(number)
    }), {})
  })
  default = {}
}

variable "max_receive_count" {
  description = "Deliveries of a job before it moves to its DLQ (transient failures are retried this often)."
  type        = number
  default     = 5
  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 100
    error_message = "max_receive_count must be between 1 and 100."
  }
}

variable "retry_base_seconds" {
  description = "A job that failed with a transient error is retried after about this long, doubling with each delivery (with jitter), at most the queue's visibility timeout. One given back for lack of time is retried at once."
  type        = number
  default     = 10
  validation {
    condition     = var.retry_base_seconds >= 0 && var.retry_base_seconds <= 900
    error_message = "retry_base_seconds must be between 0 and 900."
  }
}

variable "reconciler" {
  description = "The scheduled reconciler: how often it runs, when an item counts as stuck (default: the jobs' whole retry window plus 5 minutes), how often a stuck item's jobs are re-sent before it is FAILED, and its sizing."
  type = object({
    schedule            = optional(string, "rate(5 minutes)")
    stuck_after_seconds = optional(number)
    max_requeues        = optional(number, 2)
    memory_size         = optional(number, 256)
    timeout             = optional(number, 120)
  })
  default = {}
  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.reconciler.schedule))
    error_message = "reconciler.schedule must be an EventBridge schedule expression: rate(...) or cron(...)."
  }
  validation {
    condition     = var.reconciler.stuck_after_seconds == null || try(var.reconciler.stuck_after_seconds >= 60, false)
    error_message = "reconciler.stuck_after_seconds must be at least 60 (or unset for the derived default)."
  }
  validation {
    condition     = var.reconciler.max_requeues >= 0 && var.reconciler.max_requeues <= 10
    error_message = "reconciler.max_requeues must be between 0 and 10."
  }
}

# ---------------------------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------------------------

variable "notifier" {
  description = "The stream-driven notifier: function sizing, batch size, batches of one stream shard in flight at once (parallelization_factor, 1-10: a busy partition's shard carries hundreds of records a second; an image's records stay in order whatever the factor), retries, bisection and maximum record age."
  type = object({
    memory_size            = optional(number, 256)
    timeout                = optional(number, 30)
    batch_size             = optional(number, 25)
    batching_window        = optional(number, 0)
    parallelization_factor = optional(number, 10)
    maximum_retry_attempts = optional(number, 5)
    maximum_record_age     = optional(number, 3600)
  })
  default = {}
  validation {
    condition     = var.notifier.parallelization_factor >= 1 && var.notifier.parallelization_factor <= 10
    error_message = "notifier.parallelization_factor must be between 1 and 10."
  }
  validation {
    condition     = var.notifier.maximum_retry_attempts >= 0 && var.notifier.maximum_retry_attempts <= 10000
    error_message = "notifier.maximum_retry_attempts must be between 0 and 10000."
  }
  validation {
    condition     = var.notifier.maximum_record_age == -1 || (var.notifier.maximum_record_age >= 60 && var.notifier.maximum_record_age <= 604800)
    error_message = "notifier.maximum_record_age must be -1 (unlimited) or 60-604800 seconds."
  }
}

variable "app_events_filter_policy" {
  description = "SNS filter policy (on message attributes) of the app events queue subscription."
  type        = any
  default     = { type = ["image.ready", "image.failed", "image.deleted", "image.updated"] }
}

variable "email_subscriptions" {
  description = "Email addresses subscribed to the media-events topic (each must confirm)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for e in var.email_subscriptions : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Each email subscription must be an email address."
  }
}

variable "https_subscriptions" {
  description = "HTTPS endpoints subscribed to the media-events topic (each must confirm)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for u in var.https_subscriptions : can(regex("^https://", u))])
    error_message = "HTTPS subscriptions must use https:// URLs (TLS only)."
  }
}

# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of every function's logs, in days."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing of the functions: Active or PassThrough."
  type        = string
  default     = "Active"
  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified by the DLQ alarms."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for buckets, tables and the topic. null: AWS-managed encryption (SSE-S3, DynamoDB's AWS-managed key, alias/aws/sns)."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Upload API (terraform/api.tf)
# ---------------------------------------------------------------------------------------------

variable "api" {
  description = "The upload API: stage, function sizing, presigned URL lifetimes (seconds), usage plan throttle (requests/s, burst) and quota (requests per DAY, WEEK or MONTH), execution logging level (OFF, ERROR, INFO), and whether to set the account's API Gateway CloudWatch role (one setting per account and region, shared by every API in it: off by default so that this stack never takes it over; turn it on only where nothing else manages it, docs/deploy.md)."
  type = object({
    stage_name                  = optional(string, "v1")
    memory_size                 = optional(number, 256)
    timeout                     = optional(number, 10)
    upload_expiry_seconds       = optional(number, 900)
    download_expiry_seconds     = optional(number, 900)
    throttle_rate_limit         = optional(number, 50)
    throttle_burst_limit        = optional(number, 100)
    quota_limit                 = optional(number, 100000)
    quota_period                = optional(string, "MONTH")
    logging_level               = optional(string, "ERROR")
    manage_account_logging_role = optional(bool, false)
  })
  default = {}
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.api.stage_name))
    error_message = "api.stage_name must be 1-64 letters, digits, hyphens or underscores."
  }
  validation {
    condition     = var.api.upload_expiry_seconds >= 60 && var.api.upload_expiry_seconds <= 3600
    error_message = "api.upload_expiry_seconds must be between 60 and 3600 (a short-lived presigned POST)."
  }
  validation {
    condition     = var.api.download_expiry_seconds >= 60 && var.api.download_expiry_seconds <= 43200
    error_message = "api.download_expiry_seconds must be between 60 and 43200 (presigned GETs signed by the function's role cannot outlive its session anyway)."
  }
  validation {
    condition     = contains(["DAY", "WEEK", "MONTH"], var.api.quota_period)
    error_message = "api.quota_period must be DAY, WEEK or MONTH."
  }
  validation {
    condition     = contains(["OFF", "ERROR", "INFO"], var.api.logging_level)
    error_message = "api.logging_level must be OFF, ERROR or INFO."
  }
  validation {
    condition     = var.api.throttle_rate_limit > 0 && var.api.throttle_burst_limit >= 1 && var.api.quota_limit >= 1
    error_message = "api throttle and quota limits must be positive."
  }
}

variable "api_cognito_user_pool_arns" {
  description = "Cognito user pools whose ID tokens the upload API also requires (Authorization header), on top of the API key. Empty: API key only. AWS only (LocalStack community and moto have no Cognito authorizers)."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Production monitoring (monitoring.tf)
# ---------------------------------------------------------------------------------------------

variable "monitoring" {
  description = "Production monitoring: an encrypted alarm topic, alarms on function errors and throttles, job backlog age and the notifier's iterator age, and a CloudWatch dashboard. The DLQ alarms exist either way and also notify the topic when this is on."
  type        = bool
  default     = false
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic (monitoring = true; each must confirm)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for e in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Each alarm email must be an email address."
  }
}

variable "alarm_thresholds" {
  description = "When the monitoring alarms fire: errors per function in 5 minutes above function_errors; oldest job older than oldest_job_seconds; notifier iterator age above iterator_age_seconds (both sustained for 10 minutes)."
  type = object({
    function_errors      = optional(number, 0)
    oldest_job_seconds   = optional(number, 900)
    iterator_age_seconds = optional(number, 300)
  })
  default  = {}
  nullable = false
}

# ---------------------------------------------------------------------------------------------
# The image lifecycle (docs/operations.md, "Deleting and reprocessing images")
# ---------------------------------------------------------------------------------------------

variable "uploads_versioning" {
  description = "Object versioning of the uploads bucket: a deleted or overwritten original stays restorable as a noncurrent version for noncurrent_days, then expires. Off by default (a demo keeps nothing); on in terraform/envs/prod.tfvars.example."
  type = object({
    enabled         = optional(bool, false)
    noncurrent_days = optional(number, 30)
  })
  default = {}
  validation {
    condition     = var.uploads_versioning.noncurrent_days >= 1
    error_message = "uploads_versioning.noncurrent_days must be at least 1."
  }
}

variable "deleted_retention_days" {
  description = "How long the item of a deleted image is kept (GET /images/{id} answers 404 with the time of deletion) before DynamoDB's TTL removes it."
  type        = number
  default     = 7
  validation {
    condition     = var.deleted_retention_days >= 1 && var.deleted_retention_days <= 365
    error_message = "deleted_retention_days must be between 1 and 365."
  }
}

# ---------------------------------------------------------------------------------------------
# Migrations
# ---------------------------------------------------------------------------------------------

variable "legacy_indexes" {
  description = "Keep the media table's indexes of the design before the sharded ones (`pending`, `owner`) beside the new ones. Only for moving a deployment made before it: apply with true, run `make migrate`, then apply with false (docs/deploy.md, \"Migrating to the sharded indexes\")."
  type        = bool
  default     = false
  nullable    = false
}

# ---------------------------------------------------------------------------------------------
# Serving renditions (cdn.tf; docs/deploy.md, "The CDN")
# ---------------------------------------------------------------------------------------------

variable "cdn" {
  description = <<-EOT
    CloudFront in front of the renditions bucket. enabled: on by default (off: S3 presigned GETs).
    private: signed URLs (default) or public, unsigned ones. public_keys: key id -> PEM public key
    (scripts/cdn_keys.py makes a pair and keeps the private key in SSM); at most two, for a
    rotation. signing_key: the id the API and the notifier sign with. url_window_seconds: URLs
    handed out within one window are the same (browsers cache them) and work for one to two.
    domain_name and certificate_arn (ACM, us-east-1): a custom domain. price_class, logging_bucket
    (a log bucket's domain name), web_acl_id: as CloudFront has them.
  EOT
  type = object({
    enabled            = optional(bool, true)
    private            = optional(bool, true)
    public_keys        = optional(map(string), {})
    signing_key        = optional(string)
    url_window_seconds = optional(number, 86400)
    domain_name        = optional(string)
    certificate_arn    = optional(string)
    price_class        = optional(string, "PriceClass_100")
    logging_bucket     = optional(string)
    web_acl_id         = optional(string)
  })
  default  = {}
  nullable = false
  validation {
    condition     = !(var.cdn.enabled && var.cdn.private) || try(contains(keys(var.cdn.public_keys), var.cdn.signing_key), false)
    error_message = "A private CDN (the default) signs URLs: give cdn.public_keys (make a pair with scripts/cdn_keys.py) and cdn.signing_key, one of their ids; or set cdn.private = false (public URLs) or cdn.enabled = false (S3 presigned GETs). docs/deploy.md, \"The CDN\"."
  }
  validation {
    condition     = length(var.cdn.public_keys) <= 2 && alltrue([for id in keys(var.cdn.public_keys) : can(regex("^[A-Za-z0-9_-]{1,64}$", id))])
    error_message = "cdn.public_keys: at most two keys (the current one and, during a rotation, the next), with ids of letters, digits, - and _."
  }
  validation {
    condition     = var.cdn.url_window_seconds >= 60 && var.cdn.url_window_seconds <= 604800
    error_message = "cdn.url_window_seconds must be between 60 and 604800 (7 days)."
  }
  validation {
    condition     = (var.cdn.domain_name == null) == (var.cdn.certificate_arn == null)
    error_message = "cdn.domain_name and cdn.certificate_arn go together (an ACM certificate in us-east-1 for that domain)."
  }
  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.cdn.price_class)
    error_message = "cdn.price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}
