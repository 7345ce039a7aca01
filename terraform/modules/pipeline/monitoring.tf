# Production monitoring (var.monitoring): an alarm topic, alarms on what needs a person, and a
# dashboard. Off on the local stacks, so what CI applies stays the pipeline itself; the DLQ
# depth alarms of the queue module exist everywhere and notify this topic when it is on.

locals {
  alarm_actions = concat(var.alarm_actions, aws_sns_topic.alarms[*].arn)

  # every function of lambdas/functions.json (tests/unit/test_build.py checks)
  functions = {
    thumbnail  = module.thumbnail.function_name
    metadata   = module.metadata.function_name
    notifier   = module.notifier.function_name
    api        = module.api.function_name
    reconciler = module.reconciler.function_name
  }
  jobs_queues = {
    thumbnail = module.thumbnail.queue_name
    metadata  = module.metadata.queue_name
  }

  # CloudWatch alarms can only publish to a topic whose key lets cloudwatch.amazonaws.com use
  # it, which the AWS-managed alias/aws/sns does not: without kms_key_arn the topic gets a key
  # of its own.
  alarms_key_arn = var.kms_key_arn != null ? var.kms_key_arn : try(aws_kms_key.alarms[0].arn, null)
}

data "aws_iam_policy_document" "alarms_key" {
  count = var.monitoring && var.kms_key_arn == null ? 1 : 0

  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy "*" means this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchPublishesAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"] # in a key policy "*" means this key
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}


resource "aws_kms_key" "alarms" {
  count = var.monitoring && var.kms_key_arn == null ? 1 : 0

  description             = "${var.name}: encrypts the alarm topic (CloudWatch may publish to it)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alarms_key[0].json
}

resource "aws_sns_topic" "alarms" {
  count = var.monitoring ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = local.alarms_key_arn
}

data "aws_iam_policy_document" "alarms_topic" {
  count = var.monitoring ? 1 : 0

  statement {
    sid       = "OnlyThisAccountsAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count = var.monitoring ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.alarms_topic[0].json
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each = var.monitoring ? toset(var.alarm_emails) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

# What needs a person, one alarm each; all compare a 5-minute statistic with a threshold.
locals {
  monitoring_alarms = merge(
    # A function raised (a bug, or a dependency down): records are retried, then dead-lettered.
    # Bad images do not count here: they end FAILED without an error.
    { for key, name in local.functions : "${key}-errors" => {
      name        = "${name}-errors"
      description = "${name} raised errors in ${var.alarm_thresholds.function_errors + 1}+ invocations within 5 minutes. Read its log group (docs/operations.md)."
      namespace   = "AWS/Lambda", metric = "Errors", dimensions = { FunctionName = name }
      statistic   = "Sum", periods = 1, threshold = var.alarm_thresholds.function_errors
    } },
    # Invocations refused for lack of concurrency (account limit or reserved concurrency).
    { for key, name in local.functions : "${key}-throttles" => {
      name        = "${name}-throttles"
      description = "${name} was throttled within 5 minutes: raise its concurrency or the account limit (docs/operations.md)."
      namespace   = "AWS/Lambda", metric = "Throttles", dimensions = { FunctionName = name }
      statistic   = "Sum", periods = 1, threshold = 0
    } },
    # Work is waiting longer than it should: the workers are behind, failing or stopped.
    { for key, queue in local.jobs_queues : "${key}-backlog" => {
      name        = "${queue}-backlog"
      description = "The oldest message in ${queue} is older than ${var.alarm_thresholds.oldest_job_seconds} s for 10 minutes: the ${key} worker is behind or failing (docs/operations.md)."
      namespace   = "AWS/SQS", metric = "ApproximateAgeOfOldestMessage", dimensions = { QueueName = queue }
      statistic   = "Maximum", periods = 2, threshold = var.alarm_thresholds.oldest_job_seconds
    } },
    {
      # Notifications lag behind the table: the notifier is failing or too slow for the stream.
      notifier-iterator-age = {
        name        = "${module.notifier.function_name}-iterator-age"
        description = "The notifier reads media table changes more than ${var.alarm_thresholds.iterator_age_seconds} s after they happened, for 10 minutes: notifications are late (docs/operations.md)."
        namespace   = "AWS/Lambda", metric = "IteratorAge", dimensions = { FunctionName = module.notifier.function_name }
        statistic   = "Maximum", periods = 2, threshold = var.alarm_thresholds.iterator_age_seconds * 1000
      }
      # The upload API answered with a 5xx: bad input never does (it gets a 4xx), so any 5xx is
      # a fault of ours or of a dependency (the function, DynamoDB, the account's concurrency).
      api-5xx = {
        name        = "${aws_api_gateway_rest_api.api.name}-5xx"
        description = "The upload API answered 5xx within 5 minutes: read the API function's log group and the stage's access log (docs/operations.md)."
        namespace   = "AWS/ApiGateway", metric = "5XXError"
        dimensions  = local.api_dimensions
        statistic   = "Sum", periods = 1, threshold = 0
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "monitoring" {
  for_each = { for key, alarm in local.monitoring_alarms : key => alarm if var.monitoring }

  alarm_name          = each.value.name
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = each.value.periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

locals {
  api_dimensions = { ApiName = aws_api_gateway_rest_api.api.name, Stage = aws_api_gateway_stage.api.stage_name }
  # A metric widget names dimensions as a flat list: ApiName, name, Stage, stage (keys in order).
  api_dimension_list = flatten([for name, value in local.api_dimensions : [name, value]])

  # The dashboard's metric widgets, each with its place on CloudWatch's 24-column grid.
  dashboard_widgets = [
    {
      x       = 0, y = 0, width = 12, title = "Jobs waiting", stat = "Maximum", period = 60
      metrics = [for q in values(local.jobs_queues) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]]
    },
    {
      x       = 12, y = 0, width = 12, title = "Age of the oldest job (s)", stat = "Maximum", period = 60
      metrics = [for q in values(local.jobs_queues) : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q]]
    },
    {
      x       = 0, y = 6, width = 8, title = "Invocations", stat = "Sum", period = 300
      metrics = [for f in values(local.functions) : ["AWS/Lambda", "Invocations", "FunctionName", f]]
    },
    {
      x       = 8, y = 6, width = 8, title = "Errors and throttles", stat = "Sum", period = 300
      metrics = [for pair in setproduct(["Errors", "Throttles"], values(local.functions)) : ["AWS/Lambda", pair[0], "FunctionName", pair[1]]]
    },
    {
      x       = 16, y = 6, width = 8, title = "Duration p95 (ms)", stat = "p95", period = 300
      metrics = [for f in values(local.functions) : ["AWS/Lambda", "Duration", "FunctionName", f]]
    },
    {
      x       = 0, y = 12, width = 12, title = "Dead-letter queues (messages given up on)", stat = "Maximum", period = 60
      metrics = [for q in local.dead_letter_queues : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]]
    },
    {
      x       = 12, y = 12, width = 12, title = "Notifier iterator age (ms)", stat = "Maximum", period = 60
      metrics = [["AWS/Lambda", "IteratorAge", "FunctionName", module.notifier.function_name]]
    },
    {
      x       = 0, y = 18, width = 12, title = "Upload API requests and errors", stat = "Sum", period = 300
      metrics = [for metric in ["Count", "4XXError", "5XXError"] : concat(["AWS/ApiGateway", metric], local.api_dimension_list)]
    },
    {
      x       = 12, y = 18, width = 12, title = "Upload API latency p95 (ms)", stat = "p95", period = 300
      metrics = [concat(["AWS/ApiGateway", "Latency"], local.api_dimension_list)]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.monitoring ? 1 : 0

  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [for w in local.dashboard_widgets : {
      type       = "metric", x = w.x, y = w.y, width = w.width, height = 6
      properties = { title = w.title, region = var.region, stat = w.stat, period = w.period, metrics = w.metrics }
    }]
  })
}

locals {
  dead_letter_queues = [
    module.thumbnail.dlq_name,
    module.metadata.dlq_name,
    module.notifier_dlq.name,
    module.undelivered_events.name,
    module.app_events.dlq_name,
  ]
}
