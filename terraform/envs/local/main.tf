# The pipeline (terraform/modules/pipeline) on an emulator: the embedded stack (make up, the e2e
# tests) and LocalStack (make localstack-up) apply this root with terraform/envs/local.tfvars.
# It is the production root (terraform/envs/aws) plus what only a throwaway stack may do:
# providers.tf points every API at aws_endpoint_url and skips the checks an emulator cannot
# answer, and the stack is disposable.

module "pipeline" {
  source = "../../modules/pipeline"

  name                       = var.name
  region                     = var.region
  build_dir                  = var.build_dir
  lambda_runtime             = var.lambda_runtime
  lambda_architecture        = var.lambda_architecture
  powertools_layer_arn       = var.powertools_layer_arn
  upload_prefix              = var.upload_prefix
  cors_allowed_origins       = var.cors_allowed_origins
  max_upload_bytes           = var.max_upload_bytes
  max_pixels                 = var.max_pixels
  renditions                 = var.renditions
  jpeg_quality               = var.jpeg_quality
  webp_quality               = var.webp_quality
  rendition_formats          = var.rendition_formats
  avif_quality               = var.avif_quality
  include_gps                = var.include_gps
  workers                    = var.workers
  max_receive_count          = var.max_receive_count
  retry_base_seconds         = var.retry_base_seconds
  reconciler                 = var.reconciler
  notifier                   = var.notifier
  app_events_filter_policy   = var.app_events_filter_policy
  email_subscriptions        = var.email_subscriptions
  https_subscriptions        = var.https_subscriptions
  log_retention_days         = var.log_retention_days
  tracing_mode               = var.tracing_mode
  alarm_actions              = var.alarm_actions
  kms_key_arn                = var.kms_key_arn
  api                        = var.api
  api_cognito_user_pool_arns = var.api_cognito_user_pool_arns
  monitoring                 = var.monitoring
  alarm_emails               = var.alarm_emails
  alarm_thresholds           = var.alarm_thresholds
  uploads_versioning         = var.uploads_versioning
  deleted_retention_days     = var.deleted_retention_days
  legacy_indexes             = var.legacy_indexes
  extra_formats              = var.extra_formats
  cdn                        = var.cdn

  # A throwaway stack: buckets are emptied and tables deleted on destroy (no deletion protection).
  disposable = true
  # LocalStack community does not apply layers: each function's layers go inside its zip.
  bundle_layers = var.bundle_layers
  # The embedded stack serves the CDN's URLs itself (scripts/devstack/edge.py).
  cdn_edge_url = var.cdn_edge_url
}
