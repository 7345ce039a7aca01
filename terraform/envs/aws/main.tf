# The production root: the pipeline (terraform/modules/pipeline) on AWS, nothing else. Every
# variable of the module passes through unchanged (variables.tf is the module's own file); what
# only an emulator needs (endpoints, skipped checks, a disposable stack) is in terraform/envs/local
# and cannot be set here. make plan / make deploy ENV=<env> run this root (docs/deploy.md).
#
# What stays written out, because Terraform cannot pass a root's variables or outputs on to a
# module wholesale: each argument below, and each output in outputs.tf (variables.tf links the
# module's own file, so each variable is declared once). tests/unit/test_terraform_roots.py
# checks that none is missed. The emulators' root repeats none of it: it is this root plus the
# override files of terraform/envs/local.

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
  cropped_renditions         = var.cropped_renditions
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
  duplicates                 = var.duplicates
  cdn                        = var.cdn
}
