data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # Lambda's guidance: at least 6x the function timeout (plus the batching window), so a batch
  # that is retried after throttling or a timeout is not redelivered while still in flight.
  visibility_timeout = 6 * var.function.timeout + var.batching_window_seconds

  # A queue's ARN follows from its name, so each queue's access policy can be set when it is
  # created instead of by a later SetQueueAttributes: the provider waits ~25 s after every
  # SQS attribute change for it to propagate, and this keeps the chain to DLQ -> queue.
  arn_prefix = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  jobs_name  = "${var.name}-jobs"
  jobs_arn   = "${local.arn_prefix}:${local.jobs_name}"
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-dlq"
  message_retention_seconds = var.dlq_retention_seconds
  sqs_managed_sse_enabled   = true
  # Only the jobs queue may move messages here.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.jobs_arn]
  })
  tags = var.tags
}

data "aws_iam_policy_document" "jobs" {
  statement {
    sid       = "AllowOnlyTheConfiguredSender"
    actions   = ["sqs:SendMessage"]
    resources = [local.jobs_arn]
    principals {
      type        = "Service"
      identifiers = [var.sender.service]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = var.sender.source_arns
    }
  }
}

resource "aws_sqs_queue" "jobs" {
  name                       = local.jobs_name
  visibility_timeout_seconds = local.visibility_timeout
  message_retention_seconds  = var.message_retention_seconds
  sqs_managed_sse_enabled    = true
  policy                     = data.aws_iam_policy_document.jobs.json
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
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
  environment          = merge(var.function.environment, { MAX_RECEIVE_COUNT = tostring(var.max_receive_count) })
  log_retention_days   = var.log_retention_days
  tracing_mode         = var.tracing_mode
  tags                 = var.tags
  policy_statements = concat(var.function.policy_statements, [{
    sid       = "ConsumeJobs"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.jobs.arn]
  }])
}

resource "aws_lambda_event_source_mapping" "jobs" {
  event_source_arn                   = aws_sqs_queue.jobs.arn
  function_name                      = module.function.function_arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Messages in ${aws_sqs_queue.dlq.name}: ${var.name} gave up on them after ${var.max_receive_count} attempts. Inspect, fix, then redrive (docs/operations.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
