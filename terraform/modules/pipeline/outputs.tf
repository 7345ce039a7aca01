output "region" {
  description = "AWS region of the stack."
  value       = var.region
}

output "uploads_bucket" {
  description = "Bucket that apps upload to (presigned POST), under upload_prefix."
  value       = module.uploads_bucket.name
}

output "upload_prefix" {
  description = "Key prefix that the pipeline processes."
  value       = var.upload_prefix
}

output "renditions_bucket" {
  description = "Bucket holding the renditions (private; read through the CDN, or presigned GETs without one)."
  value       = module.renditions_bucket.name
}

output "media_table" {
  description = "DynamoDB table of media items (one per uploaded key)."
  value       = aws_dynamodb_table.media.name
}

output "duplicates_table" {
  description = "DynamoDB table of each app's duplicates index: band items (`dup#<app>#<band>:<hex>`) and an original's links (`of#<app>#<id>`)."
  value       = aws_dynamodb_table.duplicates.name
}

output "idempotency_table" {
  description = "DynamoDB table of the notifier's records of what it published (the workers' idempotency record is the media item)."
  value       = aws_dynamodb_table.idempotency.name
}

output "events_topic_arn" {
  description = "SNS topic publishing image.ready / image.failed (docs/events.md)."
  value       = aws_sns_topic.media_events.arn
}

output "app_events_queue_url" {
  description = "SQS queue subscribed to the topic for apps (raw delivery, filtered)."
  value       = module.app_events.url
}

output "queues" {
  description = "Work queues and dead-letter queues, by name."
  value = {
    thumbnail_jobs     = module.thumbnail.queue_url
    thumbnail_dlq      = module.thumbnail.dlq_url
    metadata_jobs      = module.metadata.queue_url
    metadata_dlq       = module.metadata.dlq_url
    notifier_dlq       = module.notifier_dlq.url
    undelivered_events = module.undelivered_events.url
    app_events_dlq     = module.app_events.dlq_url
  }
}

output "functions" {
  description = "Lambda function names, by role."
  value       = local.functions
}

output "job_retry_window_seconds" {
  description = "How long a failing job is retried before it reaches its DLQ (max_receive_count x the longest visibility timeout)."
  value       = local.job_retry_window
}

output "stuck_after_seconds" {
  description = "How long an item may wait for a worker before the reconciler settles or re-enqueues it."
  value       = local.stuck_after
}

output "max_receive_count" {
  description = "Deliveries of a job before it moves to its DLQ."
  value       = var.max_receive_count
}

output "api_url" {
  description = "Base URL of the upload API stage (POST {api_url}/uploads, GET {api_url}/images/{id})."
  value       = aws_api_gateway_stage.api.invoke_url
}

output "api_key" {
  description = "The default API key (send it as X-Api-Key)."
  value       = aws_api_gateway_api_key.default.value
  sensitive   = true
}

output "cdn" {
  description = "The renditions' CDN: its URL (rendition URLs start with it), the distribution's id and domain, whether URLs are signed, and the SSM parameter of the signing key; null without a CDN."
  value = !local.cdn_enabled ? null : {
    url                   = local.cdn_url
    distribution_id       = aws_cloudfront_distribution.renditions[0].id
    domain_name           = aws_cloudfront_distribution.renditions[0].domain_name
    signed                = local.cdn_private
    signing_key_parameter = local.cdn_key_parameter
  }
}
