data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # A queue's ARN follows from its name, so its access policy and its DLQ's redrive allow
  # policy are set when each queue is created (CreateQueue attributes) instead of by a later
  # SetQueueAttributes: the provider waits ~25 s after every SQS attribute change for it to
  # propagate, and this keeps the whole chain to two creations (DLQ, then queue).
  arn_prefix = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  arn        = "${local.arn_prefix}:${var.name}"
  dlq_name   = coalesce(var.dead_letter.name, "${var.name}-dlq")

  # The queue whose messages were given up on: the DLQ if there is one, else the queue itself
  # (e.g. a queue that is another service's dead-letter target).
  watched = var.dead_letter.enabled ? aws_sqs_queue.dlq[0] : aws_sqs_queue.this
}

resource "aws_sqs_queue" "dlq" {
  count = var.dead_letter.enabled ? 1 : 0

  name                              = local.dlq_name
  message_retention_seconds         = var.dead_letter.retention_seconds
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 3600
  # Only this queue may move messages here.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.arn]
  })
  tags = var.tags
}

data "aws_iam_policy_document" "this" {
  count = var.sender == null ? 0 : 1

  statement {
    sid       = var.sender.sid
    actions   = ["sqs:SendMessage"]
    resources = [local.arn]
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

resource "aws_sqs_queue" "this" {
  name                              = var.name
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  message_retention_seconds         = var.retention_seconds
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 3600
  policy                            = try(data.aws_iam_policy_document.this[0].json, null)
  redrive_policy = var.dead_letter.enabled ? jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[0].arn
    maxReceiveCount     = var.dead_letter.max_receive_count
  }) : null
  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "depth" {
  count = var.depth_alarm.enabled ? 1 : 0

  alarm_name          = "${local.watched.name}-not-empty"
  alarm_description   = "Messages in ${local.watched.name}: ${var.depth_alarm.description} Inspect, fix, then redrive (docs/operations.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = local.watched.name }
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
