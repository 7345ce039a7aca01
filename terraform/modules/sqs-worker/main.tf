locals {
  # Lambda's guidance: at least 6x the function timeout (plus the batching window), so a batch
  # that is retried after throttling or a timeout is not redelivered while still in flight.
  visibility_timeout = 6 * var.function.timeout + var.batching_window_seconds
}

module "queue" {
  source = "../queue"

  name                       = "${var.name}-jobs"
  visibility_timeout_seconds = local.visibility_timeout
  retention_seconds          = var.message_retention_seconds
  sender                     = var.sender
  dead_letter = {
    enabled           = true
    name              = "${var.name}-dlq"
    max_receive_count = var.max_receive_count
    retention_seconds = var.dlq_retention_seconds
  }
  depth_alarm = {
    description = "${var.name} gave up on them after ${var.max_receive_count} attempts."
  }
  alarm_actions = var.alarm_actions
  kms_key_arn   = var.kms_key_arn
  tags          = var.tags
}

# Where these lived before the queue module (keeps existing deployments in place).
moved {
  from = aws_sqs_queue.jobs
  to   = module.queue.aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue.dlq
  to   = module.queue.aws_sqs_queue.dlq[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq_depth
  to   = module.queue.aws_cloudwatch_metric_alarm.depth[0]
}

module "function" {
  source = "../lambda-function"

  name                 = var.name
  description          = var.description
  zip_file             = var.function.zip_file
  handler              = var.function.handler
  runtime              = var.function.runtime
  architecture         = var.function.architecture
  layers               = var.function.layers
  memory_size          = var.function.memory_size
  timeout              = var.function.timeout
  reserved_concurrency = var.function.reserved_concurrency
  environment = merge(var.function.environment, {
    MAX_RECEIVE_COUNT  = tostring(var.max_receive_count)
    JOBS_QUEUE_URL     = module.queue.url
    RETRY_BASE_SECONDS = tostring(var.retry_base_seconds)
    RETRY_MAX_SECONDS  = tostring(local.visibility_timeout)
  })
  log_retention_days = var.log_retention_days
  tracing_mode       = var.tracing_mode
  kms_key_arn        = var.kms_key_arn
  tags               = var.tags
  policy_statements = concat(var.function.policy_statements, [{
    sid       = "ConsumeJobs"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [module.queue.arn]
  }])
}

resource "aws_lambda_event_source_mapping" "jobs" {
  event_source_arn                   = module.queue.arn
  function_name                      = module.function.function_arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = var.maximum_concurrency == null ? [] : [var.maximum_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  dynamic "provisioned_poller_config" {
    for_each = var.provisioned_pollers == null ? [] : [var.provisioned_pollers]
    content {
      minimum_pollers = provisioned_poller_config.value.minimum
      maximum_pollers = provisioned_poller_config.value.maximum
    }
  }
}
