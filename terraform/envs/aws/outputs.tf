# The deployment's outputs: the module's, under the same names (terraform output, the state's
# outputs and .local/outputs.json read them; the emulators' root has these very outputs, being
# this root plus terraform/envs/local).

output "region" {
  description = "AWS region of the stack."
  value       = module.pipeline.region
}

output "uploads_bucket" {
  description = "Bucket that apps upload to (presigned POST), under upload_prefix."
  value       = module.pipeline.uploads_bucket
}

output "upload_prefix" {
  description = "Key prefix that the pipeline processes."
  value       = module.pipeline.upload_prefix
}

output "renditions_bucket" {
  description = "Bucket holding the renditions (private; read through the CDN, or presigned GETs without one)."
  value       = module.pipeline.renditions_bucket
}

output "media_table" {
  description = "DynamoDB table of media items (one per uploaded key)."
  value       = module.pipeline.media_table
}

output "duplicates_table" {
  description = "DynamoDB table of each app's duplicates index: band items (`dup#<app>#<band>:<hex>`) and an original's links (`of#<app>#<id>`)."
  value       = module.pipeline.duplicates_table
}

output "idempotency_table" {
  description = "DynamoDB table of the notifier's records of what it published (the workers' idempotency record is the media item)."
  value       = module.pipeline.idempotency_table
}

output "events_topic_arn" {
  description = "SNS topic publishing image.ready / image.failed (docs/events.md)."
  value       = module.pipeline.events_topic_arn
}

output "app_events_queue_url" {
  description = "SQS queue subscribed to the topic for apps (raw delivery, filtered)."
  value       = module.pipeline.app_events_queue_url
}

output "queues" {
  description = "Work queues and dead-letter queues, by name."
  value       = module.pipeline.queues
}

output "functions" {
  description = "Lambda function names, by role."
  value       = module.pipeline.functions
}

output "job_retry_window_seconds" {
  description = "How long a failing job is retried before it reaches its DLQ (max_receive_count x the longest visibility timeout)."
  value       = module.pipeline.job_retry_window_seconds
}

output "stuck_after_seconds" {
  description = "How long an item may wait for a worker before the reconciler settles or re-enqueues it."
  value       = module.pipeline.stuck_after_seconds
}

output "max_receive_count" {
  description = "Deliveries of a job before it moves to its DLQ."
  value       = module.pipeline.max_receive_count
}

output "api_url" {
  description = "Base URL of the upload API stage (POST {api_url}/uploads, GET {api_url}/images/{id})."
  value       = module.pipeline.api_url
}

output "api_key" {
  description = "The default API key (send it as X-Api-Key)."
  value       = module.pipeline.api_key
  sensitive   = true
}

output "cdn" {
  description = "The renditions' CDN (url, distribution_id, domain_name, signed, signing_key_parameter); null without one."
  value       = module.pipeline.cdn
}
