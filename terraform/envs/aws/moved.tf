# Where every resource lived before the pipeline became a module (terraform/modules/pipeline):
# the root module itself, as deployed up to this change. With these blocks an existing deployment
# plans its resources as moved, with nothing to add, change or destroy (make plan-check shows
# it for the production example; docs/deploy.md). Keep them: a state from before the move may
# still be planned with a newer release. A whole module or resource moves with all its instances.

# Module calls.

moved {
  from = module.uploads_bucket
  to   = module.pipeline.module.uploads_bucket
}

moved {
  from = module.renditions_bucket
  to   = module.pipeline.module.renditions_bucket
}

moved {
  from = module.undelivered_events
  to   = module.pipeline.module.undelivered_events
}

moved {
  from = module.thumbnail
  to   = module.pipeline.module.thumbnail
}

moved {
  from = module.metadata
  to   = module.pipeline.module.metadata
}

moved {
  from = module.reconciler
  to   = module.pipeline.module.reconciler
}

moved {
  from = module.notifier
  to   = module.pipeline.module.notifier
}

moved {
  from = module.notifier_dlq
  to   = module.pipeline.module.notifier_dlq
}

moved {
  from = module.app_events
  to   = module.pipeline.module.app_events
}

moved {
  from = module.api
  to   = module.pipeline.module.api
}

# Resources.

moved {
  from = aws_lambda_layer_version.pillow
  to   = module.pipeline.aws_lambda_layer_version.pillow
}

moved {
  from = aws_lambda_layer_version.powertools
  to   = module.pipeline.aws_lambda_layer_version.powertools
}

moved {
  from = aws_dynamodb_table.media
  to   = module.pipeline.aws_dynamodb_table.media
}

moved {
  from = aws_dynamodb_table.idempotency
  to   = module.pipeline.aws_dynamodb_table.idempotency
}

moved {
  from = aws_cloudwatch_event_rule.reconcile
  to   = module.pipeline.aws_cloudwatch_event_rule.reconcile
}

moved {
  from = aws_cloudwatch_event_target.reconcile
  to   = module.pipeline.aws_cloudwatch_event_target.reconcile
}

moved {
  from = aws_lambda_permission.reconcile
  to   = module.pipeline.aws_lambda_permission.reconcile
}

moved {
  from = aws_lambda_event_source_mapping.notifier
  to   = module.pipeline.aws_lambda_event_source_mapping.notifier
}

moved {
  from = aws_sns_topic.media_events
  to   = module.pipeline.aws_sns_topic.media_events
}

moved {
  from = aws_sns_topic_subscription.app_events
  to   = module.pipeline.aws_sns_topic_subscription.app_events
}

moved {
  from = aws_sns_topic_subscription.email
  to   = module.pipeline.aws_sns_topic_subscription.email
}

moved {
  from = aws_sns_topic_subscription.https
  to   = module.pipeline.aws_sns_topic_subscription.https
}

moved {
  from = aws_api_gateway_rest_api.api
  to   = module.pipeline.aws_api_gateway_rest_api.api
}

moved {
  from = aws_api_gateway_resource.uploads
  to   = module.pipeline.aws_api_gateway_resource.uploads
}

moved {
  from = aws_api_gateway_resource.images
  to   = module.pipeline.aws_api_gateway_resource.images
}

moved {
  from = aws_api_gateway_resource.image
  to   = module.pipeline.aws_api_gateway_resource.image
}

moved {
  from = aws_api_gateway_authorizer.cognito
  to   = module.pipeline.aws_api_gateway_authorizer.cognito
}

moved {
  from = aws_api_gateway_method.route
  to   = module.pipeline.aws_api_gateway_method.route
}

moved {
  from = aws_api_gateway_method.preflight
  to   = module.pipeline.aws_api_gateway_method.preflight
}

moved {
  from = aws_api_gateway_integration.route
  to   = module.pipeline.aws_api_gateway_integration.route
}

moved {
  from = aws_lambda_permission.api
  to   = module.pipeline.aws_lambda_permission.api
}

moved {
  from = aws_api_gateway_deployment.api
  to   = module.pipeline.aws_api_gateway_deployment.api
}

moved {
  from = aws_cloudwatch_log_group.api_access
  to   = module.pipeline.aws_cloudwatch_log_group.api_access
}

moved {
  from = aws_api_gateway_stage.api
  to   = module.pipeline.aws_api_gateway_stage.api
}

moved {
  from = aws_api_gateway_method_settings.api
  to   = module.pipeline.aws_api_gateway_method_settings.api
}

moved {
  from = aws_api_gateway_api_key.default
  to   = module.pipeline.aws_api_gateway_api_key.default
}

moved {
  from = aws_api_gateway_usage_plan.api
  to   = module.pipeline.aws_api_gateway_usage_plan.api
}

moved {
  from = aws_api_gateway_usage_plan_key.default
  to   = module.pipeline.aws_api_gateway_usage_plan_key.default
}

moved {
  from = aws_iam_role.api_gateway_logs
  to   = module.pipeline.aws_iam_role.api_gateway_logs
}

moved {
  from = aws_iam_role_policy.api_gateway_logs
  to   = module.pipeline.aws_iam_role_policy.api_gateway_logs
}

moved {
  from = aws_api_gateway_account.this
  to   = module.pipeline.aws_api_gateway_account.this
}

moved {
  from = aws_kms_key.alarms
  to   = module.pipeline.aws_kms_key.alarms
}

moved {
  from = aws_sns_topic.alarms
  to   = module.pipeline.aws_sns_topic.alarms
}

moved {
  from = aws_sns_topic_policy.alarms
  to   = module.pipeline.aws_sns_topic_policy.alarms
}

moved {
  from = aws_sns_topic_subscription.alarm_emails
  to   = module.pipeline.aws_sns_topic_subscription.alarm_emails
}

moved {
  from = aws_cloudwatch_metric_alarm.monitoring
  to   = module.pipeline.aws_cloudwatch_metric_alarm.monitoring
}

moved {
  from = aws_cloudwatch_dashboard.this
  to   = module.pipeline.aws_cloudwatch_dashboard.this
}

# The two EventBridge rules (Object Created, Object Deleted) and their three targets became one
# rule and one target resource each, keyed by event and by target id, in the same move.

moved {
  from = aws_cloudwatch_event_rule.object_created
  to   = module.pipeline.aws_cloudwatch_event_rule.uploads["created"]
}

moved {
  from = aws_cloudwatch_event_rule.object_deleted
  to   = module.pipeline.aws_cloudwatch_event_rule.uploads["deleted"]
}

moved {
  from = aws_cloudwatch_event_target.jobs["thumbnail"]
  to   = module.pipeline.aws_cloudwatch_event_target.uploads["thumbnail-jobs"]
}

moved {
  from = aws_cloudwatch_event_target.jobs["metadata"]
  to   = module.pipeline.aws_cloudwatch_event_target.uploads["metadata-jobs"]
}

moved {
  from = aws_cloudwatch_event_target.deletions
  to   = module.pipeline.aws_cloudwatch_event_target.uploads["thumbnail-deletions"]
}

# Older addresses still (terraform/modules/pipeline/main.tf moves them on within the module): the
# queues from before modules/queue. Terraform follows a chain of moves across modules.

moved {
  from = aws_sqs_queue.undelivered_events
  to   = module.pipeline.aws_sqs_queue.undelivered_events
}

moved {
  from = aws_sqs_queue.notifier_dlq
  to   = module.pipeline.aws_sqs_queue.notifier_dlq
}

moved {
  from = aws_sqs_queue.app_events
  to   = module.pipeline.aws_sqs_queue.app_events
}

moved {
  from = aws_sqs_queue.app_events_dlq
  to   = module.pipeline.aws_sqs_queue.app_events_dlq
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq_depth
  to   = module.pipeline.aws_cloudwatch_metric_alarm.dlq_depth
}
