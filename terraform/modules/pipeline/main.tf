# The whole pipeline: one module, applied by one thin root, terraform/envs/aws (make plan / make
# deploy). The emulators (the embedded stack, LocalStack) apply that same root with the override
# files of terraform/envs/local: the endpoints and throwaway settings that must never reach
# production.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # make build writes every package for one runtime and architecture into one directory
  # (build/ at the repository root unless build_dir says otherwise).
  package_dir = "${coalesce(var.build_dir, "${path.module}/../../../build")}/${var.lambda_runtime}-${var.lambda_architecture}"

  # Bucket names are global: make them unique per account and region.
  bucket_suffix = "${data.aws_caller_identity.current.account_id}-${var.region}"

  # With bundle_layers, each function's zip carries its layers' contents (make bundle) and no
  # layer is published: for a Lambda that does not apply layers (LocalStack community).
  function_dir = var.bundle_layers ? "${local.package_dir}/bundled" : local.package_dir

  # AWS's published Powertools layer where given, else the one built from layers/powertools.
  # Each function's layers are those of lambdas/functions.json (tests/unit/test_build.py checks),
  # which scripts/build.py bundles into each function for bundle_layers.
  powertools_layers = var.bundle_layers ? [] : [coalesce(var.powertools_layer_arn, try(aws_lambda_layer_version.powertools[0].arn, null))]
  image_layers      = var.bundle_layers ? [] : concat([aws_lambda_layer_version.pillow[0].arn], local.powertools_layers)
  signing_layers    = var.bundle_layers ? [] : concat(local.powertools_layers, [aws_lambda_layer_version.signing[0].arn])

  powertools_env = {
    POWERTOOLS_METRICS_NAMESPACE = var.name
    POWERTOOLS_LOG_LEVEL         = "INFO"
  }

  worker_env = merge(local.powertools_env, {
    MEDIA_TABLE      = aws_dynamodb_table.media.name
    MAX_UPLOAD_BYTES = tostring(var.max_upload_bytes)
    MAX_PIXELS       = tostring(var.max_pixels)
  })

  kms_statements = var.kms_key_arn == null ? [] : [{
    sid       = "UseTheDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }]

  # What both workers need: read the uploaded object, and read and write its media item (the
  # item is also their idempotency record). ListBucket makes S3 answer 404 (not 403) for a key
  # that is gone, which the workers rely on.
  worker_statements = concat([
    {
      sid       = "ReadUploads"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["${module.uploads_bucket.arn}/${var.upload_prefix}*"]
    },
    {
      sid       = "TellMissingFromForbidden"
      actions   = ["s3:ListBucket"]
      resources = [module.uploads_bucket.arn]
    },
    {
      sid       = "UpdateMediaItems"
      actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
      resources = [aws_dynamodb_table.media.arn]
    },
  ], local.kms_statements)
}

# ---------------------------------------------------------------------------------------------
# Layers (built by `make build` for var.lambda_runtime and var.lambda_architecture)
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_layer_version" "pillow" {
  count                    = var.bundle_layers ? 0 : 1
  layer_name               = "${var.name}-pillow"
  description              = "Pillow and pillow-heif (layers/pillow/requirements.txt)"
  filename                 = "${local.package_dir}/pillow.zip"
  source_code_hash         = filebase64sha256("${local.package_dir}/pillow.zip")
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = [var.lambda_architecture]
}

resource "aws_lambda_layer_version" "signing" {
  count                    = var.bundle_layers ? 0 : 1
  layer_name               = "${var.name}-signing"
  description              = "cryptography, to sign CDN URLs (layers/signing/requirements.txt)"
  filename                 = "${local.package_dir}/signing.zip"
  source_code_hash         = filebase64sha256("${local.package_dir}/signing.zip")
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = [var.lambda_architecture]
}

resource "aws_lambda_layer_version" "powertools" {
  count                    = var.powertools_layer_arn == null && !var.bundle_layers ? 1 : 0
  layer_name               = "${var.name}-powertools"
  description              = "Powertools for AWS Lambda (layers/powertools/requirements.txt)"
  filename                 = "${local.package_dir}/powertools.zip"
  source_code_hash         = filebase64sha256("${local.package_dir}/powertools.zip")
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = [var.lambda_architecture]
}

# ---------------------------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------------------------

module "uploads_bucket" {
  source = "../private-bucket"

  name                      = "${var.name}-uploads-${local.bucket_suffix}"
  eventbridge_notifications = true
  # A deleted or overwritten original can be restored until its noncurrent version expires.
  versioning                         = var.uploads_versioning.enabled
  noncurrent_version_expiration_days = var.uploads_versioning.noncurrent_days
  cors_allowed_origins               = var.cors_allowed_origins
  kms_key_arn                        = var.kms_key_arn
  force_destroy                      = var.disposable
}

# Renditions live in their own bucket: nothing written there can match the uploads rule.
module "renditions_bucket" {
  source = "../private-bucket"

  name          = "${var.name}-renditions-${local.bucket_suffix}"
  kms_key_arn   = var.kms_key_arn
  force_destroy = var.disposable
  # Only the CDN reads it (Origin Access Control); without one, presigned GETs of the API's role.
  cloudfront_reader = {
    enabled          = local.cdn_enabled
    distribution_arn = local.cdn_enabled ? aws_cloudfront_distribution.renditions[0].arn : null
  }
}

# ---------------------------------------------------------------------------------------------
# S3 events -> EventBridge -> queues (fan-out happens here, not in a function)
# ---------------------------------------------------------------------------------------------

locals {
  # One rule per kind of S3 event under upload_prefix in the uploads bucket, by its name suffix.
  upload_rules = {
    created = "Object Created"
    # Originals deleted from the bucket (by the app's DELETE, by hand, by a lifecycle rule): the
    # thumbnail worker marks the image DELETED and removes its renditions (lifecycle.py).
    deleted = "Object Deleted"
  }
  # Each rule's queues, by target id: a created object goes to both workers.
  upload_targets = {
    thumbnail-jobs      = { rule = "created", queue_arn = module.thumbnail.queue_arn }
    metadata-jobs       = { rule = "created", queue_arn = module.metadata.queue_arn }
    thumbnail-deletions = { rule = "deleted", queue_arn = module.thumbnail.queue_arn }
  }
}

resource "aws_cloudwatch_event_rule" "uploads" {
  for_each = local.upload_rules

  name        = "${var.name}-object-${each.key}"
  description = "Objects ${each.key} under ${var.upload_prefix} in ${module.uploads_bucket.name}"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = [each.value]
    detail = {
      bucket = { name = [module.uploads_bucket.name] }
      object = { key = [{ prefix = var.upload_prefix }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "uploads" {
  for_each = local.upload_targets

  rule      = aws_cloudwatch_event_rule.uploads[each.value.rule].name
  target_id = each.key
  arn       = each.value.queue_arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  # Events EventBridge could not deliver (e.g. a queue policy broken by hand) are kept, not lost.
  dead_letter_config {
    arn = module.undelivered_events.arn
  }
}

module "undelivered_events" {
  source = "../queue"

  name              = "${var.name}-undelivered-events"
  retention_seconds = 1209600
  sender = {
    service     = "events.amazonaws.com"
    source_arns = [aws_cloudwatch_event_rule.uploads["created"].arn, aws_cloudwatch_event_rule.uploads["deleted"].arn]
    sid         = "AllowOnlyTheUploadsRules"
  }
  depth_alarm   = { description = "EventBridge could not deliver these upload events to a jobs queue." }
  alarm_actions = local.alarm_actions
  kms_key_arn   = var.kms_key_arn
}

# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------

# The renditions worker. Its deployed name stays "thumbnail" (the function, its queues, the
# failure stage): lambdas/media_pipeline/handlers/thumbnail.py says why.
module "thumbnail" {
  source = "../sqs-worker"

  name        = "${var.name}-thumbnail"
  description = "Renders renditions of each upload into the renditions bucket"
  function = {
    zip_file             = "${local.function_dir}/thumbnail.zip"
    handler              = "media_pipeline.handlers.thumbnail.lambda_handler"
    runtime              = var.lambda_runtime
    architecture         = var.lambda_architecture
    layers               = local.image_layers
    memory_size          = var.workers.thumbnail.memory_size
    timeout              = var.workers.thumbnail.timeout
    reserved_concurrency = var.workers.thumbnail.reserved_concurrency
    environment = merge(local.worker_env, {
      POWERTOOLS_SERVICE_NAME = "thumbnail"
      RENDITIONS_BUCKET       = module.renditions_bucket.name
      DELETED_TTL_SECONDS     = tostring(var.deleted_retention_days * 86400)
      RENDITIONS = join(",", concat(
        [for name, px in var.renditions : "${name}:${px}"],
        [for name, c in var.cropped_renditions : join(":", compact([name, c.edge, c.aspect, c.upscale ? "upscale" : ""]))],
      ))
      JPEG_QUALITY      = tostring(var.jpeg_quality)
      WEBP_QUALITY      = tostring(var.webp_quality)
      AVIF_QUALITY      = tostring(var.avif_quality)
      OPAQUE_FORMAT     = var.rendition_formats.opaque
      ALPHA_FORMAT      = var.rendition_formats.alpha
      EXTRA_FORMATS     = join(",", var.extra_formats)
      DUPLICATES_TABLE  = aws_dynamodb_table.duplicates.name
      DUPLICATES_POLICY = var.duplicates
    }, local.cdn_invalidation_env)
    policy_statements = concat(local.worker_statements, local.cdn_invalidation_statements, [
      {
        # Writes the image's band items and link, looks up its 12 bands; deletes them with
        # an original deleted in S3 (and the links of its duplicates).
        sid       = "IndexAndFindDuplicates"
        actions   = ["dynamodb:BatchWriteItem", "dynamodb:Query"]
        resources = [aws_dynamodb_table.duplicates.arn]
      },
      {
        sid       = "WriteRenditions"
        actions   = ["s3:PutObject", "s3:DeleteObject"]
        resources = ["${module.renditions_bucket.arn}/*"]
      },
      {
        sid       = "FindRenditionsOfDeletedImages"
        actions   = ["s3:ListBucket"]
        resources = [module.renditions_bucket.arn]
      },
    ])
  }

  # Upload events, and deletions of originals (lifecycle.py).
  sender = {
    service     = "events.amazonaws.com"
    source_arns = [aws_cloudwatch_event_rule.uploads["created"].arn, aws_cloudwatch_event_rule.uploads["deleted"].arn]
  }
  batch_size              = var.workers.thumbnail.batch_size
  batching_window_seconds = var.workers.thumbnail.batching_window
  maximum_concurrency     = var.workers.thumbnail.maximum_concurrency
  provisioned_pollers     = var.workers.thumbnail.provisioned_pollers
  max_receive_count       = var.max_receive_count
  retry_base_seconds      = var.retry_base_seconds
  alarm_actions           = local.alarm_actions
  log_retention_days      = var.log_retention_days
  tracing_mode            = var.tracing_mode
  kms_key_arn             = var.kms_key_arn
}

module "metadata" {
  source = "../sqs-worker"

  name        = "${var.name}-metadata"
  description = "Records what each upload is (dimensions, format, EXIF selection, hash)"
  function = {
    zip_file             = "${local.function_dir}/metadata.zip"
    handler              = "media_pipeline.handlers.metadata.lambda_handler"
    runtime              = var.lambda_runtime
    architecture         = var.lambda_architecture
    layers               = local.image_layers
    memory_size          = var.workers.metadata.memory_size
    timeout              = var.workers.metadata.timeout
    reserved_concurrency = var.workers.metadata.reserved_concurrency
    environment = merge(local.worker_env, {
      POWERTOOLS_SERVICE_NAME = "metadata"
      INCLUDE_GPS             = tostring(var.include_gps)
    })
    policy_statements = local.worker_statements
  }

  sender = {
    service     = "events.amazonaws.com"
    source_arns = [aws_cloudwatch_event_rule.uploads["created"].arn]
  }
  batch_size              = var.workers.metadata.batch_size
  batching_window_seconds = var.workers.metadata.batching_window
  maximum_concurrency     = var.workers.metadata.maximum_concurrency
  provisioned_pollers     = var.workers.metadata.provisioned_pollers
  max_receive_count       = var.max_receive_count
  retry_base_seconds      = var.retry_base_seconds
  alarm_actions           = local.alarm_actions
  log_retention_days      = var.log_retention_days
  tracing_mode            = var.tracing_mode
  kms_key_arn             = var.kms_key_arn
}

# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "media" {
  name                        = "${var.name}-media"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  stream_enabled              = true
  stream_view_type            = "NEW_AND_OLD_IMAGES"
  deletion_protection_enabled = !var.disposable

  # Every attribute that keys the table or an index (docs/operations.md, "The data design").
  # Written out, not generated: the integration tests create their table from these blocks
  # (scripts/tooling/terraform_config.py reads what is stated literally).
  attribute {
    name = "id"
    type = "S"
  }

  attribute {
    name = "waiting_shard"
    type = "S"
  }

  attribute {
    name = "waiting_since"
    type = "S"
  }

  attribute {
    name = "listing_key"
    type = "S"
  }

  attribute {
    name = "created_at"
    type = "S"
  }

  # The keys of the legacy indexes below (created_at is one of them too).
  dynamic "attribute" {
    for_each = var.legacy_indexes ? ["pending", "updated_at", "owner"] : []
    content {
      name = attribute.value
      type = "S"
    }
  }

  # Sparse: only items still waiting for a worker (AWAITING_UPLOAD, PROCESSING) carry
  # `waiting_shard` (one of 32, from the id) and `waiting_since`, so the reconciler finds the
  # stuck ones with 32 Queries, not a Scan. Keys only: the reconciler reads each item it finds,
  # and an item costs the index one write in and one out, whatever happens to it in between.
  global_secondary_index {
    name            = "waiting"
    hash_key        = "waiting_shard"
    range_key       = "waiting_since"
    projection_type = "KEYS_ONLY"
  }

  # Sparse too: items made through the upload API carry `listing_key` (the API key's id and one
  # of 16 shards), so that GET /images pages through an app's images, newest first, by merging
  # 16 Queries. Keys only: one write per image; the page's items are read by BatchGetItem.
  global_secondary_index {
    name            = "listing"
    hash_key        = "listing_key"
    range_key       = "created_at"
    projection_type = "KEYS_ONLY"
  }

  # The indexes of the design before the sharded ones, kept only while a deployment migrates
  # (var.legacy_indexes; docs/deploy.md, "Migrating to the sharded indexes").
  dynamic "global_secondary_index" {
    for_each = var.legacy_indexes ? {
      pending = { hash_key = "pending", range_key = "updated_at" }
      owner   = { hash_key = "owner", range_key = "created_at" }
    } : {}
    content {
      name            = global_secondary_index.key
      hash_key        = global_secondary_index.value.hash_key
      range_key       = global_secondary_index.value.range_key
      projection_type = "ALL"
    }
  }

  # Upload requests that are never used expire (the API sets expires_at on AWAITING_UPLOAD), and
  # so do DELETED images (lifecycle.py) once their retention is over.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

# Each app's duplicates index (duplicates_index.py; docs/operations.md, "Duplicates"): band items
# `dup#<owner>#<band>:<hex>` / image id (12 per image, the full hash and created_at projected:
# a lookup queries the new image's 12 keys, ~N/1024 entries each) and links
# `of#<owner>#<original id>` / duplicate's id (GET /images?duplicate_of=). A table of its own,
# not a GSI of the media table: the lookup reads strongly consistent right after its own writes
# (two copies at once must see each other), and its throttling never throttles the media table.
# Nothing expires: every item goes with its image (lifecycle.py).
resource "aws_dynamodb_table" "duplicates" {
  name                        = "${var.name}-duplicates"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "key"
  range_key                   = "image_id"
  deletion_protection_enabled = !var.disposable

  attribute {
    name = "key"
    type = "S"
  }

  attribute {
    name = "image_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

resource "aws_dynamodb_table" "idempotency" {
  name                        = "${var.name}-idempotency"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = !var.disposable

  attribute {
    name = "id"
    type = "S"
  }

  # The notifier's records of what it published carry their own expiry (announcer.py).
  ttl {
    attribute_name = "expiration"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

# ---------------------------------------------------------------------------------------------
# Reconciler: settles what reached a DLQ, re-enqueues what is stuck (docs/operations.md)
# ---------------------------------------------------------------------------------------------

locals {
  # A job is still legitimately being retried for up to max_receive_count visibility timeouts;
  # only past that (and a margin) is an item stuck.
  job_retry_window = var.max_receive_count * max(module.thumbnail.visibility_timeout_seconds, module.metadata.visibility_timeout_seconds)
  stuck_after      = coalesce(var.reconciler.stuck_after_seconds, local.job_retry_window + 300)
}

module "reconciler" {
  source = "../lambda-function"

  name         = "${var.name}-reconciler"
  description  = "Settles jobs that reached a DLQ and re-enqueues uploads stuck or never announced"
  zip_file     = "${local.function_dir}/reconciler.zip"
  handler      = "media_pipeline.handlers.reconciler.lambda_handler"
  runtime      = var.lambda_runtime
  architecture = var.lambda_architecture
  layers       = local.powertools_layers
  memory_size  = var.reconciler.memory_size
  timeout      = var.reconciler.timeout
  environment = merge(local.powertools_env, {
    POWERTOOLS_SERVICE_NAME = "reconciler"
    MEDIA_TABLE             = aws_dynamodb_table.media.name
    UPLOADS_BUCKET          = module.uploads_bucket.name
    UPLOAD_PREFIX           = var.upload_prefix
    THUMBNAIL_QUEUE_URL     = module.thumbnail.queue_url
    THUMBNAIL_DLQ_URL       = module.thumbnail.dlq_url
    METADATA_QUEUE_URL      = module.metadata.queue_url
    METADATA_DLQ_URL        = module.metadata.dlq_url
    STUCK_AFTER_SECONDS     = tostring(local.stuck_after)
    MAX_REQUEUES            = tostring(var.reconciler.max_requeues)
  })
  log_retention_days = var.log_retention_days
  tracing_mode       = var.tracing_mode
  kms_key_arn        = var.kms_key_arn
  policy_statements = concat([
    {
      sid       = "ReadDeadLetters"
      actions   = ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"]
      resources = [module.thumbnail.dlq_arn, module.metadata.dlq_arn]
    },
    {
      sid       = "EnqueueJobs"
      actions   = ["sqs:SendMessage"]
      resources = [module.thumbnail.queue_arn, module.metadata.queue_arn]
    },
    {
      sid       = "FindWaitingItems"
      actions   = ["dynamodb:Query"]
      resources = ["${aws_dynamodb_table.media.arn}/index/waiting"]
    },
    {
      sid       = "SettleMediaItems"
      actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
      resources = [aws_dynamodb_table.media.arn]
    },
    {
      sid       = "ReadUploads"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["${module.uploads_bucket.arn}/${var.upload_prefix}*"]
    },
    {
      sid       = "ListUploads"
      actions   = ["s3:ListBucket"]
      resources = [module.uploads_bucket.arn]
    },
  ], local.kms_statements)
}

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${var.name}-reconcile"
  description         = "Runs the reconciler: dead letters settled, stuck items re-enqueued"
  schedule_expression = var.reconciler.schedule
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule = aws_cloudwatch_event_rule.reconcile.name
  arn  = module.reconciler.function_arn
}

resource "aws_lambda_permission" "reconcile" {
  statement_id  = "RunOnSchedule"
  action        = "lambda:InvokeFunction"
  function_name = module.reconciler.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconcile.arn
}

# ---------------------------------------------------------------------------------------------
# Notifications: media table stream -> notifier -> SNS media-events -> subscribers
# ---------------------------------------------------------------------------------------------

module "notifier" {
  source = "../lambda-function"

  name         = "${var.name}-notifier"
  description  = "Publishes image.ready / failed / deleted / updated to the media-events topic"
  zip_file     = "${local.function_dir}/notifier.zip"
  handler      = "media_pipeline.handlers.notifier.lambda_handler"
  runtime      = var.lambda_runtime
  architecture = var.lambda_architecture
  layers       = local.signing_layers
  memory_size  = var.notifier.memory_size
  timeout      = var.notifier.timeout
  environment = merge(local.powertools_env, {
    POWERTOOLS_SERVICE_NAME = "notifier"
    EVENTS_TOPIC_ARN        = aws_sns_topic.media_events.arn
    IDEMPOTENCY_TABLE       = aws_dynamodb_table.idempotency.name
  }, local.cdn_env)
  log_retention_days = var.log_retention_days
  tracing_mode       = var.tracing_mode
  kms_key_arn        = var.kms_key_arn
  policy_statements = concat([
    {
      sid       = "ReadMediaStream"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
      resources = [aws_dynamodb_table.media.stream_arn]
    },
    {
      # The stream mapping needs ListStreams (Lambda's documentation), an action that accepts
      # no resource but "*": scoped to the table's streams, the statement granted nothing.
      sid       = "ListMediaStreams"
      actions   = ["dynamodb:ListStreams"]
      resources = ["*"]
    },
    {
      sid       = "PublishMediaEvents"
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.media_events.arn]
    },
    {
      sid       = "KeepFailedBatches"
      actions   = ["sqs:SendMessage"]
      resources = [module.notifier_dlq.arn]
    },
    {
      # Which of a batch's notifications were published before, and which now (announcer.py).
      sid       = "KeepPublishedRecords"
      actions   = ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"]
      resources = [aws_dynamodb_table.idempotency.arn]
    },
  ], local.cdn_signing_statements, local.kms_statements)
}

resource "aws_lambda_event_source_mapping" "notifier" {
  event_source_arn                   = aws_dynamodb_table.media.stream_arn
  function_name                      = module.notifier.function_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.notifier.batch_size
  maximum_batching_window_in_seconds = var.notifier.batching_window
  parallelization_factor             = var.notifier.parallelization_factor
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.notifier.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.notifier.maximum_record_age
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = module.notifier_dlq.arn
    }
  }
}

# Only metadata of the stream records the notifier gave up on (docs/operations.md: re-driving).
module "notifier_dlq" {
  source = "../queue"

  name              = "${var.name}-notifier-dlq"
  retention_seconds = 1209600
  depth_alarm       = { description = "the notifier gave up on these stream records." }
  alarm_actions     = local.alarm_actions
  kms_key_arn       = var.kms_key_arn
}

resource "aws_sns_topic" "media_events" {
  name              = "${var.name}-media-events"
  kms_master_key_id = coalesce(var.kms_key_arn, "alias/aws/sns")
}

module "app_events" {
  source = "../queue"

  name = "${var.name}-app-events"
  sender = {
    service     = "sns.amazonaws.com"
    source_arns = [aws_sns_topic.media_events.arn]
    sid         = "AllowOnlyTheMediaEventsTopic"
  }
  dead_letter = {
    enabled           = true
    max_receive_count = var.max_receive_count
  }
  depth_alarm   = { description = "an app did not consume these media events." }
  alarm_actions = local.alarm_actions
  kms_key_arn   = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "app_events" {
  topic_arn            = aws_sns_topic.media_events.arn
  protocol             = "sqs"
  endpoint             = module.app_events.arn
  raw_message_delivery = true
  filter_policy        = jsonencode(var.app_events_filter_policy)
  filter_policy_scope  = "MessageAttributes"
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.email_subscriptions)
  topic_arn = aws_sns_topic.media_events.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "https" {
  for_each  = toset(var.https_subscriptions)
  topic_arn = aws_sns_topic.media_events.arn
  protocol  = "https"
  endpoint  = each.value
}

# The pillow layer became optional (bundle_layers): keep existing deployments' layer in place.
moved {
  from = aws_lambda_layer_version.pillow
  to   = aws_lambda_layer_version.pillow[0]
}

# Where the queues lived before modules/queue (keeps existing deployments in place).
moved {
  from = aws_sqs_queue.undelivered_events
  to   = module.undelivered_events.aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue.notifier_dlq
  to   = module.notifier_dlq.aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue.app_events
  to   = module.app_events.aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue.app_events_dlq
  to   = module.app_events.aws_sqs_queue.dlq[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq_depth["undelivered-events"]
  to   = module.undelivered_events.aws_cloudwatch_metric_alarm.depth[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq_depth["notifier-dlq"]
  to   = module.notifier_dlq.aws_cloudwatch_metric_alarm.depth[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq_depth["app-events-dlq"]
  to   = module.app_events.aws_cloudwatch_metric_alarm.depth[0]
}
